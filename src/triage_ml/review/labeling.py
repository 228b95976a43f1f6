"""What leads see and answer in Label Studio: the labeling config generated from the taxonomy, the
model's prediction as a pre-annotation, and a lead's annotation read back as labels.

Control names are the taxonomy's words (``actionable``, ``priority_tier``, ``crisis``, ``reason``,
``note``), the same as in the API, the database and the files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import quoteattr

from triage_ml.taxonomy import (
    ACTIONABLE_REASONS,
    NOISE_REASONS,
    TIER1_REASONS,
    TIER2_REASONS,
    TIERS,
    close_labels,
    explicit_labels,
    reason_labels,
)

ACTIONABLE = {"actionable": True, "noise": False}
CRISIS = {"crisis": True, "no crisis": False}
_REASON_HINTS = {
    "question": "asks the brand something, or asks for help",
    "complaint": "dissatisfaction, a failure, a grievance",
    "urgent_need": "time-critical: stranded, locked out, charged twice",
    "crisis": "could become a PR, safety, legal or regulatory problem",
    "praise": "a positive experience with the brand",
    "mention": "a general reference, no request",
    "industry": "an indirect reference to the industry or a competitor",
}
_TIER_HINTS = {1: "respond first: questions, complaints, urgent needs, potential crises",
               2: "second tier: praise, general mentions, industry references"}
_ACTIONABLE_HINT = "addressed to or about the brand, and worth an agent's time"
_NOISE_HINT = "spam, bots, trolls, ads, giveaways, chatter, content-free, off topic"
_CRISIS_HINT = "injury, legal threat, discrimination, breach, media, outage, person in danger"
_NOT_CRISIS_HINT = "ordinary anger or a single failure is not a crisis"


def _choices(name: str, values: list[tuple[str, str]], *, required: bool) -> str:
    options = "\n".join(f"    <Choice value={quoteattr(v)} hint={quoteattr(h)}/>" for v, h in values)
    req = ' required="true"' if required else ""
    return (f'  <Choices name="{name}" toName="text" choice="single" showInline="true"{req}>\n'
            f"{options}\n  </Choices>")


def labeling_config() -> str:
    """The Label Studio labeling config (XML) for dispute reviews and the review queue."""
    reasons = [(r, _REASON_HINTS[r]) for r in sorted(TIER1_REASONS)] + \
              [(r, _REASON_HINTS[r]) for r in sorted(TIER2_REASONS)]
    return "\n".join([
        "<View>",
        '  <Header value="Message"/>',
        '  <Text name="text" value="$text"/>',
        '  <Header value="Context (read-only)" size="6"/>',
        '  <Text name="context" value="$context"/>',
        '  <Header value="Why you see it (read-only)" size="6"/>',
        '  <Text name="why" value="$why"/>',
        '  <Header value="Actionable: does it merit an agent\'s attention?"/>',
        _choices("actionable", [("actionable", _ACTIONABLE_HINT), ("noise", _NOISE_HINT)], required=True),
        '  <Header value="Priority tier (actionable only)"/>',
        _choices("priority_tier", [(str(t), _TIER_HINTS[t]) for t in TIERS], required=False),
        '  <Header value="Crisis: could it become a PR, safety, legal or regulatory problem?"/>',
        _choices("crisis", [("crisis", _CRISIS_HINT), ("no crisis", _NOT_CRISIS_HINT)], required=True),
        '  <Header value="Reason (optional)"/>',
        _choices("reason", reasons, required=False),
        '  <Header value="Note (optional)"/>',
        '  <TextArea name="note" toName="text" rows="2" maxSubmissions="1" placeholder="why, for the agents"/>',
        "</View>",
    ])


def taxonomy_summary() -> str:
    """The taxonomy (docs/taxonomy.md) in a few lines, for the projects' descriptions: what leads answer with."""
    def reasons(codes: frozenset[str]) -> str:
        return "; ".join(f"{r} ({_REASON_HINTS[r]})" for r in sorted(codes))

    return (f"Actionable: {_ACTIONABLE_HINT}, for one of these reasons. Tier 1, answered first: "
            f"{reasons(TIER1_REASONS)}. Tier 2: {reasons(TIER2_REASONS)}. With reasons of both tiers, tier 1 wins. "
            f"Noise: everything else ({', '.join(sorted(NOISE_REASONS))}); noise has no tier. "
            f"Crisis: {_REASON_HINTS['crisis']}, e.g. {_CRISIS_HINT}; {_NOT_CRISIS_HINT}. A crisis is always "
            "actionable and tier 1. The full definitions, with examples: docs/taxonomy.md in the triage-ml "
            "repository.")


