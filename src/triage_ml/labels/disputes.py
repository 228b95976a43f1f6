"""When a label is in doubt (docs/taxonomy.md, "Disputed labels"): pure rules, no database."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

_HEAD_PROB = {"actionable": "actionable_prob", "crisis": "crisis_risk"}
# A dispute keeps this many distinct reasons; more only add to a count per rule (see ``merge_reasons``).
MAX_DISTINCT_REASONS = 20


@dataclass(frozen=True)
class DisputePolicy:
    confidence: float = 0.9  # a prediction is confident at p >= confidence or p <= 1 - confidence
    crisis_high: float = 0.8
    crisis_low: float = 0.02


@dataclass(frozen=True)
class Reason:
    rule: str  # agent_vs_agent | agent_vs_model | crisis_vs_escalation | manual
    detail: str

    def to_dict(self, **extra: Any) -> dict[str, Any]:
        return {"rule": self.rule, "detail": self.detail, **extra}


def _yes(head: str, value: int) -> bool:
    return value == 1  # actionable, tier 1, crisis: the positive class of each head


def _name(head: str, value: int) -> str:
    if head == "priority_tier":
        return f"tier {value}"
    return f"{head}={'true' if value else 'false'}"


def agent_vs_agent(agent: str, labels: dict[str, int], others: dict[str, dict[str, int]]) -> list[Reason]:
    """``others``: {other agent: {head: value}} of their current labels on the same message."""
    out = []
    for other, their in sorted(others.items()):
        if other == agent:
            continue
        diff = [h for h in labels if h in their and their[h] != labels[h]]
        if diff:
            said = ", ".join(f"{_name(h, their[h])} vs {_name(h, labels[h])}" for h in diff)
            out.append(Reason("agent_vs_agent", f"agent {other} and agent {agent} disagree: {said}"))
    return out


def agent_vs_model(agent: str, labels: dict[str, int], prediction: dict[str, Any] | None,
                   policy: DisputePolicy) -> list[Reason]:
    """An agent's actionable or tier label against a confident prediction (crisis has its own rule)."""
    if not prediction:
        return []
    out = []
    for head, value in labels.items():
        if head == "crisis":
            continue
        if head == "priority_tier":
            p = (prediction.get("tier_probs") or {}).get("1")
        else:
            p = prediction.get(_HEAD_PROB[head])
        if p is None:
            continue
        confident_yes, confident_no = p >= policy.confidence, p <= 1 - policy.confidence
        if (confident_yes and not _yes(head, value)) or (confident_no and _yes(head, value)):
            said = _name(head, 1 if confident_yes else (2 if head == "priority_tier" else 0))
            out.append(Reason("agent_vs_model", f"agent {agent} said {_name(head, value)}; the model said {said} "
                                                f"with p={p:.2f} (version {prediction.get('model_version', '?')})"))
    return out


def crisis_vs_escalation(agent: str, action: str, labels: dict[str, int], prediction: dict[str, Any] | None,
                         policy: DisputePolicy) -> list[Reason]:
    """The crisis head is sure of a crisis and the agent did not escalate it as one, or the reverse."""
    if not prediction or prediction.get("crisis_risk") is None:
        return []
    risk = float(prediction["crisis_risk"])
    escalated = labels.get("crisis") == 1
    if risk >= policy.crisis_high and not escalated:
        return [Reason("crisis_vs_escalation", f"crisis_risk {risk:.2f} but agent {agent} chose {action} "
                                               "without escalating it as a crisis")]
    if risk <= policy.crisis_low and escalated:
        return [Reason("crisis_vs_escalation", f"agent {agent} escalated it as a crisis ({action}) but "
                                               f"crisis_risk is {risk:.2f}")]
    return []



def _overflow(rule: str) -> str:
    return f"more {rule} reasons than the {MAX_DISTINCT_REASONS} distinct ones a dispute keeps (counted, not stored)"


def _counted(reason: dict[str, Any]) -> dict[str, Any]:
    """A stored reason: {rule, detail, count, at (first), last_at, ...}; an entry without ``count`` is one."""
    return {**reason, "count": reason.get("count", 1), "last_at": reason.get("last_at", reason.get("at"))}


def merge_reasons(stored: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A dispute's reasons with ``new`` joined (a new list; ``stored`` is not changed). A reason already there
    (same rule and detail) is counted, not stored again: ``count`` goes up and ``last_at`` moves. Once the
    dispute holds MAX_DISTINCT_REASONS distinct reasons, a new one only adds to its rule's overflow entry.
    ``merge_reasons([], reasons)`` compacts a list of single reasons."""
    out: list[dict[str, Any]] = []
    index: dict[tuple[str, str], dict[str, Any]] = {}
    kept = 0  # distinct reasons stored, overflow entries aside
    for reason in map(_counted, [*stored, *new]):
        key = (reason["rule"], reason["detail"])
        if key not in index and (kept >= MAX_DISTINCT_REASONS or reason["detail"] == _overflow(reason["rule"])):
            key = (reason["rule"], _overflow(reason["rule"]))
            reason = {f: reason[f] for f in ("rule", "count", "at", "last_at")} | {"detail": key[1]}
        if key in index:
            index[key].update(count=index[key]["count"] + reason["count"], last_at=reason["last_at"])
            continue
        index[key] = reason
        out.append(reason)
        kept += reason["detail"] != _overflow(reason["rule"])
    return out
