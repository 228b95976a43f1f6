"""The escalation map: predictions -> an action and a team, as a YAML file editable without a deploy.

A map has author lists (``block``/``monitor``), sensitive topics (phrases or regexes that always need
PR approval: a match lifts ``crisis_risk`` to at least ``crisis_floor``), and ordered rules; the first
rule whose conditions all hold gives the route.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Final, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from triage_ml.errors import ConfigError
from triage_ml.taxonomy import CRISIS_KINDS

Action = Literal["escalate", "respond", "acknowledge", "monitor", "block", "ignore"]


class Condition(BaseModel):
    """All given fields must match; an absent field matches anything."""

    model_config = ConfigDict(extra="forbid")
    crisis: bool | None = None
    actionable: bool | None = None
    priority_tier: Literal[1, 2] | None = None
    sensitive_topic: bool | None = None
    is_private: bool | None = None
    channel: list[str] | None = None
    brand: list[str] | None = None
    crisis_kind: list[str] | None = None
    language: list[str] | None = Field(None, description="ISO 639-1 codes (es, fr, ...) or und (undetermined)")
    # what the label store knows (context.py); a message scored without a store lookup has none of it
    open_case: bool | None = None
    repeat_contact: bool | None = None
    conversation_turns: str | None = None
    customer_messages_30d: str | None = None
    customer_tier1_30d: str | None = None
    customer_tier1_90d: str | None = None
    customer_crises_90d: str | None = None

    @field_validator("conversation_turns", "customer_messages_30d", "customer_tier1_30d", "customer_tier1_90d",
                     "customer_crises_90d", mode="before")
    @classmethod
    def _comparison(cls, value: Any) -> str | None:
        if value is None:
            return None
        text = str(value)
        compare(text, 0)  # raises with the fix
        return text

    @field_validator("crisis_kind")
    @classmethod
    def _known_kinds(cls, kinds: list[str] | None) -> list[str] | None:
        return kinds if kinds is None else [_known_kind(k) for k in kinds]


def _known_kind(kind: str) -> str:
    if kind not in CRISIS_KINDS:
        raise ValueError(f"unknown crisis kind {kind!r}; use one of {', '.join(CRISIS_KINDS)}")
    return kind


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    when: Condition = Condition()
    action: Action
    team: str | None = None


class Topic(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    patterns: list[str] = Field(min_length=1)
    crisis_kind: str | None = Field(None, description="the crisis kind a match signals, named when the match "
                                    "(not the model) makes the message a crisis")

    @field_validator("crisis_kind")
    @classmethod
    def _known_kind(cls, kind: str | None) -> str | None:
        return kind if kind is None else _known_kind(kind)

    @field_validator("patterns")
    @classmethod
    def _compiles(cls, patterns: list[str]) -> list[str]:
        for p in patterns:
            try:
                re.compile(p, re.IGNORECASE)
            except re.error as exc:
                raise ValueError(f"pattern {p!r} is not a valid regex ({exc})") from None
        return patterns


class AuthorLists(BaseModel):
    model_config = ConfigDict(extra="forbid")
    block: list[str] = []
    monitor: list[str] = []


Approver = Literal["lead", "pr"]


class Probation(BaseModel):
    """A new agent whose every reply a lead signs off, up to and including ``until``."""

    model_config = ConfigDict(extra="forbid")
    agent: str = Field(min_length=1, max_length=256)
    until: date


class ApprovalPolicy(BaseModel):
    """Which replies need a sign-off before they go out: those to messages a rule named in ``routes`` routed
    (by a lead or PR), and every reply of an agent on probation (by a lead)."""

    model_config = ConfigDict(extra="forbid")
    routes: dict[str, Approver] = {}
    probation: list[Probation] = []


class RoutingMap(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = 1
    crisis_floor: float = Field(0.6, ge=0, le=1)
    authors: AuthorLists = AuthorLists()
    sensitive_topics: list[Topic] = []
    rules: list[Rule] = Field(min_length=1)
    approval: ApprovalPolicy = ApprovalPolicy()
    language_min_confidence: float = Field(0.5, ge=0, le=1, description=(
        "a message's language is named when the detector's probability reaches this, else it is und"))

    @field_validator("rules")
    @classmethod
    def _has_fallback(cls, rules: list[Rule]) -> list[Rule]:
        if rules[-1].when != Condition():
            raise ValueError("the last rule must have no conditions, so that every message gets a route")
        return rules

    @model_validator(mode="after")
    def _approval_names_rules(self) -> RoutingMap:
        names = [r.name for r in self.rules] + list(AUTHOR_RULES)
        for name in self.approval.routes:
            if name not in names:
                raise ValueError(f"approval.routes: no rule is named {name!r}; use a rule's name: {', '.join(names)}")
        return self


_COMPARISON = re.compile(r"^\s*(>=|<=|>|<|==)?\s*(\d{1,9})\s*$")
# context conditions: the boolean ones and the counted ones (compared with ">=1", "<3", "2")
CONTEXT_FLAGS: Final = ("open_case", "repeat_contact")
CONTEXT_COUNTS: Final = ("conversation_turns", "customer_messages_30d", "customer_tier1_30d", "customer_tier1_90d",
                         "customer_crises_90d")
_CONTEXT_WORDS: Final = {"open_case": "follow-up in an open case", "repeat_contact": "repeat contact within 24 h",
                         "conversation_turns": "earlier turns in the conversation",
                         "customer_messages_30d": "messages from this customer in 30 days",
                         "customer_tier1_30d": "tier-1 messages from this customer in 30 days",
                         "customer_tier1_90d": "tier-1 messages from this customer in 90 days",
                         "customer_crises_90d": "crises from this customer in 90 days"}


def compare(condition: str, value: int) -> bool:
    """``value`` against a map condition such as ``>=1``, ``<3`` or ``2`` (equal)."""
    match = _COMPARISON.match(condition)
    if match is None:
        raise ValueError(f"{condition!r} is not a comparison; write e.g. '>=1', '<3' or '2'")
    op, n = match[1] or "==", int(match[2])
    return {">=": value >= n, "<=": value <= n, ">": value > n, "<": value < n, "==": value == n}[op]


def context_reasons(cond: Condition, facts: dict[str, Any]) -> tuple[str, ...]:
    """The context a matched rule's conditions read, in words, for the explanation: "repeat contact within
    24 h", "tier-1 messages from this customer in 30 days: 3"."""
    out = [_CONTEXT_WORDS[k] for k in CONTEXT_FLAGS if getattr(cond, k) is not None and facts.get(k)]
    out += [f"{_CONTEXT_WORDS[k]}: {facts.get(k, 0)}" for k in CONTEXT_COUNTS if getattr(cond, k) is not None]
    return tuple(out)


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _problem(err: Any) -> str:
    """A validation error's message with its fix: an unknown field lists the fields accepted there."""
    if err.get("type") == "extra_forbidden":
        parents = [p for p in err["loc"][:-1] if isinstance(p, str)]
        model = _MODEL_AT.get(parents[-1]) if parents else RoutingMap
        accepted = f"; accepted here: {', '.join(model.model_fields)}" if model else ""
        return f"unknown field{accepted}"
    return str(err.get("msg", "invalid value")).removeprefix("Value error, ")


