"""Short, honest explanations: the terms that pushed the decisive head, watch-list topics, and the
nearest labeled training examples."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from triage_ml.model.triage_model import TriageModel
from triage_ml.taxonomy import CRISIS_KIND_NAMES

if TYPE_CHECKING:
    from triage_ml.scoring import CrisisKind, ScoredMessage

_WORD = "word__"


@dataclass(frozen=True)
class _TermView:
    """One fitted TextEmbeddingClassifier inside a calibrated head, with its readable word-term coefficients."""

    head: Any  # the fitted TextEmbeddingClassifier
    coef: np.ndarray  # (n_features,), positive pushes towards the head's class 1; 0 for char n-grams
    names: np.ndarray


def _term_views(head: Any) -> list[_TermView]:
    views = []
    for calibrated in getattr(head, "calibrated_classifiers_", []):
        base = calibrated.estimator
        if not hasattr(base, "text_model_"):
            continue
        names = base.vectorizer_.get_feature_names_out()
        coef = base.text_model_.coef_[0].copy()
        names = names.astype(str)
        terms = np.char.replace(names, _WORD, "")
        readable = np.char.startswith(names, _WORD) & np.array([readable_term(t) for t in terms])
        coef[~readable] = 0.0
        views.append(_TermView(base, coef, terms))
    return views


def readable_term(term: str) -> bool:
    """A word n-gram reads as an explanation when it has at least one content (non-stop) word."""
    return any(w not in ENGLISH_STOP_WORDS for w in term.split())


def decisive_head(actionable: bool, crisis: bool) -> str:
    """The head whose answer decides the route: crisis, else actionable for noise, else the tier."""
    if crisis:
        return "crisis"
    return "priority_tier" if actionable else "actionable"


class Explainer:
    """Built once per model (it indexes the heads' vocabularies); ``explain`` is cheap per message."""

    def __init__(self, model: TriageModel, *, n_terms: int = 3, n_similar: int = 2) -> None:
        self.model = model
        self.n_terms = n_terms
        self.n_similar = n_similar
        ex, vectors = model.exemplars, model.exemplar_vectors
        self._vectors = vectors if ex is not None and vectors is not None else None
        if self._vectors is not None:  # plain lists and arrays: no pandas indexing per request
            self._ids = [str(v) for v in ex["message_id"]]
            self._texts = [str(v) for v in ex["text"]]
            self._known = {h: ex[h].notna().to_numpy() for h in model.heads}  # columns are named after the heads
            self._labels = {h: ex[h].tolist() for h in model.heads}

    @cached_property
    def _views(self) -> dict[str, list[_TermView]]:
        """The heads' vocabularies indexed for the scikit-learn path; built only when the heads cannot be
        compiled (the compiled heads carry their own term weights)."""
        return {name: _term_views(head) for name, head in self.model.heads.items()}

    def top_terms(self, head: str, text: str, towards_positive: bool) -> list[str]:
        if self.model.compiled is not None:
            scores = {t: v for t, v in self.model.compiled.term_contributions(head, text).items()
                      if readable_term(t)}
        else:
            scores = self._sklearn_term_scores(head, text)
        sign = 1.0 if towards_positive else -1.0
        ranked = sorted((t for t in scores if sign * scores[t] > 0), key=lambda t: -sign * scores[t])
        return ranked[: self.n_terms]

    def _sklearn_term_scores(self, head: str, text: str) -> dict[str, float]:
        scores: dict[str, float] = defaultdict(float)
        for view in self._views[head]:
            row = view.head.text_features([text])
            contrib = row.data * view.coef[row.indices]
            for idx, value in zip(row.indices, contrib, strict=True):
                if value:
                    scores[str(view.names[idx])] += value
        return scores

    def similar(self, head: str, embedding: np.ndarray) -> list[dict[str, Any]]:
        if self._vectors is None:
            return []
        sims = np.where(self._known[head], self._vectors @ embedding, -np.inf)
        top = np.argpartition(-sims, self.n_similar)[: self.n_similar] if len(sims) > self.n_similar \
            else np.arange(len(sims))
        out = []
        for i in top[np.argsort(-sims[top])]:
            if not np.isfinite(sims[i]):
                break
            text = self._texts[i]
            out.append({"message_id": self._ids[i], "text": text[:100] + ("…" if len(text) > 100 else ""),
                        "label": _label_name(head, self._labels[head][i]), "similarity": round(float(sims[i]), 3)})
        return out

    def explain(self, text: str, embedding: np.ndarray, result: ScoredMessage) -> dict[str, Any]:
        """Why ``result`` came out as it did: the deciding head, its probability and threshold, the terms that
        pushed it, the watch-list topics matched and the most similar training messages."""
        head = decisive_head(result.actionable, result.crisis)
        prob = {"crisis": result.crisis_risk, "actionable": result.actionable_prob,
                "priority_tier": (result.tier_probs or {}).get("1", 0.0)}[head]
        positive = {"crisis": True, "actionable": result.actionable, "priority_tier": result.priority_tier == 1}[head]
        terms = self.top_terms(head, text, towards_positive=positive)
        verdict = {"crisis": crisis_verdict(result.crisis_kind), "actionable": "noise",
                   "priority_tier": f"tier {result.priority_tier}"}[head]
        kind = result.crisis_kind if head == "crisis" else None
        topics = list(result.topics)
        kind_note = "" if not kind else ("; kind from the watch-list" if kind.probability is None
                                         else f"; kind p={kind.probability:.2f}")
        summary = f"{verdict} ({head} p={prob:.2f}, threshold {self.model.thresholds[head]:.2f}{kind_note})"
        if terms:
            summary += "; terms: " + ", ".join(terms)
        if topics:
            summary += "; watch-list: " + ", ".join(topics)
        if result.thread and result.thread["used"]:
            summary += f"; judged with the turn it answers (from the {result.thread['answered_from'] or 'thread'})"
        if result.route.because:
            summary += f"; routed by '{result.route.rule}' on context: " + ", ".join(result.route.because)
        language = result.language
        if result.low_confidence and language is not None:
            summary += (f"; written in {language.name} ({language.code}, p={language.confidence:.2f}): the model "
                        "was trained on English, so its scores are less certain")
        return {"summary": summary, "head": head, "terms": terms, "topics": topics,
                "similar": self.similar(head, embedding)}


def crisis_verdict(kind: CrisisKind | None) -> str:
    """"crisis: legal threat", or "crisis risk" when no kind is known."""
    return f"crisis: {CRISIS_KIND_NAMES.get(kind.kind, kind.kind)}" if kind else "crisis risk"


def _label_name(head: str, value: Any) -> str:
    if head == "priority_tier":
        return f"tier {int(value)}"
    if head == "actionable":
        return "actionable" if bool(value) else "noise"
    return "crisis" if bool(value) else "no crisis"
