"""Writing to the label store: agent decisions, scoring results, lead resolutions, manual flags.

Each function runs in one transaction through ``Store.write``: a decision, its labels and any dispute it
opens are stored together or not at all, and a transaction that lost a race is run again from the top
(so a replayed ``event_id`` racing its original finds it and changes nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from triage_ml.errors import ConflictError, NotFoundError
from triage_ml.labels.decisions import Decision
from triage_ml.labels.disputes import (
    DisputePolicy,
    Reason,
    agent_vs_agent,
    agent_vs_model,
    crisis_vs_escalation,
    merge_reasons,
)
from triage_ml.labels.drafts import approved_reply, sign_off_for
from triage_ml.messages import CONTEXT_FIELDS, Message, message_record
from triage_ml.routing import EscalationMap
from triage_ml.store import audit
from triage_ml.store.audit import Actor
from triage_ml.store.db import Store, page
from triage_ml.store.tables import DecisionRow, DisputeRow, LabelRow, MessageRow, PredictionRow
from triage_ml.times import as_utc


def labels_out(labels: dict[str, int]) -> dict[str, Any]:
    """{head: value} as the API shows it: booleans for actionable and crisis, the tier as an int."""
    return {"actionable": None if "actionable" not in labels else bool(labels["actionable"]),
            "priority_tier": labels.get("priority_tier"),
            "crisis": None if "crisis" not in labels else bool(labels["crisis"])}


# -- messages and predictions ----------------------------------------------------------------------------
def _ensure_message(session: Session, message_id: str, text: str | None, fields: dict[str, Any],
                    *, where: str) -> MessageRow:
    """The message row, locked for this transaction; created from ``text`` when new."""
    row = session.get(MessageRow, message_id, with_for_update=True)
    if text is not None:
        text = text.replace("\x00", "\ufffd")  # PostgreSQL text cannot hold NUL; stored as U+FFFD everywhere
    if row is not None:
        _same_text(row, text, where)
        return row
    if text is None:
        raise NotFoundError(f"{where}: message '{message_id}' is unknown to the store (it was never scored with "
                            "this message_id); include the message's text to record it")
    if isinstance(fields.get("created_at"), str):
        fields = {**fields, "created_at": datetime.fromisoformat(fields["created_at"])}
    try:
        with session.begin_nested():
            session.add(MessageRow(id=message_id, text=text, **fields))
    except IntegrityError:  # created by a concurrent transaction in the meantime
        pass
    row = session.get(MessageRow, message_id, with_for_update=True, populate_existing=True)
    _same_text(row, text, where)
    return row


def _same_text(row: MessageRow, text: str | None, where: str) -> None:
    """A message id names one message: the same id with another text is refused, never answered with the
    other message's result or labels."""
    if text is not None and row.text != text:
        raise ConflictError(f"{where}: message '{row.id}' is already stored with a different text; a message_id "
                            "names one message, so give a new message its own id")


