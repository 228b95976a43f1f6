"""Agent performance from the label store: how each agent (and the team) decides, how fast, and how well.

Definitions (the README's "Agent performance" table says the same):
- a decision counts in the window when its ``decided_at`` (the event's own time, else its receipt) is in it;
- **first response time**: for each message whose first decision (by anyone, ever) falls in the window, from the
  message's ``created_at`` (else when the store first saw it) to that decision, credited to its agent;
- **tier**: the tier of the latest prediction recorded for the message, else the first decision's label; noise
  and messages without a tier have no SLA;
- **SLA met**: first response time within the tier's SLA (``TRIAGE_SLA_TIER1_MINUTES``, ``..._TIER2_MINUTES``);
- **agreement with gold**: of the agent's labels (in the window) on a head where a lead has given the message a
  gold label, the share equal to it, per head; **overturned**: the share of all their labels in the window that
  a lead's gold label on the same head contradicts;
- **disputes opened**, **drafts** submitted / approved / rejected / pending, and **replies without a required
  sign-off** count the agent's own entries in the window.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import func, select

from triage_ml.store.db import Store, chunks
from triage_ml.store.tables import AuditRow, DecisionRow, DraftRow, LabelRow, MessageRow, PredictionRow
from triage_ml.taxonomy import HEADS
from triage_ml.times import as_utc

if TYPE_CHECKING:
    from matplotlib.figure import Figure

TEAM = "(team)"


@dataclass(frozen=True)
class SLA:
    tier1_minutes: float = 60.0
    tier2_minutes: float = 1440.0

    def minutes(self, tier: int) -> float:
        return self.tier1_minutes if tier == 1 else self.tier2_minutes


def agent_report(store: Store, since: datetime, until: datetime, sla: SLA) -> dict[str, Any]:
    """{since, until, sla, agents: [row per agent, by name], team: row, response_minutes: {agent: {tier: [...]}}}."""
    with store.session() as session:
        decided = DecisionRow.decided_at
        decisions = session.execute(select(DecisionRow.message_id, DecisionRow.agent, DecisionRow.action, decided,
                                           DecisionRow.id, DecisionRow.response)
                                    .where(decided >= since, decided < until)).all()
        ids = sorted({d.message_id for d in decisions})
        firsts = _first_decisions(session, ids)
        messages = {m.id: m for m in _chunked(session, select(MessageRow), MessageRow.id, ids, scalars=True)}
        tiers = _predicted_tiers(session, ids)
        agent_labels = session.execute(select(LabelRow.message_id, LabelRow.head, LabelRow.value, LabelRow.author)
                                       .join(DecisionRow, LabelRow.decision_id == DecisionRow.id)
                                       .where(LabelRow.source == "agent", decided >= since, decided < until)).all()
        gold = {(g.message_id, g.head): g.value for g in _chunked(
            session, select(LabelRow.message_id, LabelRow.head, LabelRow.value)
            .where(LabelRow.source == "lead", LabelRow.superseded_by.is_(None)), LabelRow.message_id, ids)}
        opened = _disputes_opened(session, since, until)
        drafts = session.execute(select(DraftRow.agent, DraftRow.state, DraftRow.decided_by).where(
            DraftRow.submitted_at >= since, DraftRow.submitted_at < until)).all()

    rows: dict[str, dict[str, Any]] = defaultdict(_empty_row)
    minutes: dict[str, dict[int, list[float]]] = defaultdict(lambda: {1: [], 2: []})
    for d in decisions:
        row = rows[d.agent]
        row["decisions"] += 1
        row["by_action"][d.action] = row["by_action"].get(d.action, 0) + 1
        if (d.response or {}).get("unapproved_reply"):
            row["replies_without_sign_off"] += 1
        if firsts.get(d.message_id) != d.id:
            continue
        message = messages[d.message_id]
        tier = tiers.get(d.message_id) or (d.response or {}).get("labels", {}).get("priority_tier")
        if tier not in (1, 2):
            continue
        posted = as_utc(message.created_at or message.first_seen)
        minutes[d.agent][tier].append(max((as_utc(d.decided_at) - posted).total_seconds() / 60, 0.0))
    for label in agent_labels:
        row = rows[label.author]
        row["labels"] += 1
        truth = gold.get((label.message_id, label.head))
        if truth is not None:
            row["gold"][label.head] = row["gold"].get(label.head, [0, 0])
            row["gold"][label.head][0] += int(label.value == truth)
            row["gold"][label.head][1] += 1
            row["overturned"] += int(label.value != truth)
    for agent, count in opened.items():
        if agent is not None:
            rows[agent]["disputes_opened"] += count
    for draft in drafts:
        row = rows[draft.agent]
        row["drafts"]["submitted"] += 1
        state = "approved_at_once" if draft.state == "approved" and draft.decided_by is None else draft.state
        row["drafts"][state] += 1

    team = _empty_row()
    for agent, row in rows.items():
        _merge(team, row)
        for tier in (1, 2):
            minutes[TEAM][tier].extend(minutes[agent][tier])
    out_rows = [_finish(agent, rows[agent], minutes[agent], sla) for agent in sorted(rows)]
    return {"since": since.isoformat(), "until": until.isoformat(),
            "sla_minutes": {"1": sla.tier1_minutes, "2": sla.tier2_minutes},
            "agents": out_rows, "team": _finish(TEAM, team, minutes[TEAM], sla),
            "response_minutes": {a: {str(t): v for t, v in m.items()} for a, m in minutes.items()}}


def _empty_row() -> dict[str, Any]:
    return {"decisions": 0, "by_action": {}, "labels": 0, "overturned": 0, "gold": {}, "disputes_opened": 0,
            "replies_without_sign_off": 0,
            "drafts": {"submitted": 0, "pending": 0, "approved": 0, "approved_at_once": 0, "rejected": 0}}


def _merge(into: dict[str, Any], row: dict[str, Any]) -> None:
    for key in ("decisions", "labels", "overturned", "disputes_opened", "replies_without_sign_off"):
        into[key] += row[key]
    for action, n in row["by_action"].items():
        into["by_action"][action] = into["by_action"].get(action, 0) + n
    for head, (agree, n) in row["gold"].items():
        total = into["gold"].setdefault(head, [0, 0])
        total[0] += agree
        total[1] += n
    for state, n in row["drafts"].items():
        into["drafts"][state] += n


def _finish(agent: str, row: dict[str, Any], minutes: dict[int, list[float]], sla: SLA) -> dict[str, Any]:
    tiers = {}
    for tier in (1, 2):
        values = np.array(minutes[tier])
        tiers[str(tier)] = {
            "first_responses": len(values),
            "median_minutes": None if not len(values) else round(float(np.median(values)), 1),
            "p90_minutes": None if not len(values) else round(float(np.percentile(values, 90)), 1),
            "sla_met": None if not len(values) else round(float((values <= sla.minutes(tier)).mean()), 3)}
    return {"agent": agent, "decisions": row["decisions"], "by_action": dict(sorted(row["by_action"].items())),
            "tiers": tiers,
            "gold_agreement": {h: {"agree": a, "n": n, "share": round(a / n, 3)}
                               for h in HEADS if (h in row["gold"]) for a, n in [row["gold"][h]]},
            "labels": row["labels"], "overturned": row["overturned"],
            "overturned_share": None if not row["labels"] else round(row["overturned"] / row["labels"], 3),
            "disputes_opened": row["disputes_opened"], "drafts": row["drafts"],
            "replies_without_sign_off": row["replies_without_sign_off"]}


def _disputes_opened(session: Any, since: datetime, until: datetime) -> Counter[str]:
    """Disputes opened per person in the window: by the time of the decision that opened one (replayed history
    reports as it happened), else when it was flagged. An entry is written after what it records, so entries
    before ``since`` cannot count."""
    entries = session.execute(select(AuditRow.actor, AuditRow.at, AuditRow.detail).where(
        AuditRow.kind == "dispute.opened", AuditRow.at >= since)).all()
    ids = [e.detail["decision_id"] for e in entries if e.detail.get("decision_id")]
    when = dict(_chunked(session, select(DecisionRow.id, DecisionRow.decided_at), DecisionRow.id, ids))
    counts: Counter[str] = Counter()
    for actor, at, detail in entries:
        moment = as_utc(when.get(detail.get("decision_id")) or at)
        if actor is not None and since <= moment < until:
            counts[actor] += 1
    return counts


def _first_decisions(session: Any, ids: list[str]) -> dict[str, int]:
    """{message id: the id of its first decision ever (by decided_at, then id)}."""
    out: dict[str, tuple[datetime, int]] = {}
    for message_id, when, decision_id in _chunked(
            session, select(DecisionRow.message_id, DecisionRow.decided_at, DecisionRow.id), DecisionRow.message_id,
            ids):
        key = (as_utc(when), decision_id)
        if message_id not in out or key < out[message_id]:
            out[message_id] = key
    return {m: k[1] for m, k in out.items()}


def _predicted_tiers(session: Any, ids: list[str]) -> dict[str, int | None]:
    latest = select(PredictionRow.message_id, func.max(PredictionRow.id).label("id")).group_by(PredictionRow.message_id)
    out = {}
    for chunk in chunks(ids):
        sub = latest.where(PredictionRow.message_id.in_(chunk)).subquery()
        for message_id, result in session.execute(select(PredictionRow.message_id, PredictionRow.result)
                                                  .join(sub, PredictionRow.id == sub.c.id)):
            out[message_id] = result.get("priority_tier")
    return out


def _chunked(session: Any, query: Any, column: Any, ids: list[Any], *, scalars: bool = False) -> list[Any]:
    """``query`` restricted to ``column IN ids``, in chunks (SQLite caps bound parameters)."""
    rows: list[Any] = []
    for chunk in chunks(ids):
        result = session.execute(query.where(column.in_(chunk)))
        rows.extend(result.scalars().all() if scalars else result.all())
    return rows


def table(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One flat row per agent and the team: what the CSV holds."""
    flat = []
    for row in [*report["agents"], report["team"]]:
        out = {"agent": row["agent"], "decisions": row["decisions"],
               **{f"action_{a}": n for a, n in row["by_action"].items()}}
        for tier, t in row["tiers"].items():
            out |= {f"tier{tier}_first_responses": t["first_responses"], f"tier{tier}_median_min": t["median_minutes"],
                    f"tier{tier}_p90_min": t["p90_minutes"], f"tier{tier}_sla_met": t["sla_met"]}
        out |= {f"gold_agreement_{h}": g["share"] for h, g in row["gold_agreement"].items()}
        out |= {"labels": row["labels"], "overturned_share": row["overturned_share"],
                "disputes_opened": row["disputes_opened"], **{f"drafts_{k}": v for k, v in row["drafts"].items()},
                "replies_without_sign_off": row["replies_without_sign_off"]}
        flat.append(out)
    return flat


