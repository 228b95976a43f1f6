"""``triage-ml review suggest``: active learning fills the leads' review queue with the messages whose
gold label would teach the model most, each with the reason it was chosen.

Three sources, taken in turn so that none crowds out the others:
1. likely label errors: agent labels that the model's out-of-sample probabilities confidently contradict
   (cleanlab's ``find_label_issues``; out-of-fold probabilities from the model's training run where the
   message was trained on, the model's own prediction where it was not);
2. crisis candidates just under the crisis threshold (from half the threshold up to it);
3. the most uncertain predictions per head: the smallest margin between probability and threshold.
Only messages without a lead label, not already queued and not in an open dispute are candidates. The
model's scores are decided as ``/v1/score`` decides them (``scoring.escalate``, the escalation map's
watch-list included) before ranking, so a pre-annotation says what the service says.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from triage_ml.labels.export import training_table
from triage_ml.messages import CONTEXT_FIELDS, Message, message_record
from triage_ml.model.triage_model import TriageModel
from triage_ml.review.client import LabelStudio
from triage_ml.review.projects import QUEUE, ensure_project
from triage_ml.review.push import existing_message_tasks, import_in_batches, message_task
from triage_ml.routing import ROUTED_FIELDS, EscalationMap
from triage_ml.scoring import escalate
from triage_ml.store.db import Store
from triage_ml.store.tables import DisputeRow, LabelRow, MessageRow, ReviewQueueRow
from triage_ml.taxonomy import HEADS

_PROB = {"actionable": "actionable_prob", "priority_tier": "tier1_prob", "crisis": "crisis_risk"}


@dataclass
class Candidate:
    message_id: str
    why: list[dict[str, Any]] = field(default_factory=list)  # [{"rule", "head", "detail", "score"}]


def candidates(store: Store) -> pd.DataFrame:
    """Messages that may be suggested: message_id, text and the message fields (object columns: a missing
    field stays None, where pandas' string columns would make it NaN, which no JSON carries)."""
    with store.session() as session:
        led = select(LabelRow.message_id).where(LabelRow.source == "lead", LabelRow.superseded_by.is_(None))
        queued = select(ReviewQueueRow.message_id).where(ReviewQueueRow.state == "open")
        disputed = select(DisputeRow.message_id).where(DisputeRow.state == "open")
        rows = session.scalars(select(MessageRow).where(MessageRow.id.not_in(led), MessageRow.id.not_in(queued),
                                                        MessageRow.id.not_in(disputed)).order_by(MessageRow.id)).all()
        return pd.DataFrame([message_record(m.id, m.text, m) for m in rows],
                            columns=["message_id", "text", *CONTEXT_FIELDS], dtype=object)


def _value(cell: Any) -> Any:
    return None if cell is None or (isinstance(cell, float) and np.isnan(cell)) else cell


def decided(pool: pd.DataFrame, scores: pd.DataFrame, routes: EscalationMap, crisis_threshold: float) -> pd.DataFrame:
    """``scores`` (``predict_frame`` on ``pool``, same order) as the service decides them through
    ``scoring.escalate``: a watch-list match lifts crisis_risk to the map's floor, and a crisis is actionable
    and tier 1. Same columns; the crisis kind stays the model's."""
    rows = []
    for message, row in zip(pool.to_dict("records"), scores.to_dict("records"), strict=True):
        fields = {k: _value(message.get(k)) for k in ("message_id", *ROUTED_FIELDS)}
        rows.append(escalate(row, Message(text=message["text"], **fields), routes, crisis_threshold).flat())
    out = scores.copy()
    for column in ("actionable", "actionable_prob", "crisis_risk", "crisis"):
        out[column] = [r[column] for r in rows]
    for column in ("priority_tier", "tier1_prob", "tier2_prob"):
        out[column] = pd.Series([r[column] for r in rows], index=out.index, dtype=object)
    return out


def label_issues(given: np.ndarray, p: np.ndarray, floor: float = 0.1) -> np.ndarray:
    """Indices of likely wrong binary labels ``given`` (n,) under positive-class probabilities ``p`` (n,),
    most suspicious first: cleanlab's confident learning, or (with one class only, where it cannot
    estimate noise rates) the labels whose own probability is below ``floor``."""
    self_confidence = np.where(given == 1, p, 1 - p)
    if np.unique(given).size < 2 or len(given) < 10:
        suspects = np.flatnonzero(self_confidence < floor)
    else:
        from cleanlab.filter import find_label_issues

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            suspects = find_label_issues(given.astype(int), np.column_stack([1 - p, p]),
                                         return_indices_ranked_by="self_confidence")
    return np.asarray(sorted(suspects, key=lambda i: self_confidence[i]), dtype=int)


def _name(head: str, value: int) -> str:
    if head == "priority_tier":
        return f"tier {value}"
    return head if value == 1 else ("noise" if head == "actionable" else "no crisis")


Why = dict[str, Any]  # {"rule", "head", "score", "detail"}: why a message is suggested
Bucket = list[tuple[str, Why]]  # (message_id, why), best first


def rank(pool: pd.DataFrame, scores: pd.DataFrame, model: TriageModel, agent_labels: pd.DataFrame,
         oof: pd.DataFrame | None, n: int) -> list[Candidate]:
    """Choose up to ``n`` of ``pool`` (candidates) given the model's ``scores`` on them (predict_frame
    columns, same order), their agent labels (the export's rows) and the training run's OOF table: likely
    label errors first, then crisis candidates just under the threshold, then the smallest margins per head,
    taking from each rule in turn."""
    buckets = [_label_issues(pool, scores, agent_labels, oof), _near_crisis(pool, scores, model.thresholds["crisis"]),
               *(_uncertain(pool, scores, head, model.thresholds[head]) for head in HEADS)]
    return _take_in_turn(buckets, n)


def _label_issues(pool: pd.DataFrame, scores: pd.DataFrame, agent_labels: pd.DataFrame,
                  oof: pd.DataFrame | None) -> Bucket:
    """Likely label errors among agent labels: out-of-fold probabilities where the model trained on the message,
    its own otherwise."""
    issues: Bucket = []
    probs = scores.set_index(pool["message_id"].to_numpy())
    oof_probs = oof.set_index("message_id") if oof is not None and len(oof) else None
    agent = agent_labels[agent_labels["message_id"].isin(pool["message_id"])]
    for head in HEADS:
        rows = agent[agent[f"{head}_source"].isin(["agent", "agents"])]
        if head == "priority_tier":
            rows = rows[rows["priority_tier"].isin([1, 2, "1", "2"])]
        if rows.empty:
            continue
        given = (rows["priority_tier"].astype(int) == 1).to_numpy().astype(int) if head == "priority_tier" \
            else rows[head].astype(bool).to_numpy().astype(int)
        p, where = [], []
        for mid in rows["message_id"]:
            if oof_probs is not None and mid in oof_probs.index and pd.notna(oof_probs.at[mid, f"{head}_prob"]):
                p.append(float(oof_probs.at[mid, f"{head}_prob"]))
                where.append("out-of-fold")
            else:
                p.append(float(probs.at[mid, _PROB[head]] if pd.notna(probs.at[mid, _PROB[head]]) else 0.5))
                where.append("unseen by the model")
        p_arr = np.asarray(p)
        for i in label_issues(given, p_arr):
            own = p_arr[i] if given[i] == 1 else 1 - p_arr[i]
            value = (1 if given[i] else 2) if head == "priority_tier" else int(given[i])
            issues.append((rows["message_id"].iloc[i], {
                "rule": "label_issue", "head": head, "score": round(1 - float(own), 4),
                "detail": f"agents said {_name(head, value)}; the model ({where[i]}) gives that p={own:.2f}: a likely "
                          "label error"}))
    return sorted(issues, key=lambda x: -x[1]["score"])


def _near_crisis(pool: pd.DataFrame, scores: pd.DataFrame, threshold: float) -> Bucket:
    """Crisis candidates just under the threshold (from half of it), the closest first."""
    risk = scores["crisis_risk"].to_numpy()
    near = np.flatnonzero((risk >= threshold / 2) & (risk < threshold))
    return [(pool["message_id"].iloc[i], {
        "rule": "crisis_near_threshold", "head": "crisis", "score": round(float(risk[i] / threshold), 4),
        "detail": f"crisis_risk {risk[i]:.3f} is just under the crisis threshold {threshold:.3f}"})
        for i in sorted(near, key=lambda i: -risk[i])]


def _uncertain(pool: pd.DataFrame, scores: pd.DataFrame, head: str, threshold: float) -> Bucket:
    """The smallest margins to the head's threshold (the tier only where the message is predicted actionable)."""
    p = scores[_PROB[head]].to_numpy(dtype=float)
    ok = ~np.isnan(p)
    margin = np.abs(p - threshold) / max(threshold, 1 - threshold)
    return [(pool["message_id"].iloc[i], {
        "rule": "uncertain", "head": head, "score": round(float(1 - margin[i]), 4),
        "detail": f"the model is unsure about {head}: p={p[i]:.2f} against its threshold {threshold:.2f}"})
        for i in np.argsort(margin, kind="stable") if ok[i]]


def _take_in_turn(buckets: list[Bucket], n: int) -> list[Candidate]:
    """Up to ``n`` messages, one from each bucket in turn; a message met again gains that rule's reason."""
    chosen: dict[str, Candidate] = {}
    positions = [0] * len(buckets)
    while len(chosen) < n and any(pos < len(b) for pos, b in zip(positions, buckets, strict=True)):
        for k, bucket in enumerate(buckets):
            while positions[k] < len(bucket):
                mid, why = bucket[positions[k]]
                positions[k] += 1
                if mid not in chosen:
                    chosen[mid] = Candidate(mid, [why])
                    break
                if why["rule"] not in {w["rule"] for w in chosen[mid].why}:
                    chosen[mid].why.append(why)
            if len(chosen) >= n:
                break
    return list(chosen.values())


@dataclass(frozen=True)
class SuggestReport:
    project_id: int
    added: list[Candidate]
    candidates: int


def suggest(store: Store, ls: LabelStudio, model: TriageModel, model_name: str, model_version: str, n: int,
            *, routes: EscalationMap, oof: pd.DataFrame | None = None, overlap: int = 1) -> SuggestReport:
    """Add up to ``n`` messages to the review-queue project, each task with its reasons and the service's
    decision (the model's prediction after the escalation map ``routes``) as a pre-annotation."""
    ls.check()
    project = ensure_project(store, ls, QUEUE, overlap=overlap)
    pool = candidates(store)
    if pool.empty or n <= 0:
        return SuggestReport(project.project_id, [], len(pool))
    scores = decided(pool, model.predict_frame(pool["text"].tolist()), routes, model.thresholds["crisis"])
    picked = rank(pool, scores, model, training_table(store), oof, n)
    by_id = pool.set_index("message_id")
    score_by_id = scores.set_index(pool["message_id"].to_numpy())
    found = existing_message_tasks(ls, project)
    tasks, fresh = [], []
    for c in picked:
        if c.message_id in found:
            continue
        message = {"message_id": c.message_id, **by_id.loc[c.message_id].to_dict()}
        s = score_by_id.loc[c.message_id]
        prediction = {"actionable": bool(s["actionable"]), "actionable_prob": float(s["actionable_prob"]),
                      "priority_tier": None if pd.isna(s["priority_tier"]) else int(s["priority_tier"]),
                      "crisis": bool(s["crisis"]), "crisis_risk": float(s["crisis_risk"]),
                      "model_name": model_name, "model_version": model_version}
        why = "Chosen for review because:\n" + "\n".join(f"- {w['detail']}" for w in c.why)
        tasks.append(message_task(message, why, prediction, queue_reasons=[w["rule"] for w in c.why]))
        fresh.append(c)
    created = import_in_batches(ls, project, tasks)
    task_ids = {**{c.message_id: found[c.message_id] for c in picked if c.message_id in found},
                **dict(zip([c.message_id for c in fresh], created, strict=True))}

    def remember(session: Session) -> None:
        now = datetime.now(UTC)
        for c in picked:
            session.add(ReviewQueueRow(message_id=c.message_id, review_project=project.ref,
                                       review_task_id=task_ids[c.message_id], why=c.why, model_version=model_version,
                                       state="open", created_at=now))

    store.write(remember)
    return SuggestReport(project.project_id, picked, len(pool))
