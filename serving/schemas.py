"""Request and response shapes of the public API (``/v1``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictStr, model_validator

from triage_ml.labels.decisions import Decision
from triage_ml.messages import Id as StoredId
from triage_ml.messages import MessageIn, MessageText
from triage_ml.settings import ROLES
from triage_ml.store.keys import NAME_PATTERN, check_name
from triage_ml.taxonomy import close_labels, explicit_labels

# Label Studio's ids, within the label store's integer range (a 64-bit signed integer on both databases)
LabelStudioId = Annotated[int, Field(strict=True, ge=1, le=2**63 - 1)]


class _LabelStudioTask(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: LabelStudioId | None = None
    project: LabelStudioId | None = None


class _LabelStudioProject(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: LabelStudioId | None = None


class LabelStudioEvent(BaseModel):
    """A Label Studio webhook event: the fields the service reads are checked, the rest kept as sent."""

    model_config = ConfigDict(extra="allow")
    action: StrictStr | None = None
    task: _LabelStudioTask | None = None
    project: _LabelStudioProject | None = None


class ScoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"messages": [
        {"text": "@SkyLarkAir flight cancelled, stuck at the gate with 2 kids", "message_id": "tw-1",
         "channel": "twitter"}]}]})
    messages: Annotated[list[MessageIn], Field(min_length=1, description="one message is a batch of one")]


class SignOffOut(BaseModel):
    required: bool = Field(description="a reply needs approval before it goes out (POST /v1/drafts)")
    by: Literal["lead", "pr"] | None = Field(description="who signs it off: pr when any reason asks for PR")
    reasons: list[str]


class RouteOut(BaseModel):
    action: str
    team: str | None
    rule: str
    approval: SignOffOut = Field(description="the map's approval section for this route; an agent on probation "
                                 "also needs a lead's sign-off, decided when they draft the reply")


class SimilarExample(BaseModel):
    message_id: str
    text: str
    label: str
    similarity: float


class Explanation(BaseModel):
    summary: str
    head: str
    terms: list[str]
    topics: list[str]
    similar: list[SimilarExample]


class CrisisKindOut(BaseModel):
    kind: str = Field(description="the likeliest crisis kind (docs/taxonomy.md): safety, legal, abuse, fraud, media, "
                      "mass or selfharm")
    probability: float | None = Field(description="the kind head's probability; null when a watch-list topic, "
                                      "not the model, made the message a crisis")


class LanguageOut(BaseModel):
    code: str = Field(description="ISO 639-1 (es, fr, ...), or und when the detector is not sure enough or the "
                      "text has no letters")
    confidence: float = Field(description="the detector's probability for its best guess")


class ThreadOut(BaseModel):
    turns: int = Field(description="earlier turns known (sent in thread and in_reply_to, or looked up by id)")
    answered_from: str | None = Field(description="who wrote the answered turn: customer or brand (null: unsaid)")
    used: bool = Field(description="the thread-aware head judged the message with the turn it answers")
    notes: list[str] = Field(description="parts of the thread that could not be used, and why")


class SentimentOut(BaseModel):
    label: str = Field(description="the customer's tone: negative, neutral or positive")
    probs: dict[str, float] = Field(description="probability of each")


class ScoreResult(BaseModel):
    message_id: str | None
    actionable: bool
    actionable_prob: float
    priority_tier: int | None
    tier_probs: dict[str, float] | None
    crisis_risk: float
    crisis: bool
    crisis_kind: CrisisKindOut | None = Field(description="for crises: which kind, and how sure; null otherwise")
    route: RouteOut
    explanation: Explanation
    language: LanguageOut | None = Field(None, description="the language detected (null in results recorded before "
                                         "detection existed)")
    low_confidence: bool = Field(False, description="written in another language than English, which the model "
                                 "was trained on: its scores are less certain (the explanation says so)")
    context: dict[str, Any] | None = Field(None, description=(
        "what the label store knows: conversation (turns_seen, open_case, last_decision, minutes_since_brand_reply)"
        " and customer (messages, tier-1 messages and crises in 30/90 days, last agent and outcome, "
        "repeat_contact); null when the message names neither author nor conversation (README, \"Context\")"))
    thread: ThreadOut | None = Field(None, description="the thread sent with the message (thread, in_reply_to): "
                                     "null when none was sent")
    sentiment: SentimentOut | None = Field(None, description="the customer's tone (null: the model has no "
                                           "sentiment head)")
    model_version: str


class ModelRef(BaseModel):
    name: str
    version: str


class ScoreResponse(BaseModel):
    model: ModelRef
    results: list[ScoreResult]


class ModelInfo(BaseModel):
    name: str
    version: str
    alias: str
    run_id: str | None
    trained_at: str | None
    loaded_at: str
    taxonomy_version: str
    thresholds: dict[str, float]
    metrics: dict[str, dict[str, float]]


class ReloadResult(BaseModel):
    model: ModelRef
    model_changed: bool
    routing_map: str


# -- feedback and disputes ---------------------------------------------------------------------------------
# Who a body names (a decision's agent, a flag's by, a resolution's lead) is checked against the key
# (serving.deps.speaks_for): a personal key may name only its person, and leaving the field out means them.
PERSON = "the person; with a personal key, leave it out (it is the key's person) or name them (anyone else: 403)"


class DecisionIn(Decision):
    """A decision as the API takes it: ``agent`` may be left out when the key is the agent's own."""

    agent: StoredId | None = Field(None, description=f"who decided: {PERSON}")  # type: ignore[assignment]

    def by(self, agent: str) -> Decision:
        """The decision as recorded, by ``agent``."""
        return Decision(**{**dict(self), "agent": agent})


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"decisions": [
        {"event_id": "evt-0001", "message_id": "tw-1", "agent": "ana", "action": "escalated", "team": "pr",
         "model_version": "3"}]}]})
    decisions: Annotated[list[DecisionIn], Field(min_length=1, description="one decision is a batch of one")]


