"""Fine-tuning the sentence encoder on labeled messages, multi-task: one shared body, one linear layer per
head, each head's cross-entropy only on the rows where its label is known, summed.

The result is an ordinary sentence-transformers folder (the fine-tuned body with the base model's pooling
and normalisation), so ``Encoder``, the ONNX export, the pyfunc and the service use it unchanged. The
classification layers only shape the body during training; the heads are then fitted on its embeddings.
Recipe measured on the complaints data (README, "Results"): mean pooling, a linear layer, class-weighted
cross-entropy, AdamW lr 4e-5 with a one-cycle schedule, batch 16, at most 64 tokens, 3 epochs.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from tqdm.auto import tqdm

from triage_ml.errors import ConfigError
from triage_ml.features.folders import build_into, keep_newest

FINETUNE_META = "finetune.json"


class FineTuneConfig(BaseModel):
    """How the encoder is fine-tuned before the heads are fitted (``enabled: false`` keeps it frozen)."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    epochs: int = Field(3, ge=1)
    learning_rate: float = Field(4e-5, gt=0, description="peak of the one-cycle schedule (AdamW)")
    warmup_fraction: float = Field(0.1, ge=0, lt=1, description="share of the steps spent warming up")
    batch_size: int = Field(16, ge=2)
    max_seq_length: int = Field(64, ge=8, le=512, description="tokens per message, in training and after")
    weight_decay: float = Field(0.01, ge=0)
    dropout: float = Field(0.1, ge=0, lt=1, description="on the pooled embedding, before each head's layer")
    class_weight: Literal["balanced"] | None = "balanced"


@dataclass(frozen=True)
class FineTuneResult:
    """A fine-tuned encoder folder and how it got there (losses are per epoch, summed over heads)."""

    path: Path
    losses: list[float]
    seconds: float
    cached: bool


