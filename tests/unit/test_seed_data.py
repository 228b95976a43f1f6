"""The seed set's promises (data/README.md): size, spread, label mix, and no templated near-duplicates."""

import numpy as np

from triage_ml.taxonomy import CRISIS_KINDS


def test_size_and_spread(seed):
    assert len(seed) >= 1500
    assert seed["industry"].nunique() >= 8
    assert seed["channel"].nunique() >= 4
    assert {"twitter", "facebook", "instagram"} <= set(seed["channel"])
    private = seed["is_private"] == "true"
    assert 0.05 < private.mean() < 0.5, "both public posts and private messages"
    for column in ("message_id", "channel", "brand", "author", "created_at", "conversation_id", "reason"):
        assert seed[column].notna().all() and (seed[column].astype(str) != "").all(), column


def test_every_row_has_all_labels(seed):
    assert seed["actionable"].notna().all()
    assert seed["crisis"].notna().all()
    assert seed.loc[seed["actionable"] == True, "priority_tier"].notna().all()  # noqa: E712
    assert seed.loc[seed["actionable"] == False, "priority_tier"].isna().all()  # noqa: E712


def test_label_mix(seed):
    noise = (seed["actionable"] == False).mean()  # noqa: E712
    assert 0.35 <= noise <= 0.45
    crisis = seed[seed["crisis"] == True]  # noqa: E712
    assert len(crisis) / len(seed) >= 0.08
    assert set(crisis["crisis_kind"]) == set(CRISIS_KINDS)
    assert (crisis["priority_tier"] == 1).all()
    for reason in ("spam", "bot", "giveaway", "chatter", "troll"):
        assert (seed["reason"] == reason).sum() >= 20, reason


def test_few_near_duplicates(seed, seed_embeddings):
    similarity = seed_embeddings @ seed_embeddings.T
    np.fill_diagonal(similarity, -1.0)
    share = (similarity.max(axis=1) > 0.92).mean()
    assert share < 0.03, f"{share:.1%} of messages have a neighbour above 0.92 cosine"


def test_texts_are_varied_in_length(seed):
    lengths = seed["text"].str.len()
    assert lengths.min() <= 5 and lengths.max() >= 250
