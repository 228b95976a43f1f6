"""Who you're talking to: what the label store already knows about a message's conversation and its author.

Every figure comes from the store alone, as of the message's ``created_at`` (else now), and leaves the message
itself out. A stored message's verdict (actionable, tier, crisis) is its current label where it has one (a
lead's over an agent's, the latest of each), else the latest prediction recorded for it. The README ("Context")
defines each field in the same words.

- ``conversation``: messages stored under the same ``conversation_id`` before this one (``turns_seen``, plus
  the turns the caller sent in ``thread``, if any); ``open_case``: one of them is actionable and has no
  closing decision (responded, archived, marked_spam, blocked); ``last_decision`` in the conversation (action,
  agent, when); ``minutes_since_brand_reply``: since the latest ``responded`` decision in it.
- ``customer``: the author's messages in the last 30 and 90 days, how many of them were tier 1 (questions,
  complaints, urgent needs, crises) and crises; the latest decision on any of their messages (its agent and
  action); ``repeat_contact``: another actionable message from them within the 24 hours before this one;
  ``sentiment_trend``: the predicted sentiment of their latest 5 messages of the last 90 days, oldest first.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import and_, func, or_, select

from triage_ml.messages import Message
from triage_ml.store.db import IN_CHUNK, Store, chunks
from triage_ml.store.tables import DecisionRow, LabelRow, MessageRow, PredictionRow
from triage_ml.taxonomy import close_prediction
from triage_ml.times import as_utc

CLOSING_ACTIONS: Final = frozenset({"responded", "archived", "marked_spam", "blocked"})
REPEAT_WINDOW: Final = timedelta(hours=24)
SENTIMENT_TREND: Final = 5  # how many of the author's latest messages the sentiment trend shows


@dataclass(frozen=True)
class Verdict:
    actionable: bool
    tier: int | None
    crisis: bool
    sentiment: str | None = None  # the latest prediction's, where the model had a sentiment head


@dataclass(frozen=True)
class ConversationContext:
    conversation_id: str
    turns_seen: int
    open_case: bool
    last_decision: dict[str, Any] | None
    minutes_since_brand_reply: float | None


@dataclass(frozen=True)
class CustomerContext:
    author: str
    messages_30d: int
    messages_90d: int
    tier1_30d: int
    tier1_90d: int
    crises_30d: int
    crises_90d: int
    last_agent: str | None
    last_outcome: str | None
    repeat_contact: bool
    sentiment_trend: list[str] = field(default_factory=list)  # the latest SENTIMENT_TREND messages', oldest first


@dataclass(frozen=True)
class Context:
    conversation: ConversationContext | None
    customer: CustomerContext | None

    def to_dict(self) -> dict[str, Any]:
        return {"conversation": None if self.conversation is None else asdict(self.conversation),
                "customer": None if self.customer is None else asdict(self.customer)}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Context | None:
        """A context as ``to_dict`` wrote it (a recorded result read back)."""
        if not d:
            return None
        conversation, customer = d.get("conversation"), d.get("customer")
        return cls(None if not conversation else ConversationContext(**conversation),
                   None if not customer else CustomerContext(**customer))

    def facts(self) -> dict[str, Any]:
        """What the escalation map's context conditions read (``routing.CONTEXT_CONDITIONS``)."""
        c, p = self.conversation, self.customer
        return {"open_case": bool(c and c.open_case), "repeat_contact": bool(p and p.repeat_contact),
                "conversation_turns": c.turns_seen if c else 0,
                "customer_messages_30d": p.messages_30d if p else 0, "customer_tier1_30d": p.tier1_30d if p else 0,
                "customer_tier1_90d": p.tier1_90d if p else 0, "customer_crises_90d": p.crises_90d if p else 0}