def task_digest(texts: Sequence[str], tasks: Mapping[str, np.ndarray]) -> str:
    """A hash of the training rows: texts and every head's labels (-1 unknown), in order."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass") + b"\x00")
    for name in sorted(tasks):
        digest.update(name.encode() + b"\x01" + np.asarray(tasks[name], dtype=np.int64).tobytes())
    return digest.hexdigest()


def _check_tasks(texts: Sequence[str], tasks: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {}
    for name, labels in tasks.items():
        labels = np.asarray(labels, dtype=np.int64)
        if labels.shape != (len(texts),):
            raise ConfigError(f"fine-tuning head '{name}': {labels.shape[0]} labels for {len(texts)} texts")
        known = labels[labels >= 0]
        if np.unique(known).size < 2:
            raise ConfigError(f"fine-tuning head '{name}' needs labeled rows of at least two classes; "
                              "add labeled data or set finetune.enabled: false")
        out[name] = labels
    if not out:
        raise ConfigError("fine-tuning needs at least one head with labels")
    return out


def _batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffled batches of similar lengths (padding is the cost on CPU): shuffle, sort within windows of
    50 batches, cut, then shuffle the batch order."""
    order = rng.permutation(len(lengths))
    window = batch_size * 50
    batches = []
    for start in range(0, len(order), window):
        chunk = order[start:start + window]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches.extend(chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def finetune(base: Path, texts: Sequence[str], tasks: Mapping[str, np.ndarray], config: FineTuneConfig,
             out: Path, *, seed: int, threads: int | None = None, progress: bool = True,
             desc: str = "fine-tuning") -> list[float]:
    """Fine-tune the sentence-transformers folder ``base`` on ``texts`` and write the result to ``out``.

    ``tasks`` maps a head name to its labels, shape (n,), int class ids 0..k-1 with -1 where unknown.
    Returns the mean training loss of each epoch. Same inputs, seed and thread count: same weights.
    """
    import time

    import torch
    from sentence_transformers import SentenceTransformer

    tasks = _check_tasks(texts, tasks)
    start_time = time.perf_counter()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if threads:
        torch.set_num_threads(threads)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)

    st = SentenceTransformer(str(base), device="cpu", local_files_only=True)
    body = st[0].auto_model
    tokenizer = st[0].tokenizer
    batches = _Batches(tokenizer(list(texts), truncation=True, max_length=config.max_seq_length)["input_ids"],
                       tokenizer.pad_token_id or 0)
    layers = torch.nn.ModuleDict({name: torch.nn.Linear(int(body.config.hidden_size), int(labels.max()) + 1)
                                  for name, labels in sorted(tasks.items())})
    trainer = _Trainer(body, layers, tasks, config, steps=config.epochs * -(-len(texts) // config.batch_size))
    rng = np.random.default_rng(seed)
    body.train()
    layers.train()
    losses = []
    for epoch in range(config.epochs):
        bar = tqdm(batches.order(config.batch_size, rng), desc=f"{desc} epoch {epoch + 1}/{config.epochs}",
                   unit="batch", disable=not progress, leave=False)
        total, seen = 0.0, 0
        for idx in bar:
            total += trainer.step(*batches.padded(idx), idx) * len(idx)
            seen += len(idx)
            bar.set_postfix(loss=f"{total / seen:.3f}")
        losses.append(total / max(seen, 1))
    body.eval()

    st.max_seq_length = config.max_seq_length
    st.save(str(out), create_model_card=False)
    (out / FINETUNE_META).write_text(json.dumps({
        "config": config.model_dump(mode="json"), "seed": seed, "n_texts": len(texts),
        "labeled_rows": {name: int((labels >= 0).sum()) for name, labels in tasks.items()},
        "epoch_losses": losses, "seconds": round(time.perf_counter() - start_time, 1),
        "base": str(base)}, indent=2))
    return losses


class _Batches:
    """The texts' token ids, served as length-grouped batches padded to their longest text."""

    def __init__(self, encoded: list[list[int]], pad_id: int) -> None:
        self.encoded, self.pad_id = encoded, pad_id
        self.lengths = np.array([len(ids) for ids in encoded])

    def order(self, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
        return _batches(self.lengths, batch_size, rng)

    def padded(self, idx: np.ndarray) -> tuple[Any, Any]:
        """(input ids, attention mask) of the texts ``idx``, each (len(idx), longest)."""
        import torch

        width = int(self.lengths[idx].max())
        ids = torch.full((len(idx), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for row, i in enumerate(idx):
            ids[row, :self.lengths[i]] = torch.as_tensor(self.encoded[i])
            mask[row, :self.lengths[i]] = 1
        return ids, mask


class _Trainer:
    """The encoder and one linear layer per task, trained together: mean pooling, dropout, a (class-weighted)
    cross-entropy per task on its known labels, AdamW without decay on biases and LayerNorm, one-cycle rate."""

    def __init__(self, body: Any, layers: Any, tasks: Mapping[str, np.ndarray], config: FineTuneConfig,
                 *, steps: int) -> None:
        import torch

        self.body, self.layers = body, layers
        self.dropout = torch.nn.Dropout(config.dropout)
        self.labels = {name: torch.as_tensor(labels) for name, labels in tasks.items()}
        self.weights = {name: torch.as_tensor(_class_weights(labels, config.class_weight), dtype=torch.float32)
                        for name, labels in tasks.items()}
        no_decay = ("bias", "LayerNorm.weight", "LayerNorm.bias")
        self.params = [(n, p) for n, p in [*body.named_parameters(), *layers.named_parameters()] if p.requires_grad]
        self.optimizer = torch.optim.AdamW([
            {"params": [p for n, p in self.params if not n.endswith(no_decay)], "weight_decay": config.weight_decay},
            {"params": [p for n, p in self.params if n.endswith(no_decay)], "weight_decay": 0.0},
        ], lr=config.learning_rate, fused=True)  # fused: one kernel for all tensors, 5x faster a step on CPU
        self.schedule = _schedule(self.optimizer, config, steps)

    def step(self, ids: Any, mask: Any, idx: np.ndarray) -> float:
        """One optimisation step on one batch; its loss."""
        import torch

        hidden = self.body(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids)).last_hidden_state
        m = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = self.dropout((hidden * m).sum(1) / m.sum(1).clamp(min=1e-9))
        loss = hidden.new_zeros(())
        index = torch.as_tensor(idx)
        for name, layer in self.layers.items():
            y = self.labels[name][index]
            known = y >= 0
            if known.any():
                loss = loss + torch.nn.functional.cross_entropy(layer(pooled[known]), y[known],
                                                                weight=self.weights[name])
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for _, p in self.params], 1.0, foreach=True)
        self.optimizer.step()
        self.schedule.step()
        return float(loss.item())


def _schedule(optimizer: Any, config: FineTuneConfig, steps: int) -> Any:
    """The one-cycle rate over ``steps``: warm-up for ``warmup_fraction`` of them, then down linearly.
    OneCycleLR divides by (warm-up steps - 1): where that is 0 (150 texts in batches of 16 is 10 steps, a
    tenth of which is 1) the warm-up is 1.5 steps."""
    import torch

    warmup = max(config.warmup_fraction, 1e-3)
    if abs(warmup * steps - 1) < 1e-9:
        warmup = 1.5 / steps
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.learning_rate, total_steps=steps,
                                               pct_start=warmup, anneal_strategy="linear")


def _class_weights(labels: np.ndarray, mode: str) -> np.ndarray:
    """Per class: n / (k * count) when ``balanced`` (0 for a class with no example), else 1."""
    counts = np.bincount(labels[labels >= 0], minlength=int(labels.max()) + 1).astype(np.float64)
    weights = np.where(counts > 0, counts.sum() / (len(counts) * np.maximum(counts, 1)), 0.0)
    return weights if mode == "balanced" else np.ones_like(weights)


class FineTunedEncoders:
    """Fine-tuned encoder folders under ``root``, kept by a hash of everything that decides their weights
    (base model, config, seed, training rows), so a retrain on the same inputs reuses them. The ``keep``
    most recently used folders are kept (each is ~90 MB for MiniLM); older ones are removed."""

    def __init__(self, root: Path, *, keep: int = 16) -> None:
        self.root = root
        self.keep = keep

    def key(self, base_fingerprint: str, texts: Sequence[str], tasks: Mapping[str, np.ndarray],
            config: FineTuneConfig, seed: int) -> str:
        payload = json.dumps({"base": base_fingerprint, "config": config.model_dump(mode="json"), "seed": seed,
                              "rows": task_digest(texts, tasks)}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:24]

    def get_or_train(self, base: Path, base_fingerprint: str, texts: Sequence[str],
                     tasks: Mapping[str, np.ndarray], config: FineTuneConfig, *, seed: int,
                     threads: int | None = None, progress: bool = True, desc: str = "fine-tuning") -> FineTuneResult:
        """The fine-tuned folder for these inputs: kept from an earlier training, else trained now."""
        import time

        key = self.key(base_fingerprint, texts, tasks, config, seed)
        done = self.root / key
        if (done / FINETUNE_META).is_file():
            os.utime(done)
            meta = json.loads((done / FINETUNE_META).read_text())
            return FineTuneResult(done, meta["epoch_losses"], meta["seconds"], cached=True)
        start = time.perf_counter()
        losses = build_into(self.root, key, lambda target: finetune(
            base, texts, tasks, config, target, seed=seed, threads=threads, progress=progress, desc=desc))
        keep_newest(self.root, self.keep, FINETUNE_META)
        return FineTuneResult(done, losses, time.perf_counter() - start, cached=False)
