"""The label definitions of docs/taxonomy.md as code: names, reason codes and the rules between them."""

from __future__ import annotations

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


def tier_for_reason(reason: str) -> int | None:
    """The tier a reason code implies (``None`` for noise reasons)."""
    if reason in TIER1_REASONS:
        return 1
    if reason in TIER2_REASONS:
        return 2
    return None
