import shutil

import numpy as np
import pytest

from triage_ml.errors import EncoderNotFoundError
from triage_ml.features import Encoder
from triage_ml.features.onnx_backend import FP32, INT8, ONNX_DIR, OnnxExports, export_onnx

TEXTS = ["@SkyLarkAir flight cancelled again", "🙃", "RT to win!!", "x " * 400, "Que calor hace hoy en Madrid"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory, encoder):
    folder = tmp_path_factory.mktemp("onnx") / "encoder"
    shutil.copytree(encoder.path, folder)
    export_onnx(folder)
    return folder


def test_onnx_fp32_gives_the_torch_embeddings(exported, encoder):
    onnx = Encoder(exported, backend="auto")
    assert onnx.backend == "onnx"
    got, want = onnx.encode(TEXTS), Encoder(encoder.path).encode(TEXTS)
    assert got.shape == want.shape
    assert np.allclose(np.linalg.norm(got, axis=1), 1, atol=1e-5)
    assert (got * want).sum(axis=1).min() > 0.9999


def test_onnx_int8_is_close_and_cached_separately(exported, encoder):
    int8 = Encoder(exported, backend="onnx-int8")
    assert int8.fingerprint != Encoder(exported).fingerprint
    cosine = (int8.encode(TEXTS) * Encoder(encoder.path).encode(TEXTS)).sum(axis=1)
    assert cosine.mean() > 0.85


def test_backend_choice_is_checked(encoder):
    assert Encoder(encoder.path, backend="auto").backend == "torch"  # the packaged folder has no export
    with pytest.raises(EncoderNotFoundError, match="unknown encoder backend"):
        Encoder(encoder.path, backend="tpu")
    with pytest.raises(EncoderNotFoundError, match="not found"):
        Encoder(encoder.path, backend="onnx").encode(["hi"])


def test_an_encoder_is_exported_once_and_copied_into_each_model(exported, encoder, tmp_path):
    exports = OnnxExports(tmp_path / "exports")
    first = exports.get(encoder.path, encoder.fingerprint)
    assert first == tmp_path / "exports" / encoder.fingerprint and not list(first.parent.glob(".build-*"))
    made = {name: (first / name).stat().st_mtime_ns for name in (FP32, INT8)}
    for model in ("a", "b"):  # two models saved with the same encoder: no second export
        exports.copy_into(encoder.path, encoder.fingerprint, tmp_path / model / ONNX_DIR)
        for name in (FP32, INT8):
            assert (tmp_path / model / ONNX_DIR / name).read_bytes() == (first / name).read_bytes()
    assert {name: (first / name).stat().st_mtime_ns for name in (FP32, INT8)} == made
    # the same embeddings as an export made in the encoder's own folder
    shutil.copytree(encoder.path, tmp_path / "encoder", ignore=shutil.ignore_patterns(ONNX_DIR))
    exports.copy_into(encoder.path, encoder.fingerprint, tmp_path / "encoder" / ONNX_DIR)
    assert np.array_equal(Encoder(tmp_path / "encoder", backend="onnx").encode(TEXTS),
                          Encoder(exported, backend="onnx").encode(TEXTS))


def test_only_the_most_recently_used_exports_are_kept(encoder, tmp_path):
    exports = OnnxExports(tmp_path / "exports", keep=1)
    first = exports.get(encoder.path, "first")
    second = exports.get(encoder.path, "second")  # the same weights under another key: exported again
    assert (second / FP32).is_file() and not first.exists()