def _choice(name: str, value: str) -> dict[str, Any]:
    return {"from_name": name, "to_name": "text", "type": "choices", "value": {"choices": [value]}}


def prediction_result(prediction: dict[str, Any]) -> list[dict[str, Any]]:
    """A scoring result (the API's fields) as Label Studio result items for the pre-annotation."""
    out = [_choice("actionable", "actionable" if prediction.get("actionable") else "noise")]
    if prediction.get("actionable") and prediction.get("priority_tier") in TIERS:
        out.append(_choice("priority_tier", str(prediction["priority_tier"])))
    if prediction.get("crisis") is not None:
        out.append(_choice("crisis", "crisis" if prediction["crisis"] else "no crisis"))
    return out


@dataclass(frozen=True)
class LeadAnswer:
    """A lead's annotation read back: ``labels`` {head: value} closed by the taxonomy's rules, or the
    ``problem`` that keeps it from being stored."""

    labels: dict[str, int]
    reason: str | None
    note: str | None
    problem: str | None = None


def read_annotation(result: list[dict[str, Any]]) -> LeadAnswer:
    """Label Studio result items -> labels. A contradiction (crisis on noise, a tier on noise, a reason of
    the other tier) is reported in ``problem``, never stored."""
    picked, note = _picked(result)
    reason = picked.get("reason")
    try:
        return LeadAnswer(_answer_labels(picked, reason), reason, note)
    except ValueError as exc:
        return LeadAnswer({}, reason, note, str(exc))


def _picked(result: list[dict[str, Any]]) -> tuple[dict[str, str], str | None]:
    """The choice picked in each field ({from_name: choice}) and the lead's note."""
    picked: dict[str, str] = {}
    note = None
    for item in result or []:
        value = item.get("value") or {}
        name = item.get("from_name")
        if item.get("type") == "choices" and value.get("choices"):
            picked[str(name)] = str(value["choices"][0])
        elif item.get("type") == "textarea" and name == "note" and value.get("text"):
            note = " ".join(str(t) for t in value["text"]).strip() or None
    return picked, note


def _answer_labels(picked: dict[str, str], reason: str | None) -> dict[str, int]:
    """The labels the picked choices say, closed by the taxonomy; ValueError naming the field on a choice that
    is not offered or on answers that contradict each other."""
    for name, allowed in (("actionable", ACTIONABLE), ("crisis", CRISIS)):
        if name in picked and picked[name] not in allowed:
            raise ValueError(f"{name}: '{picked[name]}' is not one of {', '.join(allowed)}")
    if "priority_tier" in picked and picked["priority_tier"] not in {str(t) for t in TIERS}:
        raise ValueError(f"priority_tier: '{picked['priority_tier']}' is not 1 or 2")
    if reason is not None and reason not in ACTIONABLE_REASONS:
        raise ValueError(f"reason: '{reason}' is not a reason code of an actionable message")
    if "actionable" not in picked:
        raise ValueError("actionable: not answered; choose actionable or noise")
    explicit = explicit_labels(ACTIONABLE.get(picked.get("actionable", "")),
                               int(picked["priority_tier"]) if "priority_tier" in picked else None,
                               CRISIS.get(picked.get("crisis", "")))
    implied: dict[str, int] = {}
    if reason is not None:
        if explicit.get("actionable") == 0:
            raise ValueError(f"reason: '{reason}' is a reason to act, but the answer is noise")
        implied = reason_labels(reason)
        if "priority_tier" in explicit and explicit["priority_tier"] != implied["priority_tier"]:
            raise ValueError(f"reason: '{reason}' is a tier {implied['priority_tier']} reason, but the answer "
                             f"is tier {explicit['priority_tier']}")
        if implied.get("crisis") == 1 and explicit.get("crisis") == 0:
            raise ValueError("reason: 'crisis' contradicts the answer 'no crisis'")
    return close_labels(implied, explicit)
