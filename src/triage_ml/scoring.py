"""Scoring for the service and batch jobs: model + escalation map + explanations, per message."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from triage_ml.explain import Explainer
from triage_ml.model.triage_model import TriageModel
from triage_ml.routing import EscalationMap


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


@dataclass(frozen=True)
class Message:
    text: str
    message_id: str | None = None
    channel: str | None = None
    brand: str | None = None
    author: str | None = None
    conversation_id: str | None = None
    created_at: str | None = None
    is_private: bool | None = None


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
    results = []
    for msg, emb, row in zip(messages, embeddings, frame.itertuples(index=False), strict=True):
        topics = routes.topics_in(msg.text)
        crisis_risk = max(float(row.crisis_risk), routes.crisis_floor) if topics else float(row.crisis_risk)
        crisis = crisis_risk >= model.thresholds["crisis"]
        actionable = bool(row.actionable) or crisis
        tier = 1 if crisis else (row.priority_tier if actionable else None)
        tier_probs = ({"1": float(row.tier1_prob), "2": float(row.tier2_prob)} if row.tier1_prob is not None
                      else None)
        if actionable and tier_probs is None:  # a watch-list crisis on a message the heads called noise
            tier_probs = {"1": 1.0, "2": 0.0}
        result = {"message_id": msg.message_id, "actionable": actionable,
                  "actionable_prob": float(row.actionable_prob), "priority_tier": tier, "tier_probs": tier_probs,
                  "crisis_risk": crisis_risk, "crisis": crisis}
        result["route"] = routes.route(actionable=actionable, priority_tier=tier, crisis=crisis, topics=topics,
                                       author=msg.author, channel=msg.channel, brand=msg.brand,
                                       is_private=msg.is_private).to_dict()
        result["explanation"] = loaded.explainer.explain(msg.text, emb, result, topics)
        results.append(result)
    return results, embeddings
