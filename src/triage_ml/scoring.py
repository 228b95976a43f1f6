"""Scoring for the service and batch jobs: model + escalation map + explanations, per message."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final

import numpy as np

from triage_ml.context import Context
from triage_ml.explain import Explainer
from triage_ml.language import Language, detect
from triage_ml.messages import Message
from triage_ml.model.triage_model import TriageModel
from triage_ml.routing import ROUTED_FIELDS, EscalationMap, Route
from triage_ml.taxonomy import SENTIMENT_COLUMNS, SENTIMENTS, close_prediction


@dataclass
class LoadedModel:
    """A model as served: the TriageModel, its explainer and where it came from in the registry."""

    model: TriageModel
    name: str
    version: str
    alias: str
    run_id: str | None = None
    loaded_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    explainer: Explainer = field(init=False)

    def __post_init__(self) -> None:
        self.explainer = Explainer(self.model)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


@dataclass(frozen=True, slots=True)
class CrisisKind:
    kind: str
    probability: float | None  # None: named by the watch-list topic the text matched, not by the model


@dataclass(frozen=True, slots=True)
class Sentiment:
    label: str  # negative | neutral | positive (taxonomy.SENTIMENTS)
    probs: dict[str, float]

    @classmethod
    def of(cls, prediction: Mapping[str, Any]) -> Sentiment | None:
        """From a row of ``TriageModel.predict_frame``; None when the model has no sentiment head."""
        if _missing(prediction.get("sentiment")):
            return None
        return cls(str(prediction["sentiment"]),
                   {s: round(float(prediction[c]), 4) for s, c in zip(SENTIMENTS, SENTIMENT_COLUMNS, strict=True)})


@dataclass(frozen=True, slots=True)
class ScoredMessage:
    """One message's result: the heads after the escalation map, the route, and why. Scoring returns it; the API
    and the label store take ``to_dict()``, batch files and Spark ``flat()``."""

    message_id: str | None
    actionable: bool
    actionable_prob: float
    priority_tier: int | None
    tier_probs: dict[str, float] | None
    crisis_risk: float
    crisis: bool
    crisis_kind: CrisisKind | None
    route: Route
    topics: tuple[str, ...] = ()  # the watch-list topics the text matched
    explanation: dict[str, Any] | None = None
    language: Language | None = None
    # the heads were trained on English: a message detected in another language is scored with less confidence
    low_confidence: bool = False
    context: Context | None = None  # what the label store knows of the conversation and the author
    # the thread the caller sent: turns, who wrote the answered one, whether the thread head read it, notes
    thread: dict[str, Any] | None = None
    sentiment: Sentiment | None = None  # the customer's tone (None: a model without a sentiment head)

    def to_dict(self) -> dict[str, Any]:
        """The API's result fields (the explanation names the topics)."""
        return {"message_id": self.message_id, "actionable": self.actionable, "actionable_prob": self.actionable_prob,
                "priority_tier": self.priority_tier, "tier_probs": self.tier_probs, "crisis_risk": self.crisis_risk,
                "crisis": self.crisis, "crisis_kind": None if self.crisis_kind is None else asdict(self.crisis_kind),
                "route": self.route.to_dict(), "explanation": self.explanation,
                "language": None if self.language is None else self.language.to_dict(),
                "low_confidence": self.low_confidence,
                "context": None if self.context is None else self.context.to_dict(), "thread": self.thread,
                "sentiment": None if self.sentiment is None else asdict(self.sentiment)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ScoredMessage:
        """A result as ``to_dict`` wrote it (e.g. read back from the label store)."""
        explanation = d.get("explanation")
        return cls(message_id=d["message_id"], actionable=d["actionable"], actionable_prob=d["actionable_prob"],
                   priority_tier=d["priority_tier"], tier_probs=d["tier_probs"], crisis_risk=d["crisis_risk"],
                   crisis=d["crisis"], crisis_kind=CrisisKind(**d["crisis_kind"]) if d.get("crisis_kind") else None,
                   route=Route.from_dict(d["route"]), topics=tuple((explanation or {}).get("topics", ())),
                   explanation=explanation, language=Language.from_dict(d.get("language")),
                   low_confidence=bool(d.get("low_confidence", False)), context=Context.from_dict(d.get("context")),
                   thread=d.get("thread"), sentiment=Sentiment(**d["sentiment"]) if d.get("sentiment") else None)

    def flat(self) -> dict[str, Any]:
        """One row of scalar columns (FLAT_COLUMNS): tier probabilities, crisis kind and route spread out."""
        probs, kind = self.tier_probs or {}, self.crisis_kind
        return {"message_id": self.message_id, "actionable": self.actionable, "actionable_prob": self.actionable_prob,
                "priority_tier": self.priority_tier, "tier1_prob": probs.get("1"), "tier2_prob": probs.get("2"),
                "crisis_risk": self.crisis_risk, "crisis": self.crisis, "crisis_kind": kind and kind.kind,
                "crisis_kind_prob": kind and kind.probability, "route_action": self.route.action,
                "route_team": self.route.team, "route_rule": self.route.rule,
                "route_sign_off": self.route.approval.by, "topics": list(self.topics),
                "language": None if self.language is None else self.language.code,
                "language_confidence": None if self.language is None else self.language.confidence,
                "low_confidence": self.low_confidence,
                "thread_used": bool(self.thread and self.thread["used"]),
                "sentiment": None if self.sentiment is None else self.sentiment.label}


FLAT_COLUMNS: Final = tuple(ScoredMessage(None, False, 0.0, None, None, 0.0, False, None,
                                          Route("", None, "")).flat())


def escalate(prediction: Mapping[str, Any], message: Message, routes: EscalationMap,
             crisis_threshold: float, context: Context | None = None) -> ScoredMessage:
    """The model's prediction for one message (a row of ``TriageModel.predict_frame``; a missing tier may
    be None or NaN) after the escalation map, without an explanation.

    A watch-list match lifts ``crisis_risk`` to the map's floor; a crisis is actionable and tier 1. A crisis
    names its kind: the model's (``crisis_kind``, ``crisis_kind_prob``), else the matched topic's, with no
    probability. The message's language is detected here (``language.py``): one in another language than the
    heads were trained on is ``low_confidence``, and the map may route on it. The service, ``score-batch``,
    Spark and review suggestions all decide through here."""
    topics = routes.topics_in(message.text)
    language = detect(message.text, routes.spec.language_min_confidence)
    crisis_risk = float(prediction["crisis_risk"])
    if topics:
        crisis_risk = max(crisis_risk, routes.crisis_floor)
    crisis = crisis_risk >= crisis_threshold
    model_tier = prediction["priority_tier"]
    actionable, tier = close_prediction(bool(prediction["actionable"]),
                                        None if _missing(model_tier) else int(model_tier), crisis)
    tier_probs = (None if _missing(prediction["tier1_prob"]) else
                  {"1": float(prediction["tier1_prob"]), "2": float(prediction["tier2_prob"])})
    if actionable and tier_probs is None:  # a watch-list crisis on a message the heads called noise
        tier_probs = {"1": 1.0, "2": 0.0}
    kind = None
    if crisis:
        model_kind = prediction.get("crisis_kind")
        if not _missing(model_kind):
            kind = CrisisKind(str(model_kind), float(prediction["crisis_kind_prob"]))
        elif (topic_kind := routes.topic_kind(topics)) is not None:
            kind = CrisisKind(topic_kind, None)
    return ScoredMessage(
        message_id=message.message_id, actionable=actionable, actionable_prob=float(prediction["actionable_prob"]),
        priority_tier=tier, tier_probs=tier_probs, crisis_risk=crisis_risk, crisis=crisis, crisis_kind=kind,
        route=route_for(routes, message, actionable=actionable, priority_tier=tier, crisis=crisis, topics=topics,
                        crisis_kind=kind.kind if kind else None, language=language.code,
                        context=None if context is None else context.facts()),
        topics=tuple(topics), language=language, low_confidence=language.foreign, context=context,
        thread=_thread_use(message, bool(prediction.get("thread_used", False))), sentiment=Sentiment.of(prediction))


def _thread_use(message: Message, used: bool) -> dict[str, Any] | None:
    """What the result says of the thread the caller sent (None when none was sent)."""
    if message.thread is None:
        return None
    out = {**message.thread.to_dict(), "used": used}
    if not used and message.thread.answered is not None:
        out["notes"] = [*out["notes"], "this model has no thread-aware head: judged on the text alone"]
    return out


def route_for(routes: EscalationMap, message: Message, **decided: Any) -> Route:
    """The map's route for a decided message: the decision's fields and the message's own (ROUTED_FIELDS)."""
    return routes.route(**decided, **{f: getattr(message, f) for f in ROUTED_FIELDS})


def score(loaded: LoadedModel, routes: EscalationMap, messages: Sequence[Message]) -> list[ScoredMessage]:
    """One result per message, in order. A watch-list match lifts crisis_risk to the map's floor."""
    return score_with_embeddings(loaded, routes, messages)[0]


def score_with_embeddings(loaded: LoadedModel, routes: EscalationMap, messages: Sequence[Message],
                          contexts: Sequence[Context | None] | None = None) -> tuple[list[ScoredMessage], np.ndarray]:
    """``score``, and the messages' embeddings (n, dim) for whoever watches the traffic (spike alerts).
    ``contexts``: what the label store knows of each message (``context.lookup``), when the caller has a store."""
    texts = [m.text for m in messages]
    model = loaded.model
    embeddings = model.encoder.encode(texts)
    frame = model.predict_frame(texts, embeddings=embeddings,
                                answered=[m.thread.answered if m.thread else None for m in messages])
    threshold = model.thresholds["crisis"]
    results = []
    contexts = contexts if contexts is not None else [None] * len(messages)
    for msg, emb, row, context in zip(messages, embeddings, frame.itertuples(index=False), contexts, strict=True):
        decided = escalate(row._asdict(), msg, routes, threshold, context)
        results.append(replace(decided, explanation=loaded.explainer.explain(msg.text, emb, decided)))
    return results, embeddings
