"""Inference-only form of the fitted heads: the same numbers as scikit-learn, without its per-call overhead.

Scoring one message through three ``CalibratedClassifierCV(TextEmbeddingClassifier)`` heads costs about
9 ms in scikit-learn, mostly input validation and running the same word and char analyzers once per head.
Here each text is analyzed once per distinct analyzer, each head looks the n-grams up in its own
vocabulary, and the logistic regressions, the soft vote and the calibrators are applied with NumPy.
``CompiledHeads.from_heads`` returns None for any head layout it does not know, and the model then
uses scikit-learn; a unit test checks both paths agree to 1e-9 on the seed model.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import expit
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer

from triage_ml.model.heads import TextEmbeddingClassifier

# TfidfVectorizer parameters that decide how a text is split into terms (not which terms are kept).
_ANALYZER_PARAMS = ("analyzer", "ngram_range", "lowercase", "preprocessor", "tokenizer", "token_pattern",
                    "stop_words", "strip_accents", "encoding", "decode_error", "input")


@dataclass(frozen=True)
class _Block:
    """One fitted TfidfVectorizer of a head with the slice of the text regression's weights it feeds."""

    analyzer: str  # key into the shared analyzers
    vocabulary: dict[str, int]
    idf: np.ndarray | None
    coef: np.ndarray  # weights of this block's columns towards estimator.classes_[1]
    sublinear: bool
    binary: bool
    norm: str | None
    readable: bool  # word n-grams: their terms can be shown to agents

    def weights(self, counts: Counter[str]) -> tuple[np.ndarray, np.ndarray]:
        """(column ids, tf-idf values) of a text's term counts, normalised as the vectorizer does."""
        vocabulary = self.vocabulary
        hits = [(vocabulary[t], c) for t, c in counts.items() if t in vocabulary]
        if not hits:
            return np.empty(0, dtype=np.int64), np.empty(0)
        ids = np.fromiter((i for i, _ in hits), dtype=np.int64, count=len(hits))
        tf = np.fromiter((c for _, c in hits), dtype=np.float64, count=len(hits))
        if self.binary:
            tf = np.ones_like(tf)
        if self.sublinear:
            tf = np.log(tf) + 1.0
        if self.idf is not None:
            tf = tf * self.idf[ids]
        if self.norm == "l2":
            tf = tf / math.sqrt(float(tf @ tf))
        elif self.norm == "l1":
            tf = tf / float(np.abs(tf).sum())
        return ids, tf


@dataclass(frozen=True)
class _Member:
    """One (estimator, calibrator) pair of a calibrated head."""

    blocks: tuple[_Block, ...]
    text_intercept: float
    text_weight: float
    embedding_coef: np.ndarray | None  # (1, dim), as the regression keeps it
    embedding_intercept: np.floating
    calibrate: Callable[[np.ndarray], np.ndarray]  # estimator's P(classes_[1]) -> calibrated P(classes_[1])


@dataclass(frozen=True)
class _CompiledHead:
    members: tuple[_Member, ...]
    flip: bool  # True when the head's positive class (1) is classes_[0]


class CompiledHeads:
    """Positive-class probabilities of every head for (texts, embeddings), as ``TriageModel`` defines them."""

    def __init__(self, analyzers: dict[str, Callable[[str], list[str]]], heads: dict[str, _CompiledHead]) -> None:
        self._analyzers = analyzers
        self._heads = heads

    @classmethod
    def from_heads(cls, heads: dict[str, Any]) -> CompiledHeads | None:
        """Compile fitted heads; None when any head is not a calibrated binary TextEmbeddingClassifier."""
        analyzers: dict[str, Callable[[str], list[str]]] = {}
        compiled = {}
        for name, head in heads.items():
            one = _compile_head(head, analyzers)
            if one is None:
                return None
            compiled[name] = one
        return cls(analyzers, compiled)

    def probabilities(self, texts: Sequence[str], embeddings: np.ndarray) -> dict[str, np.ndarray]:
        """{head: (n,) probability of class 1}; ``embeddings`` is (n, dim) float32."""
        analyzed = {key: [Counter(analyze(t)) for t in texts] for key, analyze in self._analyzers.items()}
        out = {}
        for name, head in self._heads.items():
            proba = np.zeros(len(texts))
            for member in head.members:
                proba += member.calibrate(_member_proba(member, analyzed, embeddings))
            proba /= len(head.members)
            out[name] = 1.0 - proba if head.flip else proba
        return out

    def term_contributions(self, head: str, text: str) -> dict[str, float]:
        """Readable (word n-gram) terms of ``text`` and their push on the head's text regression towards
        class 1 (positive) or away from it (negative), summed over the head's members."""
        compiled = self._heads[head]
        scores: dict[str, float] = {}
        for member in compiled.members:
            for block in member.blocks:
                if not block.readable:
                    continue
                counts = Counter(self._analyzers[block.analyzer](text))
                ids, values = block.weights(counts)
                names = {block.vocabulary[t]: t for t in counts if t in block.vocabulary}
                sign = -1.0 if compiled.flip else 1.0
                for idx, value in zip(ids, values * block.coef[ids], strict=True):
                    if value:
                        scores[names[int(idx)]] = scores.get(names[int(idx)], 0.0) + sign * float(value)
        return scores


