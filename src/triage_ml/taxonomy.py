"""The label definitions of docs/taxonomy.md as code: names, reason codes and the rules between them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

TAXONOMY_VERSION: Final = "1.0"

HEADS: Final = ("actionable", "priority_tier", "crisis")
Head = Literal["actionable", "priority_tier", "crisis"]

TIER1_REASONS: Final = frozenset({"question", "complaint", "urgent_need", "crisis"})
TIER2_REASONS: Final = frozenset({"praise", "mention", "industry"})
ACTIONABLE_REASONS: Final = TIER1_REASONS | TIER2_REASONS
# docs/taxonomy.md lists the kinds of noise; these codes name them in files (data/README.md).
NOISE_REASONS: Final = frozenset({"spam", "bot", "giveaway", "ad", "chatter", "troll", "empty", "off_topic",
                                  "duplicate", "noise"})
REASONS: Final = ACTIONABLE_REASONS | NOISE_REASONS
CRISIS_KINDS: Final = ("safety", "legal", "abuse", "fraud", "media", "mass", "selfharm")
# How an explanation names each kind to a PR lead at a glance.
CRISIS_KIND_NAMES: Final = {"safety": "safety", "legal": "legal threat", "abuse": "abuse or discrimination",
                            "fraud": "fraud or data exposure", "media": "press or going viral",
                            "mass": "mass problem", "selfharm": "self-harm"}

TIERS: Final = (1, 2)
# The sentiment head's classes (docs/taxonomy.md, "Sentiment"): the customer's tone, not a triage decision.
SENTIMENTS: Final = ("negative", "neutral", "positive")
SENTIMENT_COLUMNS: Final = tuple(f"sentiment_{s}" for s in SENTIMENTS)  # each one's probability, in tables


def tier_for_reason(reason: str) -> int | None:
    """The tier a reason code implies (``None`` for noise reasons)."""
    if reason in TIER1_REASONS:
        return 1
    if reason in TIER2_REASONS:
        return 2
    return None


# -- yes/no values in files, Label Studio answers and batch columns -----------------------------------------
YES_WORDS: Final = frozenset({"true", "t", "yes", "y", "1", "1.0"})
NO_WORDS: Final = frozenset({"false", "f", "no", "n", "0", "0.0"})
UNKNOWN_WORDS: Final = frozenset({"", "nan", "unknown", "na", "<na>"})


def parse_yes_no(value: object) -> bool | None:
    """A yes/no value as people write it: True, False, or None when blank or unknown. Booleans pass through;
    anything else raises ValueError with the accepted spellings."""
    if value is None or isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in YES_WORDS:
        return True
    if word in NO_WORDS:
        return False
    if word in UNKNOWN_WORDS:
        return None
    raise ValueError(f"'{value}' is not a yes/no value; use true, false or leave it blank if unknown")


# -- the rules between the heads ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Conflict:
    """Two head values the taxonomy forbids together: ``head`` at ``value`` (None: any value) with ``other`` at
    ``other_value``. ``rule`` says why, in the words every error message uses."""

    head: Head
    value: int | None
    other: Head
    other_value: int
    rule: str
    field: Head  # the field an error about this rule names

    def holds(self, labels: Mapping[str, int | None]) -> bool:
        """True when ``labels`` ({head: value}, missing or None meaning unknown) break this rule."""
        mine, theirs = labels.get(self.head), labels.get(self.other)
        return mine is not None and (self.value is None or mine == self.value) and theirs == self.other_value


CRISIS_IS_ACTIONABLE: Final = Conflict("crisis", 1, "actionable", 0, "a crisis is always actionable", "crisis")
CRISIS_IS_TIER1: Final = Conflict("crisis", 1, "priority_tier", 2, "a crisis is always tier 1",
                                 "priority_tier")
NOISE_HAS_NO_TIER: Final = Conflict("priority_tier", None, "actionable", 0,
                                   "noise (actionable: false) has no tier", "priority_tier")
CONFLICTS: Final = (CRISIS_IS_ACTIONABLE, CRISIS_IS_TIER1, NOISE_HAS_NO_TIER)


def shown(head: str, value: int) -> str:
    """A head's value as messages write it: true/false for actionable and crisis, the number for a tier."""
    return str(value) if head == "priority_tier" else ("true" if value else "false")


def explicit_labels(actionable: bool | None, priority_tier: int | None, crisis: bool | None) -> dict[str, int]:
    """{head: value} of the label fields a decision, a resolution or a lead's answer sets explicitly."""
    return {h: int(v) for h, v in (("actionable", actionable), ("priority_tier", priority_tier), ("crisis", crisis))
            if v is not None}


def close_labels(implied: Mapping[str, int], explicit: Mapping[str, int]) -> dict[str, int]:
    """A label set ({head: value}: actionable and crisis 0/1, priority_tier 1/2) made whole by the taxonomy: the
    explicit values over the implied ones, then a crisis is actionable and tier 1, noise has no tier and is no
    crisis, and a tier means actionable. Explicit values that contradict each other or the set's crisis raise
    ValueError naming the field."""
    labels = {**implied, **explicit}
    if labels.get("crisis") == 1:
        for rule in (CRISIS_IS_ACTIONABLE, CRISIS_IS_TIER1):
            if explicit.get(rule.other) == rule.other_value:
                raise ValueError(f"crisis: true contradicts {rule.other}: {shown(rule.other, rule.other_value)}; "
                                 f"{rule.rule}")
        labels.update(actionable=1, priority_tier=1)
    if labels.get("actionable") == 0:
        if "priority_tier" in explicit:
            raise ValueError(f"priority_tier: {NOISE_HAS_NO_TIER.rule}; leave priority_tier out")
        labels.pop("priority_tier", None)
        labels["crisis"] = 0
    elif "priority_tier" in labels:
        labels["actionable"] = 1
    return labels


def close_prediction(actionable: bool, priority_tier: int | None, crisis: bool) -> tuple[bool, int | None]:
    """A model's decided answer under the same rules: (actionable, tier). A crisis is actionable and tier 1;
    noise has no tier."""
    if crisis:
        return True, 1
    return actionable, priority_tier if actionable else None


def reason_labels(reason: str) -> dict[str, int]:
    """What a reason code says by itself: a noise reason, not actionable; an actionable one, actionable at its
    tier; ``crisis``, a crisis too. Unknown codes raise ValueError."""
    if reason in NOISE_REASONS:
        return {"actionable": 0}
    tier = tier_for_reason(reason)
    if tier is None:
        raise ValueError(f"reason: '{reason}' is not a reason code; use one of {', '.join(sorted(REASONS))}")
    return {"actionable": 1, "priority_tier": tier, **({"crisis": 1} if reason == "crisis" else {})}