def agents_figure(report: dict[str, Any]) -> Figure:
    """First response times per agent (box plots per tier, log scale, SLA lines) and the share within SLA."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["agent"] for r in report["agents"]] + [TEAM]
    fig, axes = plt.subplots(1, 2, figsize=(13, 0.5 * len(names) + 2.5), gridspec_kw={"width_ratios": [1.6, 1]})
    box = axes[0]
    for offset, (tier, color) in enumerate((("1", "indianred"), ("2", "steelblue"))):
        data = [report["response_minutes"].get(n, {}).get(tier) or [np.nan] for n in names]
        positions = np.arange(len(names)) * 3 + offset
        parts = box.boxplot(data, positions=positions, vert=False, widths=0.8, patch_artist=True, showfliers=True)
        for patch in parts["boxes"]:
            patch.set_facecolor(color)
            patch.set_alpha(0.6)
        box.axvline(report["sla_minutes"][tier], color=color, linestyle="--", linewidth=1,
                    label=f"tier {tier} SLA ({report['sla_minutes'][tier]:g} min)")
    box.set_yticks(np.arange(len(names)) * 3 + 0.5, names)
    box.set_xscale("log")
    box.set_xlabel("minutes from message to first decision (log scale)")
    box.set_title("first response time per agent (red: tier 1, blue: tier 2)")
    box.invert_yaxis()
    box.legend(fontsize=8, loc="upper right")
    share = axes[1]
    rows = [*report["agents"], report["team"]]
    y = np.arange(len(rows)) * 3
    for offset, (tier, color) in enumerate((("1", "indianred"), ("2", "steelblue"))):
        values = [r["tiers"][tier]["sla_met"] for r in rows]
        share.barh(y + offset, [np.nan if v is None else v for v in values], height=0.9, color=color,
                   label=f"tier {tier}")
    share.set_yticks(y + 0.5, [r["agent"] for r in rows])
    share.set_xlim(0, 1)
    share.set_xlabel("share of first responses within SLA")
    share.set_title("SLA met")
    share.invert_yaxis()
    share.legend(fontsize=8)
    fig.tight_layout()
    return fig
