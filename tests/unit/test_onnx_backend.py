import shutil

import numpy as np
import pytest

from triage_ml.errors import EncoderNotFoundError
from triage_ml.features import Encoder
from triage_ml.features.onnx_backend import export_onnx

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
