"""Fine-tuning the encoder: a small real fine-tune (64 messages, one epoch) through the whole path."""

import numpy as np
import pytest

from triage_ml.errors import ConfigError
from triage_ml.features import Encoder
from triage_ml.features.finetune import FINETUNE_META, FineTuneConfig, FineTunedEncoders, finetune, task_digest
from triage_ml.features.onnx_backend import export_onnx, max_seq_length
from triage_ml.pipeline.cv import head_targets

SMALL = FineTuneConfig(epochs=1, batch_size=8, max_seq_length=32)
LONG = "my parcel is late again " * 40


@pytest.fixture(scope="module")
def rows(seed):
    sample = seed.iloc[:64]
    tasks = {h: t.labels for h, t in head_targets(sample).items()}
    return sample["text"].tolist(), tasks


@pytest.fixture(scope="module")
def tuned(tmp_path_factory, encoder, rows):
    texts, tasks = rows
    out = tmp_path_factory.mktemp("ft") / "a"
    losses = finetune(encoder.path, texts, tasks, SMALL, out, seed=7, progress=False)
    return out, losses


def test_fine_tuned_folder_is_a_sentence_encoder_that_moved(tuned, encoder, rows):
    folder, losses = tuned
    assert len(losses) == 1 and np.isfinite(losses[0])
    assert (folder / FINETUNE_META).is_file()
    assert max_seq_length(folder) == 32
    texts = rows[0][:8]
    got, base = Encoder(folder).encode(texts), encoder.encode(texts)
    assert np.allclose(np.linalg.norm(got, axis=1), 1, atol=1e-5)
    assert not np.allclose(got, base, atol=1e-3)  # the weights changed
    assert (got * base).sum(axis=1).min() > 0.5  # ... without forgetting the language


def test_same_inputs_and_seed_give_the_same_weights(tuned, tmp_path, encoder, rows):
    texts, tasks = rows
    finetune(encoder.path, texts, tasks, SMALL, tmp_path / "b", seed=7, progress=False)
    samples = [LONG, "flight cancelled", "🙃"]
    assert np.array_equal(Encoder(tuned[0]).encode(samples), Encoder(tmp_path / "b").encode(samples))


def test_onnx_export_of_a_fine_tuned_folder_matches_torch_and_its_length(tuned, tmp_path):
    import shutil

    folder = tmp_path / "enc"
    shutil.copytree(tuned[0], folder)
    export_onnx(folder, quantize=False)
    samples = [LONG, "flight cancelled", "x"]
    onnx, torch = Encoder(folder, backend="onnx").encode(samples), Encoder(folder).encode(samples)
    assert (onnx * torch).sum(axis=1).min() > 0.9999  # the long text is cut at 32 tokens by both


def test_store_reuses_folders_by_inputs_and_prunes(tmp_path, encoder, rows):
    texts, tasks = rows
    store = FineTunedEncoders(tmp_path / "store", keep=1)
    args = (encoder.path, encoder.fingerprint, texts[:32], {h: t[:32] for h, t in tasks.items()}, SMALL)
    first = store.get_or_train(*args, seed=1, progress=False)
    again = store.get_or_train(*args, seed=1, progress=False)
    assert not first.cached and again.cached and again.path == first.path
    other = store.get_or_train(*args, seed=2, progress=False)
    assert other.path != first.path
    assert not first.path.exists() and other.path.exists()  # keep=1: the older folder was removed
    assert [p.name for p in (tmp_path / "store").iterdir()] == [other.path.name]


def test_digest_covers_texts_and_labels():
    a = task_digest(["x", "y"], {"h": np.array([0, 1])})
    assert a == task_digest(["x", "y"], {"h": np.array([0, 1])})
    assert a != task_digest(["x", "y"], {"h": np.array([1, 0])})
    assert a != task_digest(["x", "z"], {"h": np.array([0, 1])})


def test_a_head_needs_two_classes_and_matching_lengths(tmp_path, encoder):
    with pytest.raises(ConfigError, match="'crisis' needs labeled rows of at least two classes"):
        finetune(encoder.path, ["a", "b"], {"crisis": np.array([0, -1])}, SMALL, tmp_path / "x", seed=0)
    with pytest.raises(ConfigError, match="3 labels for 2 texts"):
        finetune(encoder.path, ["a", "b"], {"crisis": np.array([0, 1, 1])}, SMALL, tmp_path / "x", seed=0)


def test_a_run_of_ten_steps_fine_tunes(tmp_path, encoder, rows):
    """64 texts in batches of 7 is 10 steps, a tenth of which warms up: OneCycleLR divided by zero there (a
    fold of 150 training rows in batches of 16 did the same)."""
    texts, tasks = rows
    config = FineTuneConfig(epochs=1, batch_size=7, max_seq_length=16)
    losses = finetune(encoder.path, texts, tasks, config, tmp_path / "ten", seed=1, progress=False)
    assert len(losses) == 1 and np.isfinite(losses[0])
    assert (tmp_path / "ten" / FINETUNE_META).is_file()
