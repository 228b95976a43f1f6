"""The real-data benchmark: a training config judged on real tweets no model has seen.

For each variant (the config with some keys overridden), train exactly as ``triage-ml train`` does (seed data
less its gold set, plus real-train when the variant uses the real data; the same CV, thresholds and final
fit) and score two sets no model trained on: the seed gold set and real-test. Leave-one-domain-out trains
on every domain of the real data but one (and the seed data) and scores the held-out domain's tweets, to
say how the model does on an industry it has never seen.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from sklearn.metrics import f1_score

from triage_ml.data.real import is_real, load_real
from triage_ml.errors import ConfigError
from triage_ml.model.triage_model import TriageModel
from triage_ml.pipeline.config import RealDataConfig, TrainConfig
from triage_ml.pipeline.cv import head_targets
from triage_ml.pipeline.encoders import finetuned_encoders, make_encoder, onnx_exports
from triage_ml.pipeline.evaluate import evaluate_frame
from triage_ml.pipeline.metrics import head_metrics
from triage_ml.pipeline.tracking import load_training_data, split_gold
from triage_ml.pipeline.train import TrainingResult, train
from triage_ml.routing import EscalationMap
from triage_ml.settings import Settings

# The domains of the public data whose tweets are written to brands (the other two are random tweets).
BRAND_DOMAINS = ("apparel", "cars", "electronics", "food", "other", "retail", "services", "software", "transport")
TARGETS = {"actionable.macro_f1": 0.85, "priority_tier.macro_f1": 0.85, "crisis.best_recall_at_precision_0.5": 0.85}


def override(config: TrainConfig, changes: Mapping[str, Any]) -> TrainConfig:
    """``config`` with dotted keys replaced (``real_data.weight: 2``, ``finetune.enabled: false``); a key
    ``real_data`` set to true restores the default real data."""
    raw = config.to_dict()
    for dotted, value in changes.items():
        *parents, leaf = dotted.split(".")
        node = raw
        for key in parents:
            if not isinstance(node.get(key), dict):
                node[key] = RealDataConfig().model_dump() if key == "real_data" else {}
            node = node[key]
        node[leaf] = RealDataConfig().model_dump() if (dotted == "real_data" and value is True) else value
    return TrainConfig.from_dict(raw, source="variant")


def parse_variant(spec: str) -> tuple[str, dict[str, Any]]:
    """``name:key=value,key=value`` (values are YAML: ``null``, ``2``, ``false``) -> (name, changes)."""
    name, _, body = spec.partition(":")
    changes: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in body.split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"variant '{spec}': '{item}' is not key=value")
        changes[key.strip()] = yaml.safe_load(value)
    if not name:
        raise ConfigError(f"variant '{spec}': give it a name, e.g. weight2:real_data.weight=2")
    return name, changes


def kind_metrics(model: TriageModel, data: pd.DataFrame) -> dict[str, float]:
    """How well the kind head names the kind of the true crises of ``data`` that have one."""
    rows = ((data["crisis"] == True) & data["crisis_kind"].notna()).fillna(False).to_numpy(dtype=bool)  # noqa: E712
    if model.kind_head is None or not rows.any():
        return {}
    texts = data["text"].to_numpy()[rows].tolist()
    predicted = [k for k, _ in model.crisis_kinds(texts, model.encoder.encode(texts))]
    truth = data["crisis_kind"].to_numpy()[rows].astype(str)
    return {"n": float(rows.sum()), "accuracy": float(np.mean(np.array(predicted) == truth)),
            "macro_f1": float(f1_score(truth, predicted, average="macro", zero_division=0))}


def crisis_with_map(model: TriageModel, data: pd.DataFrame, routes: EscalationMap) -> dict[str, float]:
    """Crisis metrics of what the service decides: the model's crisis risk after the escalation map's
    watch-list lifts it to the map's floor (``scoring.escalate``), at the model's threshold."""
    texts = data["text"].tolist()
    risk = model.probabilities(texts, model.encoder.encode(texts))["crisis"]
    lifted = np.array([max(r, routes.crisis_floor) if routes.topics_in(t) else r for r, t in zip(risk, texts,
                                                                                                strict=True)])
    target = head_targets(data)["crisis"]
    return head_metrics("crisis", target.y, lifted[target.mask], model.thresholds["crisis"])


def _round(metrics: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    return {h: {k: round(v, 4) for k, v in m.items()} for h, m in metrics.items()}


def run_variant(config: TrainConfig, settings: Settings, seed_paths: Sequence[str | Path], *,
                real: RealDataConfig | None = None, progress: bool = False) -> dict[str, Any]:
    """Train ``config`` and score it on the seed gold set and real-test (``real``: where the real data is,
    default the config's or the bundled files)."""
    start = time.perf_counter()
    real = real or config.real_data or RealDataConfig()
    data, seed_gold = split_gold(load_training_data(seed_paths, config=config), config)
    real_test = load_real(real.texts, real.labels, split="test")
    encoder = make_encoder(config.encoder or settings.encoder, settings, config.batch_size)
    result = train(data, config, encoder, progress=progress, encoders=finetuned_encoders(settings))
    with tempfile.TemporaryDirectory() as tmp:  # judged as served: saved with its ONNX exports, loaded back
        model = TriageModel.load(result.model.save(Path(tmp) / "model", export_onnx=config.export_onnx,
                                                   onnx_exports=onnx_exports(settings)),
                                 threads=settings.torch_threads)
        scores = _scores(model, result, data, seed_gold, real_test, start)
        routes = EscalationMap.from_yaml(settings.routing_path)
        scores["real_test_crisis_with_map"] = {k: round(v, 4) for k, v in
                                               crisis_with_map(model, real_test, routes).items()}
        return scores


def _scores(model: TriageModel, result: TrainingResult, data: pd.DataFrame, seed_gold: pd.DataFrame,
            real_test: pd.DataFrame, start: float) -> dict[str, Any]:
    return {"rows": len(data), "real_train_rows": int(is_real(data["message_id"]).sum()),
            "thresholds": {h: round(t, 4) for h, t in model.thresholds.items()},
            "thresholds_chosen_on": result.cv.selected_on,
            "seed_gold": _round(evaluate_frame(model, seed_gold).metrics),
            "real_test": _round({**(ev := evaluate_frame(model, real_test)).metrics,
                                 **({"sentiment": ev.sentiment} if ev.sentiment else {})}),
            "real_test_crisis_kind": {k: round(v, 4) for k, v in kind_metrics(model, real_test).items()},
            "real_test_by_domain": {d: domain_metrics(model, part.reset_index(drop=True))
                                    for d, part in real_test.groupby("xci_domain")},
            "real_oof": _round(result.cv.real_metrics),
            **({"threads": result.threads.summary()} if result.threads is not None else {}),
            "train_seconds": round(time.perf_counter() - start, 1)}


def run_lodo(config: TrainConfig, settings: Settings, seed_paths: Sequence[str | Path], *,
             domains: Sequence[str] = BRAND_DOMAINS, progress: bool = False) -> dict[str, Any]:
    """Per held-out domain: train on the seed data and the real-train tweets of every other domain, score
    all of the held-out domain's tweets (real-train and real-test: this model saw none of them)."""
    real = config.real_data or RealDataConfig()
    everything = load_real(real.texts, real.labels)
    seed_train, _ = split_gold(load_training_data(seed_paths), config)
    encoder = make_encoder(config.encoder or settings.encoder, settings, config.batch_size)
    out: dict[str, Any] = {}
    for domain in domains:
        start = time.perf_counter()
        held = everything["xci_domain"] == domain
        if not held.any():
            raise ConfigError(f"no real tweets in domain '{domain}'")
        others = everything[~held & (everything["real_split"] == "train")]
        data = pd.concat([seed_train, others], ignore_index=True)
        result = train(data, config, encoder, progress=progress, encoders=finetuned_encoders(settings))
        test = everything[held].reset_index(drop=True)
        out[domain] = {"brand": domain in BRAND_DOMAINS, **domain_metrics(result.model, test),
                       "seconds": round(time.perf_counter() - start, 1)}
    return out


def domain_metrics(model: TriageModel, data: pd.DataFrame) -> dict[str, float]:
    """What a domain's figures need beside macro F1: in a brand's domain nearly every tweet is actionable,
    so the noise class has a handful of members and macro F1 swings with each; accuracy and per-class
    recall say more."""
    ev = evaluate_frame(model, data)
    act = ev.metrics["actionable"]
    y = ev.targets["actionable"].y
    correct = (ev.probs["actionable"][ev.targets["actionable"].mask] >= model.thresholds["actionable"]) == (y == 1)
    out = {"n": len(data), "noise": int((y == 0).sum()), "actionable.macro_f1": round(act["macro_f1"], 4),
           "actionable.accuracy": round(float(correct.mean()), 4),
           "actionable.recall": round(act["actionable.recall"], 4), "noise.recall": round(act["noise.recall"], 4)}
    if "priority_tier" in ev.metrics:
        tier = ev.metrics["priority_tier"]
        out |= {"priority_tier.macro_f1": round(tier["macro_f1"], 4), "tier2": int(tier["tier2.support"])}
    return out | {"crises": int((ev.targets["crisis"].y == 1).sum())}