# The message fields a map's rules read (``EscalationMap.route``'s keywords of the same names).
ROUTED_FIELDS: Final = ("author", "channel", "brand", "is_private")


AUTHOR_RULES: Final = ("authors.block", "authors.monitor")  # the rule names of the author lists' routes


@dataclass(frozen=True)
class SignOff:
    """Whether a reply needs approval before it goes out, by whom (``pr`` when any reason asks for PR, else
    ``lead``), and why."""

    required: bool
    by: Approver | None
    reasons: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"required": self.required, "by": self.by, "reasons": list(self.reasons)}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> SignOff:
        return NO_SIGN_OFF if not d else cls(bool(d["required"]), d.get("by"), tuple(d.get("reasons", ())))


NO_SIGN_OFF: Final = SignOff(False, None)


@dataclass(frozen=True)
class Route:
    action: str
    team: str | None
    rule: str
    approval: SignOff = NO_SIGN_OFF
    # the context the matching rule read, in words (for the explanation; not part of the API's route)
    because: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "team": self.team, "rule": self.rule, "approval": self.approval.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Route:
        """A route as ``to_dict`` wrote it (results stored before sign-off existed have no ``approval``)."""
        return cls(d["action"], d.get("team"), d["rule"], SignOff.from_dict(d.get("approval")))