def _member_proba(member: _Member, analyzed: dict[str, list[Counter[str]]], embeddings: np.ndarray) -> np.ndarray:
    n = len(embeddings)
    proba = np.zeros(n)
    if member.text_weight > 0:
        logits = np.full(n, member.text_intercept)
        for block in member.blocks:
            for i, counts in enumerate(analyzed[block.analyzer]):
                ids, values = block.weights(counts)
                if len(ids):
                    logits[i] += float(values @ block.coef[ids])
        proba += member.text_weight * expit(logits)
    if member.text_weight < 1 and member.embedding_coef is not None:
        # Exactly as scikit-learn computes it: in the regression's dtype (float32 for float32 embeddings), as
        # a matrix product with the (1, dim) coefficients (a matrix-vector product rounds differently), and
        # weighted before the float64 sum. An isotonic calibrator's steep steps magnify any last-bit change.
        logits = (embeddings.astype(member.embedding_coef.dtype, copy=False) @ member.embedding_coef.T)[:, 0]
        proba += (1 - member.text_weight) * expit(logits + member.embedding_intercept)
    return proba


def _compile_head(head: Any, analyzers: dict[str, Callable[[str], list[str]]]) -> _CompiledHead | None:
    if not isinstance(head, CalibratedClassifierCV) or getattr(head, "method", None) not in ("sigmoid", "isotonic"):
        return None
    classes = list(getattr(head, "classes_", []))
    if len(classes) != 2 or 1 not in classes:
        return None
    members = []
    for calibrated in head.calibrated_classifiers_:
        est = calibrated.estimator
        if type(est) is not TextEmbeddingClassifier or len(calibrated.calibrators) != 1:
            return None
        if list(est.classes_) != classes:
            return None
        member = _compile_member(est, calibrated.calibrators[0], analyzers)
        if member is None:
            return None
        members.append(member)
    return _CompiledHead(tuple(members), flip=classes.index(1) == 0)


def _compile_member(est: TextEmbeddingClassifier, calibrator: Any,
                    analyzers: dict[str, Callable[[str], list[str]]]) -> _Member | None:
    blocks: list[_Block] = []
    text_intercept = 0.0
    if est.text_weight > 0:
        coef = est.text_model_.coef_
        if coef.shape[0] != 1:
            return None
        start = 0
        for _, vec in est.vectorizer_.transformer_list:
            if type(vec) is not TfidfVectorizer or callable(vec.analyzer) or vec.input != "content":
                return None
            params = vec.get_params()
            key = repr(tuple((p, params[p]) for p in _ANALYZER_PARAMS))
            analyzers.setdefault(key, vec.build_analyzer())
            size = len(vec.vocabulary_)
            blocks.append(_Block(key, dict(vec.vocabulary_), vec.idf_ if vec.use_idf else None,
                                 np.asarray(coef[0, start:start + size], dtype=np.float64), vec.sublinear_tf,
                                 vec.binary, vec.norm, readable=vec.analyzer == "word"))
            start += size
        if start != coef.shape[1]:
            return None
        text_intercept = float(est.text_model_.intercept_[0])
    embedding_coef, embedding_intercept = None, np.float64(0.0)
    if est.text_weight < 1:
        if est.embedding_model_.coef_.shape[0] != 1:
            return None
        embedding_coef = est.embedding_model_.coef_
        embedding_intercept = est.embedding_model_.intercept_[0]
    return _Member(tuple(blocks), text_intercept, float(est.text_weight), embedding_coef, embedding_intercept,
                   calibrator.predict)
