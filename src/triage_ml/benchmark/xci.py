"""The complaints benchmark: 10-fold stratified CV, macro F1 for complaint (2 classes, all tweets) and
severity (4 classes, complaints only), with the product's head estimator."""

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
from triage_ml.features.encoder import Encoder
from triage_ml.features.onnx_backend import export_onnx
from triage_ml.pipeline.config import TrainConfig
from triage_ml.pipeline.cv import build_head
from triage_ml.pipeline.tracking import make_encoder
from triage_ml.pipeline.train import embed
from triage_ml.settings import Settings

PUBLISHED = {
    "complaint": {"Preotiuc-Pietro et al. 2019 (ACL), features + LR": 0.79,
                  "Jin & Aletras 2020 (COLING), fine-tuned transformers": 0.87,
                  "Jin & Aletras 2021 (NAACL), multi-task transformers": 0.882},
    "severity": {"Jin & Aletras 2021 (NAACL), multi-task transformers": 0.557},
}


def cv_macro_f1(features: pd.DataFrame, y: np.ndarray, config: TrainConfig, head: str, folds: int,
                desc: str) -> tuple[float, list[float]]:
    """Mean over folds of macro F1 of argmax predictions (the published protocol), and per fold."""
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=config.seed)
    scores = []
    for train, test in tqdm(list(splitter.split(features, y)), desc=desc, unit="fold"):
        model = build_head(config.heads[head], config).fit(features.iloc[train], y[train])
        pred = model.predict(features.iloc[test])
        scores.append(float(f1_score(y[test], pred, average="macro")))
    return float(np.mean(scores)), scores


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
                      backend: str = "torch") -> dict:
    """``backend``: the encoder runtime whose embeddings train and test the heads (torch, onnx, onnx-int8),
    to measure what int8 quantization costs in macro F1."""
    start = time.perf_counter()
    data = import_xci(path)
    with tempfile.TemporaryDirectory() as tmp:
        encoder = _encoder(config, settings, backend, Path(tmp))
        features = embed(data, encoder)
    complaint = data["xci_complaint"].to_numpy()
    complaint_f1, complaint_folds = cv_macro_f1(features, complaint, config, "actionable", folds, "complaint")
    is_complaint = complaint == 1
    severity = data.loc[is_complaint, "xci_severity"].astype(int).to_numpy()
    severity_f1, severity_folds = cv_macro_f1(features[is_complaint].reset_index(drop=True), severity, config,
                                              "actionable", folds, "severity")
    return {"benchmark": "xci", "folds": folds, "n_complaint": len(data), "n_severity": int(is_complaint.sum()),
            "complaint_macro_f1": round(complaint_f1, 4), "severity_macro_f1": round(severity_f1, 4),
            "complaint_fold_f1": [round(s, 4) for s in complaint_folds],
            "severity_fold_f1": [round(s, 4) for s in severity_folds],
            "encoder": config.encoder or settings.encoder, "backend": backend,
            "seconds": round(time.perf_counter() - start, 1)}