class EscalationMap:
    """A validated routing map with its topic regexes compiled."""

    def __init__(self, spec: RoutingMap, source: str = "<map>") -> None:
        self.spec = spec
        self.source = source
        self._topics = [(t.name, [re.compile(p, re.IGNORECASE) for p in t.patterns]) for t in spec.sensitive_topics]
        self._topic_kinds = {t.name: t.crisis_kind for t in spec.sensitive_topics if t.crisis_kind}
        self._block = {a.lower().lstrip("@") for a in spec.authors.block}
        self._monitor = {a.lower().lstrip("@") for a in spec.authors.monitor}
        self._probation = {p.agent.lower().lstrip("@"): p.until for p in spec.approval.probation}
        self.text = yaml.safe_dump(spec.model_dump(mode="json", exclude_defaults=True), sort_keys=False)

    @classmethod
    def from_yaml(cls, path: str | Path) -> EscalationMap:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"{path}: routing map not found") from None
        except (OSError, UnicodeDecodeError) as exc:  # a folder, no permission, not UTF-8 text
            raise ConfigError(f"{path}: routing map unreadable ({type(exc).__name__}: {exc}); it must be a UTF-8 "
                              "YAML file") from None
        return cls.from_text(text, str(path))

    @classmethod
    def from_text(cls, text: str, source: str = "<map>") -> EscalationMap:
        """The map in ``text`` (YAML); ConfigError names ``source``, the field and what it accepts."""
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            raise ConfigError(f"{source}: invalid YAML{f' at line {mark.line + 1}' if mark else ''}") from None
        except RecursionError:
            raise ConfigError(f"{source}: YAML nested too deeply to read") from None
        except ValueError as exc:  # a value YAML recognises but cannot build, e.g. the date 2026-13-45
            raise ConfigError(f"{source}: invalid YAML value ({exc})") from None
        try:
            routes = cls(RoutingMap.model_validate(raw), source=source)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"]) or "(top level)"
            raise ConfigError(f"{source}: '{field}': {_problem(err)}") from None
        routes.text = text
        return routes

    @property
    def version(self) -> str:
        """The map's version: the SHA-256 of its text (12 hex digits), the same on every worker."""
        return content_hash(self.text)[:12]

    @property
    def crisis_floor(self) -> float:
        return self.spec.crisis_floor

    def topics_in(self, text: str) -> list[str]:
        """Names of the sensitive topics whose patterns occur in ``text``."""
        return [name for name, patterns in self._topics if any(p.search(text) for p in patterns)]

    def topic_kind(self, topics: list[str]) -> str | None:
        """The crisis kind of the first matched topic that names one."""
        return next((self._topic_kinds[t] for t in topics if t in self._topic_kinds), None)

    def sign_off(self, rule: str, agent: str | None = None, on: date | None = None) -> SignOff:
        """Whether a reply to a message routed by ``rule`` needs sign-off; with ``agent``, also whether that agent
        is on probation on day ``on`` (default today, UTC)."""
        reasons, by = [], set()
        if (approver := self.spec.approval.routes.get(rule)) is not None:
            reasons.append(f"route '{rule}' needs {approver} sign-off")
            by.add(approver)
        until = self._probation.get((agent or "").lower().lstrip("@"))
        if until is not None and (on or datetime.now(UTC).date()) <= until:
            reasons.append(f"agent '{agent}' is on probation until {until.isoformat()}")
            by.add("lead")
        if not reasons:
            return NO_SIGN_OFF
        return SignOff(True, "pr" if "pr" in by else "lead", tuple(reasons))

    def route(self, *, actionable: bool, priority_tier: int | None, crisis: bool, topics: list[str],
              author: str | None = None, channel: str | None = None, brand: str | None = None,
              is_private: bool | None = None, crisis_kind: str | None = None, language: str | None = None,
              context: dict[str, Any] | None = None) -> Route:
        handle = (author or "").lower().lstrip("@")
        if handle and handle in self._block:
            return Route("block", None, AUTHOR_RULES[0], self.sign_off(AUTHOR_RULES[0]))
        if handle and handle in self._monitor:
            return Route("monitor", None, AUTHOR_RULES[1], self.sign_off(AUTHOR_RULES[1]))
        facts = {"crisis": crisis, "actionable": actionable, "priority_tier": priority_tier,
                 "sensitive_topic": bool(topics), "is_private": is_private}
        for rule in self.spec.rules:
            cond = rule.when
            if any(getattr(cond, k) is not None and getattr(cond, k) != v for k, v in facts.items()):
                continue
            if cond.channel is not None and channel not in cond.channel:
                continue
            if cond.brand is not None and brand not in cond.brand:
                continue
            if cond.crisis_kind is not None and crisis_kind not in cond.crisis_kind:
                continue
            if cond.language is not None and language not in cond.language:
                continue
            known = context or {}
            if any(getattr(cond, k) is not None and bool(known.get(k)) != getattr(cond, k) for k in CONTEXT_FLAGS):
                continue
            if any(getattr(cond, k) is not None and not compare(getattr(cond, k), int(known.get(k, 0)))
                   for k in CONTEXT_COUNTS):
                continue
            return Route(rule.action, rule.team, rule.name, self.sign_off(rule.name), context_reasons(cond, known))
        raise AssertionError("unreachable: the last rule has no conditions")  # pragma: no cover


# the model that validates what sits under a key of the map, for naming the accepted fields of an unknown one
_MODEL_AT: Final[dict[str, type[BaseModel]]] = {"when": Condition, "authors": AuthorLists, "rules": Rule,
                                                 "sensitive_topics": Topic, "approval": ApprovalPolicy,
                                                 "probation": Probation}
