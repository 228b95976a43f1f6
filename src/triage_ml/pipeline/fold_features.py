"""Where each cross-validation fold gets its features.

With a frozen encoder every fold shares one feature frame. With fine-tuning, the encoder must not have
seen a fold's held-out rows, so each fold fine-tunes its own encoder on its training rows and embeds
every row with it; the final model fine-tunes once more on all rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from triage_ml.features.encoder import Encoder
from triage_ml.features.finetune import FineTuneConfig, FineTunedEncoders, FineTuneResult
from triage_ml.features.frame import feature_frame
from triage_ml.pipeline.cv import HeadTarget


def embed(data: pd.DataFrame, encoder: Encoder, *, progress: bool = True) -> pd.DataFrame:
    texts = data["text"].tolist()
    return feature_frame(texts, encoder.encode(texts, progress=progress))


class FrozenFeatures:
    """One feature frame for every fold and the final fit (``encoder`` made it; None when unknown)."""

    def __init__(self, frame: pd.DataFrame, encoder: Encoder | None = None) -> None:
        self.frame = frame
        self.encoder = encoder

    @classmethod
    def of(cls, data: pd.DataFrame, encoder: Encoder, *, progress: bool = True) -> FrozenFeatures:
        return cls(embed(data, encoder, progress=progress), encoder)

    def fold(self, k: int, train: np.ndarray) -> pd.DataFrame:
        return self.frame

    def final(self) -> tuple[pd.DataFrame, Encoder]:
        if self.encoder is None:
            raise ValueError("these features came without their encoder; build them with FrozenFeatures.of")
        return self.frame, self.encoder


@dataclass
class FineTunedFeatures:
    """Fine-tunes ``base`` per fold (on the fold's training rows) and once on all rows.

    ``runs`` records each fine-tune (fold number, or "final", with its result) for logging.
    """

    data: pd.DataFrame
    targets: dict[str, HeadTarget]
    base: Encoder
    config: FineTuneConfig
    encoders: FineTunedEncoders
    seed: int
    progress: bool = True
    runs: list[tuple[str, FineTuneResult]] = field(default_factory=list)

    def _encoder(self, rows: np.ndarray, name: str) -> Encoder:
        texts = self.data["text"].to_numpy()[rows].tolist()
        tasks = {h: t.labels[rows] for h, t in self.targets.items()}
        result = self.encoders.get_or_train(self.base.path, self.base.fingerprint, texts, tasks, self.config,
                                            seed=self.seed, threads=self.base.threads, progress=self.progress,
                                            desc=f"fine-tuning ({name})")
        self.runs.append((name, result))
        return Encoder(result.path, cache=self.base.cache, batch_size=self.base.batch_size,
                       threads=self.base.threads)

    def fold(self, k: int, train: np.ndarray) -> pd.DataFrame:
        return embed(self.data, self._encoder(train, f"fold {k + 1}"), progress=self.progress)

    def final(self) -> tuple[pd.DataFrame, Encoder]:
        encoder = self._encoder(np.ones(len(self.data), dtype=bool), "final")
        return embed(self.data, encoder, progress=self.progress), encoder

    def summary(self) -> dict[str, float]:
        """Seconds per fine-tune (fold mean and final) and the final model's last epoch loss."""
        folds = [r for name, r in self.runs if name != "final"]
        final = [r for name, r in self.runs if name == "final"]
        out = {"finetune.folds_trained": float(sum(not r.cached for r in folds))}
        if folds:
            out["finetune.seconds_per_fold"] = float(np.mean([r.seconds for r in folds]))
        if final:
            out["finetune.final_seconds"] = float(final[-1].seconds)
            out["finetune.final_loss"] = float(final[-1].losses[-1])
        return out