def lookup(store: Store, messages: Sequence[Message], thread_turns: Sequence[int] | None = None,
           now: datetime | None = None) -> list[Context]:
    """One Context per message, from one indexed query for the whole batch. ``thread_turns``: how
    many earlier turns each caller sent along (they count as seen)."""
    now = now or datetime.now(UTC)
    at = [as_utc(m.created_at) if m.created_at else now for m in messages]
    authors = sorted({m.author for m in messages if m.author})
    conversations = sorted({m.conversation_id for m in messages if m.conversation_id})
    if not authors and not conversations:
        return [Context(None, None) for _ in messages]
    oldest = min(at) - timedelta(days=90)
    stored, verdicts, decisions = _read(store, authors, conversations, oldest)
    by_author, by_conversation = defaultdict(list), defaultdict(list)
    for message_id, (author, conversation, posted) in stored.items():
        if author:
            by_author[author].append((posted, message_id))
        if conversation:
            by_conversation[conversation].append((posted, message_id))
    turns = thread_turns or [0] * len(messages)
    return [Context(_conversation(m, t, by_conversation, verdicts, decisions, extra)
                    if m.conversation_id else None,
                    _customer(m, t, by_author, verdicts, decisions) if m.author else None)
            for m, t, extra in zip(messages, at, turns, strict=True)]


def resolve_threads(store: Store, messages: Sequence[Message]) -> list[Message]:
    """``messages`` with each answered turn named by id only (``Thread.reply_to_id``) looked up in the store:
    its text becomes the answered turn, or the thread says it is not there."""
    wanted = sorted({m.thread.reply_to_id for m in messages if m.thread and m.thread.reply_to_id})
    texts: dict[str, str] = {}
    with store.reading() as conn:
        for part in chunks(wanted):
            texts.update(conn.execute(select(MessageRow.id, MessageRow.text).where(MessageRow.id.in_(part))).all())
    return [replace(m, thread=m.thread.resolved(texts.get(m.thread.reply_to_id) or None))
            if m.thread and m.thread.reply_to_id else m for m in messages]


def _conversation(m: Message, at: datetime, by_conversation: dict, verdicts: dict, decisions: dict,
                  extra_turns: int) -> ConversationContext:
    earlier = [(p, i) for p, i in by_conversation[m.conversation_id] if i != m.message_id and p <= at]
    ids = [i for _, i in earlier]
    open_case = any(verdicts.get(i, _NOISE).actionable and not any(
        d[0] <= at and d[2] in CLOSING_ACTIONS for d in decisions[i]) for i in ids)
    past = sorted(d for i in ids for d in decisions[i] if d[0] <= at)
    last = past[-1] if past else None
    replies = [d[0] for d in past if d[2] == "responded"]
    return ConversationContext(
        conversation_id=str(m.conversation_id), turns_seen=len(earlier) + extra_turns, open_case=open_case,
        last_decision=None if last is None else {"action": last[2], "agent": last[1], "at": last[0].isoformat()},
        minutes_since_brand_reply=None if not replies else round((at - replies[-1]).total_seconds() / 60, 1))


def _customer(m: Message, at: datetime, by_author: dict, verdicts: dict, decisions: dict) -> CustomerContext:
    def within(days: float) -> list[str]:
        return [i for p, i in by_author[m.author] if i != m.message_id and at - timedelta(days=days) <= p <= at]

    d30, d90 = within(30), within(90)
    repeat = [i for p, i in by_author[m.author]
              if i != m.message_id and at - REPEAT_WINDOW <= p <= at and verdicts.get(i, _NOISE).actionable]
    past = sorted(d for i in d90 for d in decisions[i] if d[0] <= at)
    last = past[-1] if past else None
    return CustomerContext(
        author=str(m.author), messages_30d=len(d30), messages_90d=len(d90),
        tier1_30d=sum(verdicts.get(i, _NOISE).tier == 1 for i in d30),
        tier1_90d=sum(verdicts.get(i, _NOISE).tier == 1 for i in d90),
        crises_30d=sum(verdicts.get(i, _NOISE).crisis for i in d30),
        crises_90d=sum(verdicts.get(i, _NOISE).crisis for i in d90),
        last_agent=None if last is None else last[1], last_outcome=None if last is None else last[2],
        repeat_contact=bool(repeat), sentiment_trend=_trend(by_author[m.author], set(d90), verdicts))


