import numpy as np
import pandas as pd

from triage_ml.pipeline.config import HoldoutConfig
from triage_ml.pipeline.holdout import gold_mask


def frame(n: int, **columns) -> pd.DataFrame:
    return pd.DataFrame({"message_id": [f"m{i}" for i in range(n)], **columns})


def test_gold_is_stable_whole_conversations_at_the_fraction():
    data = frame(4000, conversation_id=[f"c{i // 4}" for i in range(4000)])
    mask = gold_mask(data, HoldoutConfig(seed_fraction=0.2, lead_fraction=0.5))
    assert 0.17 < mask.mean() < 0.23
    per_conversation = pd.Series(mask).groupby(data["conversation_id"]).nunique()
    assert (per_conversation == 1).all()  # a conversation is gold as a whole
    shuffled = data.sample(frac=1, random_state=3)
    assert np.array_equal(gold_mask(shuffled, HoldoutConfig(seed_fraction=0.2))[np.argsort(shuffled.index)],
                          gold_mask(data, HoldoutConfig(seed_fraction=0.2)))  # order does not matter
    assert not gold_mask(data, HoldoutConfig(seed_fraction=0, lead_fraction=0)).any()


def test_lead_conversations_use_their_own_fraction():
    n = 4000
    data = frame(n, actionable_source=["lead"] * (n // 2) + [None] * (n // 2))
    mask = gold_mask(data, HoldoutConfig(seed_fraction=0.1, lead_fraction=0.5))
    assert 0.45 < mask[: n // 2].mean() < 0.55 and 0.07 < mask[n // 2:].mean() < 0.13
    no_conversation = frame(10)  # each message is its own conversation
    assert gold_mask(no_conversation, HoldoutConfig(seed_fraction=0.999)).all()
