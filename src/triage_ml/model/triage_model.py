"""``TriageModel``: one encoder, three calibrated heads, their thresholds, one ``predict``."""

from __future__ import annotations

import json
import pickle
import shutil
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from triage_ml.errors import ModelNotFoundError, NotFittedError
from triage_ml.features import onnx_backend
from triage_ml.features.encoder import Encoder
from triage_ml.features.frame import feature_frame
from triage_ml.features.onnx_backend import FP32, INT8, ONNX_DIR, OnnxExports
from triage_ml.model.compiled import CompiledHeads
from triage_ml.model.recalibration import Platt
from triage_ml.model.thread_head import ThreadHead
from triage_ml.taxonomy import HEADS, SENTIMENT_COLUMNS, SENTIMENTS, TAXONOMY_VERSION, close_prediction
from triage_ml.thread import Turn

META_FILE = "triage_model.json"
# The fitted heads, pickled (protocol 5) and zlib-compressed: joblib's pickler is pure Python, and the TF-IDF
# vocabularies made it take 2.6 s to load a model's heads (0.05 s now). Folders saved before keep ``.joblib``.
_HEADS = "heads.pickle.zlib"
_KIND_HEAD = "crisis_kind.pickle.zlib"
_THREAD_HEAD = "thread_head.pickle.zlib"
_SENTIMENT_HEAD = "sentiment.pickle.zlib"
_ENCODER = "encoder"
_SIMILARITY = "similarity_encoder"
_EXEMPLARS = "exemplars.parquet"
_EXEMPLAR_VECTORS = "exemplars.npy"
EXEMPLAR_COLUMNS = ("message_id", "text", *HEADS)


