"""The complaints benchmark: 10-fold stratified CV, macro F1 for complaint (2 classes, all tweets) and
severity (4 classes, complaints only), with the product's head estimator on frozen or fine-tuned
embeddings."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold
from tqdm.auto import tqdm

from triage_ml.data.importers import import_xci
from triage_ml.errors import ConfigError
from triage_ml.features.encoder import Encoder
from triage_ml.features.onnx_backend import export_onnx
from triage_ml.pipeline.config import TrainConfig
from triage_ml.pipeline.cv import HeadTarget, build_head
from triage_ml.pipeline.encoders import finetuned_encoders, make_encoder
from triage_ml.pipeline.fold_features import FineTunedFeatures, embed
from triage_ml.settings import Settings

PUBLISHED = {
    "complaint": {"Preotiuc-Pietro et al. 2019 (ACL), features + LR": 0.79,
                  "Jin & Aletras 2020 (COLING), fine-tuned transformers": 0.87,
                  "Jin & Aletras 2021 (NAACL), multi-task transformers": 0.882},
    "severity": {"Jin & Aletras 2021 (NAACL), multi-task transformers": 0.557},
}


def folds_for(complaint: np.ndarray, severity: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Fold per tweet, stratified on complaint and severity together, so that both tasks are scored on
    the same held-out tweets (severity on the complaints among them)."""
    key = np.where(complaint == 1, severity, 0)
    out = np.full(len(key), -1)
    for k, (_, test) in enumerate(StratifiedKFold(folds, shuffle=True, random_state=seed).split(key, key)):
        out[test] = k
    return out


def _fit_predict(features: pd.DataFrame, y: np.ndarray, train: np.ndarray, test: np.ndarray,
                 config: TrainConfig) -> np.ndarray:
    """The product's head (the actionable head's settings), argmax predictions, as published."""
    head = build_head(config.heads["actionable"], config).fit(features[train], y[train])
    return head.predict(features[test])


def _encoder(config: TrainConfig, settings: Settings, backend: str, workdir: Path) -> Encoder:
    """The config's encoder on ``backend``; ONNX backends export the encoder into ``workdir`` first, as
    training does for the model artifact."""
    encoder = make_encoder(config.encoder or settings.encoder, settings, config.batch_size)
    if backend == "torch":
        return encoder
    folder = workdir / "encoder"
    shutil.copytree(encoder.path, folder, ignore=shutil.ignore_patterns(".*", "README.md"))
    export_onnx(folder)
    return Encoder(folder, cache=encoder.cache, batch_size=config.batch_size, threads=settings.torch_threads,
                   backend=backend)


def run_xci_benchmark(path: str | Path, config: TrainConfig, settings: Settings, *, folds: int = 10,
                      backend: str = "torch", finetune: bool = False) -> dict:
    """Mean over folds of macro F1 for complaint (all tweets, 2 classes) and severity (complaints, 4 classes).

    ``finetune``: each fold fine-tunes the encoder multi-task on its training tweets (complaint on all,
    severity on the complaints), as the published multi-task model was trained, with the config's
    ``finetune`` settings; else the encoder stays frozen. ``backend`` (frozen only): the encoder runtime
    whose embeddings train and test the heads, to measure what int8 quantization costs.
    """
    if finetune and backend != "torch":
        raise ConfigError("--finetune trains with PyTorch; measure a backend's cost without it")
    start = time.perf_counter()
    data = import_xci(path)
    complaint = data["xci_complaint"].to_numpy()
    severity = data["xci_severity"].astype(int).to_numpy()
    fold_of = folds_for(complaint, severity, folds, config.seed)
    is_complaint = complaint == 1
    tasks = {"complaint": complaint.astype(np.int64), "severity": np.where(is_complaint, severity - 1, -1)}
    tuner = FineTunedFeatures(data, {h: HeadTarget(t) for h, t in tasks.items()},
                              make_encoder(config.encoder or settings.encoder, settings, config.batch_size),
                              config.finetune, finetuned_encoders(settings), config.seed) if finetune else None
    scores: dict[str, list[float]] = {"complaint": [], "severity": []}
    seconds = []
    with tempfile.TemporaryDirectory() as tmp:
        frozen = None if finetune else embed(data, _encoder(config, settings, backend, Path(tmp)))
        for k in tqdm(range(folds), desc="xci folds", unit="fold"):
            fold_start = time.perf_counter()
            train, test = fold_of != k, fold_of == k
            features = tuner.fold(k, train) if tuner else frozen
            pred = _fit_predict(features, complaint, train, test, config)
            scores["complaint"].append(float(f1_score(complaint[test], pred, average="macro")))
            sev_train, sev_test = train & is_complaint, test & is_complaint
            pred = _fit_predict(features, severity, sev_train, sev_test, config)
            scores["severity"].append(float(f1_score(severity[sev_test], pred, average="macro")))
            seconds.append(time.perf_counter() - fold_start)
    return {"benchmark": "xci", "folds": folds, "n_complaint": len(data), "n_severity": int(is_complaint.sum()),
            "finetune": config.finetune.model_dump(mode="json") if finetune else False,
            "complaint_macro_f1": round(float(np.mean(scores["complaint"])), 4),
            "severity_macro_f1": round(float(np.mean(scores["severity"])), 4),
            "complaint_fold_f1": [round(s, 4) for s in scores["complaint"]],
            "severity_fold_f1": [round(s, 4) for s in scores["severity"]],
            "seconds_per_fold": round(float(np.median(seconds)), 1),
            "encoder": config.encoder or settings.encoder, "backend": backend,
            "seconds": round(time.perf_counter() - start, 1)}