class LabelsOut(BaseModel):
    actionable: bool | None
    priority_tier: int | None
    crisis: bool | None


class DecisionResult(BaseModel):
    event_id: str
    decision_id: int
    message_id: str
    labels: LabelsOut
    disputes: list[int] = Field(description="disputes this decision opened or joined")
    unapproved_reply: dict[str, Any] | None = Field(None, description=(
        "for a 'responded' decision on a message whose reply needed sign-off and has no approved draft: what "
        "sign-off it needed. The decision is stored, flagged in the audit trail and counted in the agent report"))


class FeedbackResponse(BaseModel):
    results: list[DecisionResult]


class FlagRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message_id: StoredId
    by: StoredId | None = Field(None, description=f"who flags it: {PERSON}")
    reason: Annotated[StrictStr, Field(min_length=1, max_length=2000, description="why the label is in doubt")]
    text: MessageText | None = Field(
        None, description="the message's text, when the store has not seen the message")


class Resolution(BaseModel):
    """A lead's gold label; give at least one head. The taxonomy's rules fill the rest (a crisis is
    actionable and tier 1; noise has no tier and no crisis)."""

    model_config = ConfigDict(extra="forbid")
    lead: StoredId | None = Field(None, description=f"who answers: {PERSON}")
    actionable: StrictBool | None = None
    priority_tier: Literal[1, 2] | None = None
    crisis: StrictBool | None = None
    note: Annotated[StrictStr, Field(max_length=2000)] | None = None

    @model_validator(mode="after")
    def _some_label(self) -> Resolution:
        if self.actionable is None and self.priority_tier is None and self.crisis is None:
            raise ValueError("give at least one of actionable, priority_tier, crisis")
        self.labels()
        return self

    def labels(self) -> dict[str, int]:
        return close_labels({}, explicit_labels(self.actionable, self.priority_tier, self.crisis))


class Dispute(BaseModel):
    id: int
    state: Literal["open", "resolved"]
    opened_at: str
    message: dict[str, Any]
    prediction: dict[str, Any] | None
    decisions: list[dict[str, Any]]
    reasons: list[dict[str, Any]] = Field(description="distinct reasons {rule, detail, count, at (first), last_at, "
                                          "...}: a repeated reason is counted, not listed again")
    resolved_at: str | None
    resolved_by: str | None
    resolution: dict[str, Any] | None
    review: dict[str, Any] | None = Field(None, description="the Label Studio task leads review it in, once pushed: "
                                          "{task_id, pushed_at}")


class DisputeList(BaseModel):
    """One page of disputes, by id. Each dispute's ``reasons`` are distinct, each with its ``count``."""

    disputes: list[Dispute]
    limit: int = Field(description="the page size applied (default 50, at most 100)")
    offset: int = Field(description="disputes skipped before this page")
    total: int = Field(description="disputes in this state, over all pages")
    next_offset: int | None = Field(description="the offset of the next page; null after the last")