class TriageModel:
    """Encoder + heads + thresholds.

    ``heads`` maps each of ``actionable``, ``priority_tier`` and ``crisis`` to a fitted binary
    classifier whose positive class (1) is: actionable, tier 1, crisis. ``thresholds`` holds the
    probability at which each head says yes, after the head's ``recalibration`` (a sigmoid fitted on
    out-of-fold probabilities, see ``model.recalibration``) where there is one. ``exemplars`` (labeled
    training messages, columns EXEMPLAR_COLUMNS) and ``exemplar_vectors`` (their embeddings, (n, dim))
    let explanations cite the nearest labeled examples. ``kind_head`` (optional) is a fitted multi-class
    classifier over the crisis kinds on the base encoder's embeddings (``similarity_vectors``), asked only
    about crises. ``thread_head`` (optional, ``model.thread_head``) judges a message sent with the turn it
    answers. ``sentiment_head`` (optional) is a fitted multi-class classifier over SENTIMENTS on the model's
    own features: the customer's tone, which decides nothing.
    """

    def __init__(self, encoder: Encoder, heads: dict[str, Any], thresholds: dict[str, float],
                 *, taxonomy_version: str = TAXONOMY_VERSION, metadata: dict[str, Any] | None = None,
                 exemplars: pd.DataFrame | None = None, exemplar_vectors: np.ndarray | None = None,
                 recalibration: dict[str, Platt] | None = None, similarity_encoder: Encoder | None = None,
                 kind_head: Any | None = None, thread_head: ThreadHead | None = None,
                 sentiment_head: Any | None = None) -> None:
        missing = [h for h in HEADS if h not in heads or h not in thresholds]
        if missing:
            raise NotFittedError(f"TriageModel needs a fitted head and a threshold for: {', '.join(missing)}")
        self.encoder = encoder
        self.heads = heads
        self.thresholds = thresholds
        self.taxonomy_version = taxonomy_version
        self.metadata = metadata or {}
        self.exemplars = exemplars
        self.exemplar_vectors = exemplar_vectors
        self.recalibration = recalibration or {}
        self.similarity_encoder = similarity_encoder
        self.kind_head = kind_head
        self.thread_head = thread_head
        self.sentiment_head = sentiment_head
        self.compiled = CompiledHeads.from_heads({name: heads[name] for name in HEADS})

    # -- prediction ---------------------------------------------------------------------------------
    def head_probabilities(self, features: pd.DataFrame) -> dict[str, np.ndarray]:
        """Positive-class probability of each head, each of shape (n,), through scikit-learn."""
        out = {}
        for name in HEADS:
            head = self.heads[name]
            positive = list(head.classes_).index(1)
            out[name] = head.predict_proba(features)[:, positive]
        return self._recalibrated(out)

    def probabilities(self, texts: Sequence[str], embeddings: np.ndarray) -> dict[str, np.ndarray]:
        """Like ``head_probabilities`` from texts and their (n, dim) embeddings: through the compiled
        heads when the layout allows (same numbers, ~20x less overhead), else through scikit-learn."""
        if self.compiled is not None:
            return self._recalibrated(self.compiled.probabilities(texts, embeddings))
        return self.head_probabilities(feature_frame(list(texts), embeddings))

    def _recalibrated(self, probs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Each head's out-of-fold sigmoid (``model.recalibration``), where training fitted one."""
        return {h: self.recalibration[h](p) if h in self.recalibration else p for h, p in probs.items()}

    def crisis_kinds(self, texts: Sequence[str], embeddings: np.ndarray) -> list[tuple[str | None, float | None]]:
        """The likeliest crisis kind of each text and its probability; (None, None) without a kind head.
        Ask only about crises: the head was fitted on crisis messages alone."""
        if self.kind_head is None or len(texts) == 0:
            return [(None, None)] * len(texts)
        # The kind head reads the base encoder's space: fine-tuning pulls every crisis together, which blurs
        # the kinds (leave-one-out on real-train's crises: 0.77 correct on fine-tuned embeddings, 0.86 on base).
        # One text at a time: dynamic int8 scales activations per batch, and a message's kind must not depend
        # on which messages shared its batch (crises are rare, so this costs little).
        vectors = np.vstack([self.similarity_vectors([t], embeddings[i:i + 1]) for i, t in enumerate(texts)])
        proba = self.kind_head.predict_proba(feature_frame(list(texts), vectors))
        best = proba.argmax(axis=1)
        return [(str(self.kind_head.classes_[i]), float(proba[row, i])) for row, i in enumerate(best)]

    def with_threads(self, probs: dict[str, np.ndarray], embeddings: np.ndarray,
                     answered: Sequence[Turn | None]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """``probs`` (the heads on the texts alone) with the thread head's answer for each message whose
        answered turn is known, and which messages those are, (n,) bool. Without a thread head, unchanged."""
        used = np.array([turn is not None for turn in answered], dtype=bool)
        if self.thread_head is None or not used.any():
            return probs, np.zeros(len(answered), dtype=bool)
        rows = np.flatnonzero(used)
        turns = [answered[i] for i in rows]
        turn_vectors = self.encoder.encode([t.text for t in turns])
        from_brand = np.array([t.speaker == "brand" for t in turns])
        answer = self.thread_head.probabilities(embeddings[rows], turn_vectors, {h: p[rows] for h, p in probs.items()},
                                                from_brand, self.thresholds)
        out = {h: p.copy() for h, p in probs.items()}
        for h in out:
            out[h][rows] = answer[h]
        return out, used

    def predict_frame(self, texts: Sequence[str], *, embeddings: np.ndarray | None = None,
                      answered: Sequence[Turn | None] | None = None) -> pd.DataFrame:
        """One row per text: actionable, actionable_prob, priority_tier, tier1_prob, tier2_prob,
        crisis_risk, crisis, crisis_kind, crisis_kind_prob, thread_used, sentiment and its probabilities
        (SENTIMENT_COLUMNS). Tier columns are None for noise; the
        kind is None and its probability NaN unless a crisis. A crisis is always actionable, tier 1.
        ``embeddings`` (n, dim) may be passed when the caller already encoded ``texts``; ``answered``: the turn
        each text answers (None where unknown), read by the thread head (``thread_used`` says where)."""
        texts = list(texts)
        if embeddings is None:
            embeddings = self.encoder.encode(texts)
        probs, thread_used = self.with_threads(self.probabilities(texts, embeddings),
                                               embeddings, answered or [None] * len(texts))
        crisis = probs["crisis"] >= self.thresholds["crisis"]
        closed = [close_prediction(bool(a), 1 if t1 else 2, bool(c)) for a, t1, c in zip(
            probs["actionable"] >= self.thresholds["actionable"],
            probs["priority_tier"] >= self.thresholds["priority_tier"], crisis, strict=True)]
        actionable = np.array([a for a, _ in closed], dtype=bool)
        kinds: list[tuple[str | None, float | None]] = [(None, None)] * len(texts)
        crises = np.flatnonzero(crisis)
        for i, kind in zip(crises, self.crisis_kinds([texts[i] for i in crises], embeddings[crises]), strict=True):
            kinds[i] = kind
        return pd.DataFrame({
            "actionable": actionable,
            "actionable_prob": probs["actionable"].astype(float),
            "priority_tier": pd.Series([t for _, t in closed], dtype=object),
            "tier1_prob": pd.Series([float(p) if a else None for p, a in
                                     zip(probs["priority_tier"], actionable, strict=True)], dtype=object),
            "tier2_prob": pd.Series([float(1 - p) if a else None for p, a in
                                     zip(probs["priority_tier"], actionable, strict=True)], dtype=object),
            "crisis_risk": probs["crisis"].astype(float),
            "crisis": crisis,
            "crisis_kind": pd.Series([k for k, _ in kinds], dtype=object),
            "crisis_kind_prob": np.array([np.nan if p is None else p for _, p in kinds], dtype=float),
            "thread_used": thread_used,
            **self._sentiment_columns(texts, embeddings),
        })

    def _sentiment_columns(self, texts: list[str], embeddings: np.ndarray) -> dict[str, Any]:
        """``sentiment`` (the likeliest, None without a head) and one probability column per class (NaN)."""
        proba = self.sentiments(texts, embeddings)
        if proba is None:
            return {"sentiment": pd.Series([None] * len(texts), dtype=object),
                    **{c: np.full(len(texts), np.nan) for c in SENTIMENT_COLUMNS}}
        return {"sentiment": pd.Series([SENTIMENTS[i] for i in proba.argmax(axis=1)], dtype=object),
                **{c: proba[:, i].astype(float) for i, c in enumerate(SENTIMENT_COLUMNS)}}

    def sentiments(self, texts: Sequence[str], embeddings: np.ndarray) -> np.ndarray | None:
        """(n, 3) probabilities of negative, neutral, positive (SENTIMENTS); None without a sentiment head."""
        if self.sentiment_head is None:
            return None
        proba = self.sentiment_head.predict_proba(feature_frame(list(texts), embeddings))
        order = [list(self.sentiment_head.classes_).index(s) for s in SENTIMENTS]
        return proba[:, order]

    def similarity_vectors(self, texts: Sequence[str], embeddings: np.ndarray) -> np.ndarray:
        """Vectors whose cosine says whether two messages are about the same thing, (n, dim). A fine-tuned
        encoder pulls messages of one class together (on the seed data half of all pairs of one brand's
        messages were above 0.5), so a fine-tuned model carries its base encoder (int8) for this; a model
        with a frozen encoder uses its own ``embeddings``."""
        if self.similarity_encoder is None:
            return embeddings
        return self.similarity_encoder.encode(list(texts))

    # -- persistence --------------------------------------------------------------------------------
    def save(self, path: str | Path, *, export_onnx: bool = False, onnx_exports: OnnxExports | None = None) -> Path:
        """Write a self-contained folder: the encoder's files (with an ONNX export when asked, taken from
        ``onnx_exports`` when given, so an encoder is exported once), the heads and a JSON of the rest."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        shutil.copytree(self.encoder.path, path / _ENCODER, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns(".*", "README.md"))
        if export_onnx and not (path / _ENCODER / ONNX_DIR / FP32).is_file():
            if onnx_exports is None:
                onnx_backend.export_onnx(path / _ENCODER)
            else:
                onnx_exports.copy_into(self.encoder.path, self.encoder.fingerprint, path / _ENCODER / ONNX_DIR)
        if self.similarity_encoder is not None:
            _save_similarity_encoder(self.similarity_encoder, path / _SIMILARITY, onnx_exports)
        _dump(self.heads, path / _HEADS)
        if self.kind_head is not None:
            _dump(self.kind_head, path / _KIND_HEAD)
        if self.thread_head is not None:
            _dump(self.thread_head, path / _THREAD_HEAD)
        if self.sentiment_head is not None:
            _dump(self.sentiment_head, path / _SENTIMENT_HEAD)
        meta = {"taxonomy_version": self.taxonomy_version, "thresholds": self.thresholds,
                "recalibration": {h: platt.to_list() for h, platt in self.recalibration.items()},
                "encoder_fingerprint": self.encoder.fingerprint, "metadata": self.metadata}
        (path / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True, default=str))
        if self.exemplars is not None and self.exemplar_vectors is not None:
            self.exemplars.to_parquet(path / _EXEMPLARS, index=False)
            np.save(path / _EXEMPLAR_VECTORS, self.exemplar_vectors.astype(np.float32))
        return path

    @classmethod
    def load(cls, path: str | Path, *, batch_size: int = 64, threads: int | None = None,
             backend: str = "auto") -> TriageModel:
        path = Path(path)
        meta = json.loads((path / META_FILE).read_text())
        encoder = Encoder(path / _ENCODER, batch_size=batch_size, threads=threads, backend=backend)
        exemplars = vectors = None
        if (path / _EXEMPLARS).is_file():
            exemplars = pd.read_parquet(path / _EXEMPLARS)
            vectors = np.load(path / _EXEMPLAR_VECTORS)
        recalibration = {h: Platt(*values) for h, values in meta.get("recalibration", {}).items()}
        similarity = None
        if (path / _SIMILARITY / ONNX_DIR / INT8).is_file():
            # one thread: similarity is background work (spike alerts) and must not take the cores from scoring
            similarity = Encoder(path / _SIMILARITY, batch_size=batch_size, threads=1, backend="onnx-int8")
        heads = _load(path / _HEADS)
        if heads is None:
            raise ModelNotFoundError(f"{path} holds no heads ({_HEADS}); save or train the model again")
        return cls(encoder, heads, meta["thresholds"], kind_head=_load(path / _KIND_HEAD),
                   thread_head=_load(path / _THREAD_HEAD), sentiment_head=_load(path / _SENTIMENT_HEAD),
                   taxonomy_version=meta["taxonomy_version"], metadata=meta.get("metadata", {}),
                   exemplars=exemplars, exemplar_vectors=vectors, recalibration=recalibration,
                   similarity_encoder=similarity)


def _dump(value: Any, path: Path) -> None:
    path.write_bytes(zlib.compress(pickle.dumps(value, protocol=5), 3))


def _load(path: Path) -> Any:
    """What ``_dump`` wrote at ``path``; a folder saved before has joblib's file instead; None when neither."""
    if path.is_file():
        return pickle.loads(zlib.decompress(path.read_bytes()))
    legacy = path.with_name(path.name.split(".")[0] + ".joblib")
    return joblib.load(legacy) if legacy.is_file() else None


def _save_similarity_encoder(encoder: Encoder, folder: Path, onnx_exports: OnnxExports | None) -> None:
    """The base encoder as ONNX int8 only (~23 MB for MiniLM): what similarity needs, nothing more."""
    if (folder / ONNX_DIR / INT8).is_file():
        return
    shutil.copytree(encoder.path, folder, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".*", "README.md"))
    if onnx_exports is not None:
        onnx_exports.copy_into(encoder.path, encoder.fingerprint, folder / ONNX_DIR, names=(INT8,))
    elif not (folder / ONNX_DIR / INT8).is_file():  # the encoder's own folder may carry its export
        onnx_backend.export_onnx(folder)
    for heavy in (folder / "model.safetensors", folder / "pytorch_model.bin", folder / ONNX_DIR / FP32):
        heavy.unlink(missing_ok=True)
