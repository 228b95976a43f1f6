import numpy as np
import pytest

from triage_ml.errors import EncoderNotFoundError
from triage_ml.features import EmbeddingCache, Encoder, resolve_encoder_path


def test_packaged_encoder_resolves_offline():
    path = resolve_encoder_path("all-MiniLM-L6-v2")
    assert (path / "modules.json").is_file()
    assert resolve_encoder_path(str(path)) == path


def test_unknown_encoder_is_a_clear_error():
    with pytest.raises(EncoderNotFoundError, match="never downloaded"):
        resolve_encoder_path("some-org/some-model-that-is-not-here")


def test_cache_embeds_only_new_texts(tmp_path, encoder):
    cached = Encoder(encoder.path, cache=EmbeddingCache(tmp_path / "e.sqlite3"))
    seen: list[list[str]] = []
    real = cached._encode_uncached

    def spy(texts, *, progress):
        seen.append(list(texts))
        return real(texts, progress=progress)

    cached._encode_uncached = spy
    first = cached.encode(["my parcel is late", "love the new app", "my parcel is late"])
    assert seen == [["love the new app", "my parcel is late"]]
    second = cached.encode(["love the new app", "where is my refund"])
    assert seen[1] == ["where is my refund"]
    assert np.array_equal(second[0], first[1])
    assert len(cached.cache) == 3


def test_embeddings_are_normalised_and_match_uncached(encoder):
    texts = ["flight cancelled again", "🙃", "x" * 3000]
    fresh = Encoder(encoder.path).encode(texts)
    assert np.allclose(np.linalg.norm(fresh, axis=1), 1, atol=1e-5)
    assert np.allclose(encoder.encode(texts), fresh, atol=1e-6)
