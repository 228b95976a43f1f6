"""``TrainConfig``: every training choice in one documented object, loaded from YAML, logged as-is."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from triage_ml.data.real import REAL_LABELS, REAL_TEXTS
from triage_ml.data.threads import THREADS
from triage_ml.errors import ConfigError
from triage_ml.features.finetune import FineTuneConfig
from triage_ml.taxonomy import HEADS


class HeadConfig(BaseModel):
    """Hyperparameters of one ``TextEmbeddingClassifier`` (see its docstring)."""

    model_config = ConfigDict(extra="forbid")
    text_weight: float = Field(0.5, ge=0, le=1)
    text_C: float = Field(10.0, gt=0)
    embedding_C: float = Field(4.0, gt=0)
    word_ngram_range: tuple[int, int] = (1, 2)
    char_ngram_range: tuple[int, int] = (2, 5)
    min_df: int = Field(1, ge=1)
    max_features: int = Field(200_000, ge=100)
    class_weight: Literal["balanced"] | None = "balanced"
    max_iter: int = Field(3000, ge=100)


class CalibrationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    method: Literal["sigmoid", "isotonic"] = "sigmoid"
    folds: int = Field(3, ge=2, description="inner folds of CalibratedClassifierCV")
    ensemble: bool = Field(False, description="True: one calibrated model per inner fold, averaged (3x the "
                           "predict cost); False: one model on all rows, calibrated on inner-fold predictions")
    refit_on_oof: bool = Field(True, description="refit a sigmoid per head on the out-of-fold probabilities "
                               "(fine-tuned embeddings make the inner calibration overconfident)")


class ThresholdConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    policy: Literal["best_f1", "best_macro_f1", "max_precision_at_recall"] = "best_f1"
    min_recall: float = Field(0.9, gt=0, le=1)


class HoldoutConfig(BaseModel):
    """The gold set: conversations never trained on, by a stable hash of their id, so every model of every
    retrain is judged on the same messages. Conversations with a lead label are held out at
    ``lead_fraction``, the others (seed, imported, agent labels) at ``seed_fraction``; 0 disables."""

    model_config = ConfigDict(extra="forbid")
    seed_fraction: float = Field(0.15, ge=0, lt=1)
    lead_fraction: float = Field(0.25, ge=0, lt=1)


class GateConfig(BaseModel):
    """What a new model must pass to become champion (besides ``promotion_tolerance`` per head)."""

    model_config = ConfigDict(extra="forbid")
    crisis_recall_floor: float = Field(0.8, ge=0, le=1, description="crisis recall on the gold set at the "
                                       "model's own threshold must reach this")
    smoke_max_p50_ms: float = Field(500.0, gt=0, description="median time to score one message through the "
                                    "registered pyfunc, in the smoke test")


class RealDataConfig(BaseModel):
    """The real labeled tweets (``data.real``, data/README.md). Their real-train part joins the training data;
    real-test never does, and the promotion gate judges every model on it."""

    model_config = ConfigDict(extra="forbid")
    texts: str = Field(str(REAL_TEXTS), description="the public tweets (CSV)")
    labels: str = Field(str(REAL_LABELS), description="the team's labels for them (CSV)")
    weight: float = Field(1.0, gt=0, description="sample weight of a real row in the heads' fits (other rows 1)")
    select_on_real: bool = Field(True, description="recalibrate each head and choose its threshold on the real "
                                 "rows' out-of-fold probabilities, so they follow real traffic's class balance")


class ThreadsConfig(BaseModel):
    """The thread-aware head (``model.thread_head``): trained on labeled threads, used for messages sent with
    the turn they answer. Its figures are measured on held-out threads (``pipeline.threads``)."""

    model_config = ConfigDict(extra="forbid")
    path: str = Field(str(THREADS), description="labeled threads (data/threads/messages.csv)")
    C: float = Field(1.0, gt=0, description="inverse regularisation of each head's logistic regression")
    folds: int = Field(5, ge=3, description="folds by thread for the held-out evaluation and its thresholds")


def _default_thresholds() -> dict[str, ThresholdConfig]:
    return {"actionable": ThresholdConfig(), "priority_tier": ThresholdConfig(),
            "crisis": ThresholdConfig(policy="max_precision_at_recall", min_recall=0.9)}


class TrainConfig(BaseModel):
    """How a TriageModel is trained. Unknown keys are refused, so a typo cannot pass silently."""

    model_config = ConfigDict(extra="forbid")
    seed: int = 42
    encoder: str | None = Field(None, description="None: the TRIAGE_ENCODER setting")
    batch_size: int = Field(64, ge=1)
    cv_folds: int = Field(3, ge=2, description="outer folds for out-of-fold predictions; with fine-tuning "
                          "each fold fine-tunes an encoder of its own")
    finetune: FineTuneConfig = FineTuneConfig()
    calibration: CalibrationConfig = CalibrationConfig()
    heads: dict[str, HeadConfig] = Field(default_factory=lambda: {h: HeadConfig() for h in HEADS})
    thresholds: dict[str, ThresholdConfig] = Field(default_factory=_default_thresholds)
    export_onnx: bool = Field(True, description="export the encoder to ONNX (fp32 + int8) with the model")
    promotion_tolerance: float = Field(0.01, ge=0, description="max macro-F1 loss per head vs champion")
    holdout: HoldoutConfig = HoldoutConfig()
    gate: GateConfig = GateConfig()
    real_data: RealDataConfig | None = Field(None, description="train on real-train and gate on real-test "
                                             "(default.yaml turns it on); None: the given files only")
    threads: ThreadsConfig | None = Field(None, description="fit the thread-aware head on labeled threads "
                                          "(default.yaml turns it on); None: messages are judged alone")
    sentiment_head: bool = Field(True, description="fit a negative/neutral/positive head on the rows whose "
                                 "sentiment is known (the real tweets' own label)")
    crisis_kind_head: bool = Field(True, description="fit a head naming the most likely crisis kind, on the "
                                   "crisis rows that have one")

    @field_validator("heads", "thresholds")
    @classmethod
    def _all_heads(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = set(value) - set(HEADS)
        if unknown:
            raise ValueError(f"unknown head(s) {sorted(unknown)}; heads are {', '.join(HEADS)}")
        missing = set(HEADS) - set(value)
        if missing:
            raise ValueError(f"missing head(s) {sorted(missing)}; give all of {', '.join(HEADS)}")
        return value

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        path = Path(path)
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark else ""
            raise ConfigError(f"{path}: invalid YAML{where}; fix the syntax") from None
        return cls.from_dict(raw, source=str(path))

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "config") -> TrainConfig:
        if not isinstance(raw, dict):
            raise ConfigError(f"{source}: the config must be a mapping of keys to values")
        heads = raw.get("heads")
        if isinstance(heads, dict) and "default" in heads:
            # ``default`` gives every head the same settings; per-head keys override it.
            base = heads["default"] or {}
            raw = {**raw, "heads": {h: {**base, **(heads.get(h) or {})} for h in HEADS}}
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"])
            raise ConfigError(f"{source}: '{field}': {err['msg']}") from None

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def flat_params(self) -> dict[str, str]:
        """Dotted key -> value, for MLflow params."""
        out: dict[str, str] = {}

        def walk(prefix: str, value: Any) -> None:
            if isinstance(value, dict):
                for k, v in value.items():
                    walk(f"{prefix}.{k}" if prefix else str(k), v)
            else:
                out[prefix] = str(value)

        walk("", self.to_dict())
        return out