def record_predictions(store: Store, model_name: str, model_version: str,
                       items: Sequence[tuple[Message, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Record (message, result) pairs scored by a model version; messages without an id are skipped. Returns
    {message_id: result}: the result stored first, so a message id scored again by the same version answers
    the same."""

    def tx(session: Session) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for message, result in sorted(items, key=lambda item: item[0].message_id or ""):
            message_id = message.message_id
            if message_id is None or message_id in out:
                continue
            _ensure_message(session, message_id, message.text, {f: getattr(message, f) for f in CONTEXT_FIELDS},
                            where="message_id")
            stored = session.scalar(select(PredictionRow).where(
                PredictionRow.message_id == message_id, PredictionRow.model_name == model_name,
                PredictionRow.model_version == model_version))
            if stored is None:
                session.add(PredictionRow(message_id=message_id, model_name=model_name, model_version=model_version,
                                          result=result))
                out[message_id] = result
            else:
                out[message_id] = stored.result
        return out

    return store.write(tx)


def _prediction(session: Session, message_id: str, version: str | None) -> dict[str, Any] | None:
    """The prediction the agent saw (by model version), else the latest one recorded."""
    query = select(PredictionRow).where(PredictionRow.message_id == message_id)
    row = None
    if version is not None:
        row = session.scalar(query.where(PredictionRow.model_version == version).order_by(PredictionRow.id.desc()))
    if row is None:
        row = session.scalar(query.order_by(PredictionRow.id.desc()))
    return None if row is None else {**row.result, "model_version": row.model_version, "model_name": row.model_name}


# -- disputes --------------------------------------------------------------------------------------------
def _open_or_join(session: Session, message_id: str, reasons: list[dict[str, Any]],
                  actor: Actor) -> tuple[DisputeRow, bool]:
    """The message's open dispute with ``reasons`` added, and whether it is new (audited as ``dispute.opened``)."""
    dispute = session.scalar(select(DisputeRow).where(DisputeRow.message_id == message_id,
                                                      DisputeRow.state == "open").with_for_update())
    if dispute is None:
        dispute = DisputeRow(message_id=message_id, state="open", reasons=merge_reasons([], reasons))
        session.add(dispute)
        session.flush()
        audit.record(session, "dispute.opened", actor, f"dispute:{dispute.id}", message_id=message_id,
                     rules=sorted({r["rule"] for r in reasons}),
                     decision_id=next((r["decision_id"] for r in reasons if r.get("decision_id")), None))
        return dispute, True
    # a repeated reason is counted, not stored again; a new list, so the JSON column is written
    dispute.reasons = merge_reasons(dispute.reasons, reasons)
    session.flush()
    return dispute, False


def _now() -> datetime:
    return datetime.now(UTC)


# -- decisions -------------------------------------------------------------------------------------------
def record_decisions(store: Store, decisions: Sequence[Decision], policy: DisputePolicy,
                     role: str | None = "agent", routes: EscalationMap | None = None) -> list[dict[str, Any]]:
    """Store a batch of decisions atomically; returns one response per decision, in order. A replayed event
    gets the response it got the first time; an event id reused for a different decision raises
    ConflictError, and a decision on an unknown message without its text raises NotFoundError. Each new
    decision adds a ``decision`` entry to the audit trail (``role``: the sender's). With ``routes``, a
    'responded' decision whose reply needed sign-off (the map's approval section) and has no approved draft
    is stored with ``unapproved_reply`` and a ``reply.unapproved`` audit entry."""

    def tx(session: Session) -> list[dict[str, Any]]:
        results: dict[int, dict[str, Any]] = {}
        first: dict[str, int] = {}
        digests = [d.payload_hash() for d in decisions]
        # Lock messages in one global order (message id) so that concurrent batches cannot deadlock.
        for i in sorted(range(len(decisions)), key=lambda k: (decisions[k].message_id, k)):
            d, digest = decisions[i], digests[i]
            if d.event_id in first:
                if digests[first[d.event_id]] != digest:
                    raise ConflictError(f"decisions.{i}.event_id: '{d.event_id}' appears twice in this batch with "
                                        "different contents; give each decision its own event_id")
                results[i] = results[first[d.event_id]]
                continue
            first[d.event_id] = i
            stored = session.scalar(select(DecisionRow).where(DecisionRow.event_id == d.event_id))
            if stored is not None:
                if stored.payload_hash != digest:
                    raise ConflictError(f"decisions.{i}.event_id: '{d.event_id}' was already used for a different "
                                        "decision; a new decision needs a new event_id")
                results[i] = stored.response
                continue
            fields = {f: getattr(d, f) for f in CONTEXT_FIELDS}
            _ensure_message(session, d.message_id, d.text, fields, where=f"decisions.{i}.message_id")
            results[i] = _apply(session, d, digest, policy, role, routes)
        return [results[i] for i in range(len(decisions))]

    return store.write(tx)


def _apply(session: Session, d: Decision, digest: str, policy: DisputePolicy, role: str | None,
           routes: EscalationMap | None) -> dict[str, Any]:
    now = _now()
    labels = d.labels()
    row = DecisionRow(event_id=d.event_id, message_id=d.message_id, agent=d.agent, action=d.action,
                      model_version=d.model_version, payload=d.payload(), payload_hash=digest, response={},
                      received_at=now, decided_at=now if d.decided_at is None else as_utc(d.decided_at))
    session.add(row)
    session.flush()
    active = session.scalars(select(LabelRow).where(LabelRow.message_id == d.message_id,
                                                    LabelRow.superseded_by.is_(None))).all()
    others: dict[str, dict[str, int]] = {}
    for label in sorted(active, key=lambda lab: lab.id):
        if label.source == "agent" and label.author:
            others.setdefault(label.author, {})[label.head] = label.value
    new = {head: LabelRow(message_id=d.message_id, head=head, value=value, source="agent", author=d.agent,
                          decision_id=row.id, created_at=now) for head, value in labels.items()}
    session.add_all(new.values())
    session.flush()
    for label in active:  # the agent's own earlier label on a head is replaced, and kept
        if label.source == "agent" and label.author == d.agent and label.head in new:
            label.superseded_by = new[label.head].id
    prediction = _prediction(session, d.message_id, d.model_version)
    reasons: list[Reason] = [*agent_vs_agent(d.agent, labels, others),
                             *agent_vs_model(d.agent, labels, prediction, policy),
                             *crisis_vs_escalation(d.agent, d.action, labels, prediction, policy)]
    disputes = []
    actor = Actor(d.agent, role)
    if reasons:
        stamp = {"decision_id": row.id, "by": d.agent, "at": now.isoformat()}
        disputes.append(_open_or_join(session, d.message_id, [r.to_dict(**stamp) for r in reasons], actor)[0].id)
    response = {"event_id": d.event_id, "decision_id": row.id, "message_id": d.message_id,
                "labels": labels_out(labels), "disputes": disputes}
    if d.action == "responded" and routes is not None:
        need = sign_off_for(session, routes, d.message_id, d.agent, as_utc(d.decided_at or now).date())
        if need.required and approved_reply(session, d.message_id) is None:
            response["unapproved_reply"] = need.to_dict()
            audit.record(session, "reply.unapproved", actor, f"message:{d.message_id}", decision_id=row.id,
                         approval=need.to_dict())
    row.response = response  # assigned whole: a JSON column does not see changes made in place
    audit.record(session, "decision", actor, f"message:{d.message_id}", event_id=d.event_id, decision_id=row.id,
                 action=d.action, labels=labels_out(labels), disputes=disputes)
    return row.response


# -- leads -----------------------------------------------------------------------------------------------
def flag_dispute(store: Store, message_id: str, by: str, role: str, detail: str,
                 text: str | None = None) -> dict[str, Any]:
    """A manual flag by an agent or a lead: opens a dispute, or adds the reason to the open one (audited as
    ``dispute.opened`` or ``dispute.flagged``)."""

    def tx(session: Session) -> dict[str, Any]:
        _ensure_message(session, message_id, text, {}, where="message_id")
        reason = Reason("manual", f"flagged by {role} {by}: {detail}").to_dict(by=by, at=_now().isoformat())
        dispute, opened = _open_or_join(session, message_id, [reason], Actor(by, role))
        if not opened:
            audit.record(session, "dispute.flagged", Actor(by, role), f"dispute:{dispute.id}", message_id=message_id,
                         detail=detail)
        return dispute_view(session, dispute)

    return store.write(tx)


def store_lead_labels(session: Session, message_id: str, lead: str, labels: dict[str, int], *,
                      dispute_id: int | None, now: datetime, role: str | None = "lead") -> None:
    """Gold labels (source ``lead``) for a message; they supersede any earlier lead label on the same head.
    Audited as ``label.lead`` (``role``: how they came, e.g. ``lead`` through the API, ``label-studio``)."""
    active_lead = session.scalars(select(LabelRow).where(
        LabelRow.message_id == message_id, LabelRow.source == "lead", LabelRow.superseded_by.is_(None))).all()
    new = {head: LabelRow(message_id=message_id, head=head, value=value, source="lead", author=lead,
                          dispute_id=dispute_id, created_at=now) for head, value in labels.items()}
    session.add_all(new.values())
    session.flush()
    for label in active_lead:
        if label.head in new:
            label.superseded_by = new[label.head].id
    audit.record(session, "label.lead", Actor(lead, role), f"message:{message_id}", labels=labels_out(labels),
                 dispute_id=dispute_id)


def resolve_in_session(session: Session, dispute_id: int, lead: str, labels: dict[str, int], note: str | None,
                       *, role: str | None = "lead", **provenance: Any) -> DisputeRow:
    """Close an open dispute with a lead's labels (``provenance`` joins the stored resolution); audited as
    ``dispute.resolved`` and ``label.lead``."""
    dispute = session.get(DisputeRow, dispute_id, with_for_update=True)
    if dispute is None:
        raise NotFoundError(f"dispute {dispute_id} does not exist; list open ones with GET /v1/disputes")
    if dispute.state != "open":
        raise ConflictError(f"dispute {dispute_id} was already resolved by {dispute.resolved_by}; "
                            "flag the message again to reopen the question")
    now = _now()
    store_lead_labels(session, dispute.message_id, lead, labels, dispute_id=dispute.id, now=now, role=role)
    audit.record(session, "dispute.resolved", Actor(lead, role), f"dispute:{dispute.id}",
                 message_id=dispute.message_id, labels=labels_out(labels), note=note)
    dispute.state = "resolved"
    dispute.resolved_at = now
    dispute.resolved_by = lead
    dispute.resolution = {"labels": labels_out(labels), "note": note, **provenance}
    session.flush()
    return dispute


def resolve_dispute(store: Store, dispute_id: int, lead: str, labels: dict[str, int],
                    note: str | None, role: str | None = "lead") -> dict[str, Any]:
    """A lead's answer: gold labels (source ``lead``) for the message, and the dispute closed."""
    return store.write(lambda session: dispute_view(
        session, resolve_in_session(session, dispute_id, lead, labels, note, role=role)))


# -- reading ---------------------------------------------------------------------------------------------
def dispute_view(session: Session, dispute: DisputeRow) -> dict[str, Any]:
    """A dispute as leads see it: the message, the latest prediction, every decision, why it is disputed."""
    message = session.get(MessageRow, dispute.message_id)
    decisions = session.scalars(select(DecisionRow).where(DecisionRow.message_id == dispute.message_id)
                                .order_by(DecisionRow.id)).all()
    return {
        "id": dispute.id, "state": dispute.state, "opened_at": _iso(dispute.opened_at),
        "message": message_record(message.id, message.text, message),
        "prediction": _prediction(session, dispute.message_id, None),
        "decisions": [{"decision_id": d.id, "event_id": d.event_id, "agent": d.agent, "action": d.action,
                       "received_at": _iso(d.received_at), "labels": d.response.get("labels"), "event": d.payload}
                      for d in decisions],
        "reasons": dispute.reasons, "resolved_at": _iso(dispute.resolved_at), "resolved_by": dispute.resolved_by,
        "resolution": dispute.resolution,
        "review": None if dispute.review_task_id is None else {"task_id": dispute.review_task_id,
                                                               "pushed_at": _iso(dispute.pushed_at)},
    }


def dispute_page(store: Store, state: str | None, limit: int, offset: int) -> dict[str, Any]:
    """One page of disputes (``state`` None: all) by id: {disputes, limit, offset, total, next_offset}; the
    next page starts at ``next_offset``, None after the last."""
    where = [] if state is None else [DisputeRow.state == state]
    with store.session() as session:
        total = session.scalar(select(func.count()).select_from(DisputeRow).where(*where))
        rows = session.scalars(select(DisputeRow).where(*where).order_by(DisputeRow.id).limit(limit).offset(offset))
        views = [dispute_view(session, d) for d in rows.all()]
    return page("disputes", views, limit, offset, total)


def list_disputes(store: Store, state: str | None, limit: int, offset: int) -> list[dict[str, Any]]:
    return dispute_page(store, state, limit, offset)["disputes"]


def get_dispute(store: Store, dispute_id: int) -> dict[str, Any]:
    with store.session() as session:
        dispute = session.get(DisputeRow, dispute_id)
        if dispute is None:
            raise NotFoundError(f"dispute {dispute_id} does not exist")
        return dispute_view(session, dispute)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()

