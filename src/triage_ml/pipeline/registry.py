"""The model registry: who is champion, and the first form of the promotion gate."""

from __future__ import annotations

from dataclasses import dataclass, field

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from triage_ml.taxonomy import HEADS


@dataclass
class GateDecision:
    """Whether a challenger replaces the champion, and why."""

    promote: bool
    reasons: list[str]
    champion_version: str | None = None
    comparison: dict[str, dict[str, float]] = field(default_factory=dict)

    def summary(self) -> str:
        verdict = "promoted to champion" if self.promote else "kept as challenger"
        return f"{verdict}: " + "; ".join(self.reasons)


def alias_version(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def decide(challenger: dict[str, float], champion: dict[str, float] | None, tolerance: float,
           champion_version: str | None = None) -> GateDecision:
    """Promote when there is no champion, or when no head's macro F1 drops by more than ``tolerance``."""
    if champion is None:
        return GateDecision(True, ["no champion yet"])
    comparison = {h: {"challenger": challenger[h], "champion": champion[h],
                      "delta": challenger[h] - champion[h]} for h in HEADS}
    failed = [f"{h} macro F1 {c['challenger']:.4f} < champion {c['champion']:.4f} - tolerance {tolerance}"
              for h, c in comparison.items() if c["delta"] < -tolerance]
    if failed:
        return GateDecision(False, failed, champion_version, comparison)
    worst = min(comparison, key=lambda h: comparison[h]["delta"])
    return GateDecision(True, [f"no head lost more than {tolerance} macro F1 vs v{champion_version} "
                               f"(smallest change: {worst} {comparison[worst]['delta']:+.4f})"],
                        champion_version, comparison)
