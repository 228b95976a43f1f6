"""Scoring for the service and batch jobs: model + escalation map + explanations, per message."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from triage_ml.explain import Explainer
from triage_ml.messages import Message
from triage_ml.model.triage_model import TriageModel
from triage_ml.routing import ROUTED_FIELDS, EscalationMap
from triage_ml.taxonomy import close_prediction


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


def escalate(prediction: Mapping[str, Any], message: Message, routes: EscalationMap,
             crisis_threshold: float) -> tuple[dict[str, Any], list[str]]:
    """The model's prediction for one message (a row of ``TriageModel.predict_frame``; a missing tier may
    be None or NaN) after the escalation map, and the sensitive topics the text matched.

    A watch-list match lifts ``crisis_risk`` to the map's floor; a crisis is actionable and tier 1. A crisis
    names its kind: the model's (``crisis_kind``, ``crisis_kind_prob``), else the matched topic's, with no
    probability. The result has the API's fields: actionable, actionable_prob, priority_tier, tier_probs,
    crisis_risk, crisis, crisis_kind and route. The service, ``score-batch`` and Spark all decide through
    here."""
    topics = routes.topics_in(message.text)
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
            kind = {"kind": str(model_kind), "probability": float(prediction["crisis_kind_prob"])}
        elif (topic_kind := routes.topic_kind(topics)) is not None:
            kind = {"kind": topic_kind, "probability": None}
    route = routes.route(actionable=actionable, priority_tier=tier, crisis=crisis, topics=topics,
                         crisis_kind=kind["kind"] if kind else None,
                         **{f: getattr(message, f) for f in ROUTED_FIELDS})
    return {"actionable": actionable, "actionable_prob": float(prediction["actionable_prob"]),
            "priority_tier": tier, "tier_probs": tier_probs, "crisis_risk": crisis_risk, "crisis": crisis,
            "crisis_kind": kind, "route": route.to_dict()}, topics


def score(loaded: LoadedModel, routes: EscalationMap, messages: Sequence[Message]) -> list[dict[str, Any]]:
    """One result per message, in order. A watch-list match lifts crisis_risk to the map's floor."""
    return score_with_embeddings(loaded, routes, messages)[0]


def score_with_embeddings(loaded: LoadedModel, routes: EscalationMap,
                          messages: Sequence[Message]) -> tuple[list[dict[str, Any]], np.ndarray]:
    """``score``, and the messages' embeddings (n, dim) for whoever watches the traffic (spike alerts)."""
    texts = [m.text for m in messages]
    model = loaded.model
    embeddings = model.encoder.encode(texts)
    frame = model.predict_frame(texts, embeddings=embeddings)
    threshold = model.thresholds["crisis"]
    results = []
    for msg, emb, row in zip(messages, embeddings, frame.itertuples(index=False), strict=True):
        decided, topics = escalate(row._asdict(), msg, routes, threshold)
        result = {"message_id": msg.message_id, **decided}
        result["explanation"] = loaded.explainer.explain(msg.text, emb, result, topics)
        results.append(result)
    return results, embeddings
