"""The promotion gate: a new model becomes champion only when every check passes, and the decision says
exactly which check failed.

Checks, in order:
- smoke: the registered pyfunc loads, scores the input example with every output column, and scores one
  message within ``gate.smoke_max_p50_ms`` (median of 20);
- gold crisis recall: on the gold set, at the model's own threshold, at least ``gate.crisis_recall_floor``;
- gold macro F1 per head: no more than ``promotion_tolerance`` below the champion's on the same gold set;
- folds macro F1 per head: the same on the same cross-validation folds (the champion's config trained
  again on them);
- real-test macro F1 per head (when the config uses the real data): no more than ``promotion_tolerance``
  below the champion's on the same real tweets, which no model trained on.
The first model has nothing to protect: it is promoted when it passes the smoke test, with any other
shortfall reported.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from triage_ml.pipeline.config import TrainConfig
from triage_ml.taxonomy import HEADS


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str
    challenger: float | None = None
    champion: float | None = None


@dataclass
class GateDecision:
    promote: bool
    checks: list[Check]
    champion_version: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def reasons(self) -> list[str]:
        """Why: the failed checks when refused, else a line on what passed (plus notes)."""
        failed = [c.detail for c in self.checks if not c.passed]
        if not self.promote:
            return failed
        if self.champion_version is None:
            return ["no champion yet", *failed, *self.notes]
        return [f"every check passed against v{self.champion_version} ({len(self.checks)} checks)", *self.notes]

    def summary(self) -> str:
        verdict = "promoted to champion" if self.promote else "kept as challenger"
        return f"{verdict}: " + "; ".join(self.reasons)

    def to_dict(self) -> dict[str, Any]:
        return {"promote": self.promote, "reasons": self.reasons, "champion_version": self.champion_version,
                "checks": [asdict(c) for c in self.checks]}


def smoke_test(model_uri: str, max_p50_ms: float, *, runs: int = 20) -> Check:
    """Load the pyfunc as a server would, score the input example, time single messages."""
    import mlflow

    from triage_ml.model.pyfunc import INPUT_EXAMPLE, SIGNATURE

    try:
        model = mlflow.pyfunc.load_model(model_uri)
        out = model.predict(INPUT_EXAMPLE)
    except Exception as exc:
        return Check("smoke", False, f"smoke test: {model_uri} does not load and score its input example "
                                     f"({type(exc).__name__}: {str(exc)[:200]})")
    expected = set(SIGNATURE.outputs.input_names())
    if len(out) != len(INPUT_EXAMPLE) or not expected <= set(out.columns):
        return Check("smoke", False, f"smoke test: the input example gave {len(out)} rows with columns "
                                     f"{sorted(out.columns)}; expected {len(INPUT_EXAMPLE)} rows with "
                                     f"{sorted(expected)}")
    times = []
    for i in range(runs):
        start = time.perf_counter()
        model.predict(INPUT_EXAMPLE.iloc[[i % len(INPUT_EXAMPLE)]])
        times.append((time.perf_counter() - start) * 1000)
    p50 = statistics.median(times)
    return Check("smoke", p50 <= max_p50_ms, f"smoke test: loads and scores its input example; one message takes "
                                             f"{p50:.1f} ms (median of {runs}; bound {max_p50_ms:g} ms)", p50)


def _head_check(kind: str, head: str, challenger: float, champion: float, tolerance: float,
                champion_version: str) -> Check:
    delta = challenger - champion
    # within a billionth: 0.79 - 0.80 is -0.010000000000000009 in binary, and a loss of exactly the tolerance passes
    return Check(f"{kind}.{head}.macro_f1", delta >= -tolerance - 1e-9,
                 f"{kind} {head} macro F1 {challenger:.4f} vs champion v{champion_version} {champion:.4f} "
                 f"({delta:+.4f}; tolerance {tolerance})", challenger, champion)


def decide(config: TrainConfig, smoke: Check, challenger_gold: dict[str, dict[str, float]],
           champion_gold: dict[str, dict[str, float]] | None, challenger_folds: dict[str, float],
           champion_folds: dict[str, float] | None, champion_version: str | None, *,
           challenger_real: dict[str, dict[str, float]] | None = None,
           champion_real: dict[str, dict[str, float]] | None = None) -> GateDecision:
    """The decision from every check; ``*_gold`` and ``*_real`` are per-head metrics on the gold set and on
    real-test (``evaluate``)."""
    checks = [smoke]
    notes: list[str] = []
    floor = config.gate.crisis_recall_floor
    crisis = challenger_gold.get("crisis")
    if crisis and crisis.get("crisis.support", 0) > 0:
        recall = crisis["recall_at_threshold"]
        before = (champion_gold or {}).get("crisis", {}).get("recall_at_threshold")
        checks.append(Check("gold.crisis.recall", recall >= floor,
                            f"gold crisis recall {recall:.3f} at threshold {crisis['threshold']:.3f} "
                            f"(floor {floor}; {int(crisis['crisis.support'])} crises in the gold set)", recall, before))
    else:
        notes.append("the gold set holds no crisis: the recall floor was not checked")
    if champion_version is not None:
        tol = config.promotion_tolerance
        for head in HEADS:
            if champion_gold and head in challenger_gold and head in champion_gold:
                checks.append(_head_check("gold", head, challenger_gold[head]["macro_f1"],
                                          champion_gold[head]["macro_f1"], tol, champion_version))
        for head in HEADS:
            if champion_folds is not None:
                checks.append(_head_check("folds", head, challenger_folds[head], champion_folds[head], tol,
                                          champion_version))
        for head in HEADS:
            if challenger_real and champion_real and head in challenger_real and head in champion_real:
                checks.append(_head_check("real_test", head, challenger_real[head]["macro_f1"],
                                          champion_real[head]["macro_f1"], tol, champion_version))
        promote = all(c.passed for c in checks)
    else:
        promote = smoke.passed
    return GateDecision(promote, checks, champion_version, notes)
