"""Which language a message is written in: py3langid (BSD licence, its 4.5 MB model ships inside the wheel,
nothing is downloaded; about 0.06 ms a message on one core).

The classifier heads are trained on English messages, so a message detected in another language is scored
with less confidence (``low_confidence``) and the escalation map can route it (``language:`` conditions).
Handles, hashtags and links are not language and are removed before detection. The detector names a language
only when its normalised probability is at least ``min_confidence`` (default 0.5: it prefers that language to
all others together); below that, or for a text without letters ("ok", an emoji), the language is ``und``
(undetermined) and the message is scored as usual. README, "Language", has the measurements behind the floor.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any, Final

ENGLISH: Final = "en"  # the language the heads are trained on
UNDETERMINED: Final = "und"
DEFAULT_MIN_CONFIDENCE: Final = 0.5
# py3langid names some varieties on their own; the product speaks of the macrolanguage (ISO 639-1)
_MACRO: Final = {"arz": "ar", "ary": "ar", "wuu": "zh", "yue": "zh", "uzs": "uz", "nn": "no", "gug": "gn"}
NAMES: Final = {"en": "English", "es": "Spanish", "fr": "French", "de": "German", "pt": "Portuguese",
                "it": "Italian", "nl": "Dutch", "tr": "Turkish", "pl": "Polish", "id": "Indonesian",
                "ms": "Malay", "ar": "Arabic", "hi": "Hindi", "ja": "Japanese", "zh": "Chinese", "ko": "Korean",
                "ru": "Russian", "uk": "Ukrainian", "sv": "Swedish", "da": "Danish", "no": "Norwegian",
                "fi": "Finnish", "el": "Greek", "he": "Hebrew", "fa": "Persian", "ur": "Urdu", "bn": "Bengali",
                "th": "Thai", "vi": "Vietnamese", "tl": "Tagalog", "ro": "Romanian", "cs": "Czech",
                "hu": "Hungarian", "ca": "Catalan"}
_NOT_LANGUAGE = re.compile(r"https?://\S+|www\.\S+|[@#][\w.]+")
_LETTER = re.compile(r"[^\W\d_]")


@dataclass(frozen=True)
class Language:
    """A message's language (ISO 639-1, or ``und``) and the detector's probability for its best guess."""

    code: str
    confidence: float

    @property
    def name(self) -> str:
        return NAMES.get(self.code, self.code)

    @property
    def foreign(self) -> bool:
        """Detected, and not the language the heads were trained on."""
        return self.code not in (ENGLISH, UNDETERMINED)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "confidence": self.confidence}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Language | None:
        return None if not d else cls(str(d["code"]), float(d["confidence"]))


_identifier: Any = None
_lock = threading.Lock()


def _model() -> Any:
    global _identifier
    if _identifier is None:
        with _lock:
            if _identifier is None:
                from py3langid.langid import MODEL_FILE, LanguageIdentifier

                _identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    return _identifier


def detect(text: str, min_confidence: float = DEFAULT_MIN_CONFIDENCE) -> Language:
    """The language of ``text``: ``und`` when it has no letters once handles, hashtags and links are gone, or
    when the best guess's probability is under ``min_confidence``."""
    words = _NOT_LANGUAGE.sub(" ", text).strip()
    if not _LETTER.search(words):
        return Language(UNDETERMINED, 0.0)
    code, probability = _model().classify(words)
    confidence = round(float(probability), 4)
    if confidence < min_confidence:
        return Language(UNDETERMINED, confidence)
    return Language(_MACRO.get(code, code), confidence)