# -- reply drafts and sign-off -----------------------------------------------------------------------------------
class DraftRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event_id: StoredId = Field(description="client-generated idempotency key; a replay changes nothing")
    message_id: StoredId = Field(description="the message the reply answers (scored with this id)")
    agent: StoredId | None = Field(None, description=f"who wrote it: {PERSON}")
    text: MessageText = Field(description="the reply as it would go out")


class DraftVerdict(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lead: StoredId | None = Field(None, description=f"who signs off: {PERSON}")
    note: Annotated[str | None, Field(max_length=2000, description="for the agent (and the audit trail)")] = None


class Draft(BaseModel):
    id: int
    event_id: str
    message_id: str
    agent: str
    text: str
    state: Literal["pending", "approved", "rejected"]
    approval: SignOffOut = Field(description="what sign-off the reply needed when it was submitted")
    submitted_at: str
    decided_at: str | None
    decided_by: str | None = Field(description="the lead who approved or rejected it; null when none was needed")
    note: str | None
    message_text: str | None = Field(None, description="the message the reply answers")


class DraftList(BaseModel):
    drafts: list[Draft]
    limit: int
    offset: int
    total: int
    next_offset: int | None


# -- the escalation map ------------------------------------------------------------------------------------------
class RoutingMapView(BaseModel):
    version: str = Field(description="the SHA-256 of the map's text, first 12 hex digits")
    yaml: str = Field(description="the map's text, as its file holds it")
    map: dict[str, Any] = Field(description="the map's fields, defaults filled in")


class MapChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    yaml: Annotated[str, Field(min_length=1, max_length=200_000, description="the whole new map, YAML")]
    base_version: Annotated[str | None, Field(max_length=64, description=(
        "the version you edited (GET /v1/routing); refused with 409 if the map changed since"))] = None
    note: Annotated[str | None, Field(max_length=2000, description="why: kept in the history and audit")] = None


class RoutingVersion(BaseModel):
    version: str
    loaded_at: str
    source: Literal["file", "api"]
    actor: str | None = Field(description="who installed it through the API; null for a file edit")
    note: str | None
    previous: str | None = Field(description="the version before it; null for the first")
    diff: str = Field(description="unified diff from the previous version")


class RoutingHistory(BaseModel):
    versions: list[RoutingVersion]
    limit: int
    offset: int
    total: int
    next_offset: int | None


# -- privacy (admin) ----------------------------------------------------------------------------------------------
class Erased(BaseModel):
    messages: int = Field(description="messages whose text and handle were erased")
    predictions: int
    decisions: int
    drafts: int


# -- the audit trail (admin) ------------------------------------------------------------------------------------
class AuditEntry(BaseModel):
    id: int
    at: str = Field(description="when it was written (UTC, ISO 8601)")
    kind: str = Field(description="what happened: decision, label.lead, dispute.opened, draft.approved, ...")
    actor: str | None = Field(description="the agent or lead; null for a service account's key")
    role: str | None = Field(description="the role it was written as: a key's role, or cli, label-studio, service")
    subject: str | None = Field(description="what it is about, e.g. message:m-1, dispute:3, draft:7, model:4")
    detail: dict[str, Any]


class AuditPage(BaseModel):
    entries: list[AuditEntry]
    limit: int
    offset: int
    total: int = Field(description="entries matching the filters, over all pages")
    next_offset: int | None = Field(description="the offset of the next page; null after the last")


# -- personal API keys (admin) --------------------------------------------------------------------------------
class KeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"role": "agent", "name": "ana"}]})
    role: Literal[ROLES]  # type: ignore[valid-type]
    name: Annotated[StrictStr, AfterValidator(check_name), Field(json_schema_extra={"pattern": NAME_PATTERN},
                                                                  description="the person, as decisions and "
                                                                  "resolutions name them (e.g. ana)")]


class KeyInfo(BaseModel):
    name: str
    role: str
    created_at: str
    revoked_at: str | None = Field(description="null while the key is active")


class KeyCreated(KeyInfo):
    key: str = Field(description="the key, shown this once: only its SHA-256 is stored")


class KeyList(BaseModel):
    keys: list[KeyInfo] = Field(description="by name, the newest first; never a key or its hash")