def _trend(posted: list[tuple[datetime, str]], within: set[str], verdicts: dict[str, Verdict]) -> list[str]:
    """The sentiments of the latest SENTIMENT_TREND messages among ``within`` that have one, oldest first."""
    known = [(p, verdicts[i].sentiment) for p, i in posted if i in within and i in verdicts and verdicts[i].sentiment]
    return [sentiment for _, sentiment in sorted(known)[-SENTIMENT_TREND:]]


_NOISE = Verdict(False, None, False)


def _read(store: Store, authors: list[str], conversations: list[str], oldest: datetime) -> tuple[
        dict[str, tuple[str | None, str | None, datetime]], dict[str, Verdict], dict[str, list[tuple]]]:
    """The authors' messages since ``oldest`` and the conversations' messages, each with its latest prediction,
    its current labels and its decisions: one query (a round trip counts more than the rows)."""
    latest = (select(func.max(PredictionRow.id)).where(PredictionRow.message_id == MessageRow.id)
              .correlate(MessageRow).scalar_subquery())
    recent = or_(MessageRow.created_at >= oldest, and_(MessageRow.created_at.is_(None),
                                                       MessageRow.first_seen >= oldest))
    query = (select(MessageRow.id, MessageRow.author, MessageRow.conversation_id,
                    func.coalesce(MessageRow.created_at, MessageRow.first_seen), PredictionRow.result,
                    LabelRow.id, LabelRow.head, LabelRow.value, LabelRow.source,
                    DecisionRow.id, DecisionRow.agent, DecisionRow.action,
                    func.coalesce(DecisionRow.decided_at, DecisionRow.received_at))
             .outerjoin(PredictionRow, PredictionRow.id == latest)
             .outerjoin(LabelRow, and_(LabelRow.message_id == MessageRow.id, LabelRow.superseded_by.is_(None)))
             .outerjoin(DecisionRow, DecisionRow.message_id == MessageRow.id))
    stored: dict[str, tuple[str | None, str | None, datetime]] = {}
    predicted: dict[str, dict[str, Any]] = {}
    labels: dict[str, dict[str, tuple[tuple[int, int], int]]] = defaultdict(dict)
    seen_decisions: dict[str, dict[int, tuple]] = defaultdict(dict)
    with store.reading() as conn:
        for start in range(0, max(len(authors), len(conversations)), IN_CHUNK):  # one query a chunk of each
            by_author = and_(MessageRow.author.in_(authors[start:start + IN_CHUNK]), recent)
            in_conversation = MessageRow.conversation_id.in_(conversations[start:start + IN_CHUNK])
            for (message_id, author, conversation, posted, result, label_id, head, value, source, decision_id,
                 agent, action, decided) in conn.execute(query.where(or_(by_author, in_conversation))):
                stored[message_id] = (author, conversation, as_utc(posted))
                if result is not None:
                    predicted[message_id] = result
                if label_id is not None:
                    rank = (1 if source == "lead" else 0, label_id)  # a lead's label first, then the newest
                    if head not in labels[message_id] or rank > labels[message_id][head][0]:
                        labels[message_id][head] = (rank, value)
                if decision_id is not None:
                    seen_decisions[message_id][decision_id] = (as_utc(decided), agent, action)
    verdicts = {}
    for message_id in stored:
        p, got = predicted.get(message_id, {}), {h: v for h, (_, v) in labels.get(message_id, {}).items()}
        crisis = bool(got.get("crisis", p.get("crisis", False)))
        actionable, tier = close_prediction(bool(got.get("actionable", p.get("actionable", False))),
                                            got.get("priority_tier", p.get("priority_tier")), crisis)
        verdicts[message_id] = Verdict(actionable, tier, crisis, (p.get("sentiment") or {}).get("label"))
    decisions = defaultdict(list, {m: list(d.values()) for m, d in seen_decisions.items()})
    return stored, verdicts, decisions


