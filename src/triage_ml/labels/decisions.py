"""An agent decision and the labels it implies (docs/taxonomy.md, "Agent decisions become labels").

``Decision.labels()`` applies, in order: the action's mapping, the reason code's tier, the explicit label
fields (which override both), then the taxonomy's rules (a crisis is actionable and tier 1; noise has no
tier and no crisis). A decision whose explicit fields contradict each other is refused with a message
naming the fields.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, create_model, model_validator

from triage_ml.messages import Id, message_fields
from triage_ml.taxonomy import REASONS, TIER2_REASONS, close_labels, explicit_labels, reason_labels

Action = Literal["responded", "escalated", "archived", "marked_spam", "blocked", "set_priority", "flag_crisis",
                 "unflag_crisis"]
ArchiveReason = Literal["no_action_needed", "duplicate", "handled_elsewhere", "other"]
ReasonCode = Literal[tuple(sorted(REASONS))]  # type: ignore[valid-type]
CRISIS_TEAMS = frozenset({"pr", "legal", "safety"})


class _Decision(BaseModel):
    """An agent decision's own fields; ``Decision`` adds the message's."""

    model_config = ConfigDict(extra="forbid")
    event_id: Id = Field(description="client-generated idempotency key; a replay changes nothing")
    agent: Id
    action: Action
    team: Id | None = Field(None, description="for escalated: pr, legal and safety mean a crisis")
    archive_reason: ArchiveReason | None = Field(None, description="for archived")
    reason: ReasonCode | None = Field(None, description="a taxonomy reason code, e.g. complaint, praise")
    actionable: StrictBool | None = None
    priority_tier: Literal[1, 2] | None = Field(None, description="for set_priority; otherwise an override")
    crisis: StrictBool | None = None
    model_version: Annotated[StrictStr, Field(max_length=64, pattern=r"^[^\x00]*$")] | None = Field(
        None, description="the model version whose prediction the agent saw")
    decided_at: datetime | None = None

    @model_validator(mode="after")
    def _consistent(self) -> _Decision:
        if self.action == "escalated" and not self.team:
            raise ValueError("team: required when action is escalated (e.g. pr, legal, safety, lead, expert)")
        if self.action == "archived" and not self.archive_reason:
            raise ValueError("archive_reason: required when action is archived (no_action_needed, duplicate, "
                             "handled_elsewhere or other)")
        if self.action == "set_priority" and self.priority_tier is None:
            raise ValueError("priority_tier: required when action is set_priority (1 or 2)")
        self.labels()  # raises on contradictions
        return self

    def labels(self) -> dict[str, int]:
        """{head: value} this decision implies: actionable and crisis 0/1, priority_tier 1/2."""
        implied = _action_labels(self)
        if self.reason is not None:
            implied.update(reason_labels(self.reason))
        explicit = explicit_labels(self.actionable, self.priority_tier, self.crisis)
        if self.action == "set_priority":
            explicit.pop("priority_tier", None)  # it is the action's own value, not an override
        return close_labels(implied, explicit)

    def payload(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)

    def payload_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.payload(), sort_keys=True).encode()).hexdigest()


# One agent decision on one message, as the inbox sends it: the decision's fields and the message's, whose text
# and context are needed only when the store has not seen message_id (it was never scored with it).
Decision = create_model("Decision", __base__=_Decision, __doc__="One agent decision on one message.",
                        **message_fields(text_required=False, id_required=True))


def _action_labels(d: _Decision) -> dict[str, int]:
    if d.action == "responded":
        return {"actionable": 1}
    if d.action == "escalated":
        return {"actionable": 1, "priority_tier": 1, "crisis": 1} if d.team and d.team.lower() in CRISIS_TEAMS \
            else {"actionable": 1, "priority_tier": 1}
    if d.action == "archived":
        if d.archive_reason == "no_action_needed":
            return {"actionable": 1, "priority_tier": 2} if d.reason in TIER2_REASONS else {"actionable": 0}
        return {"actionable": 0} if d.archive_reason == "duplicate" else {}
    if d.action in ("marked_spam", "blocked"):
        return {"actionable": 0}
    if d.action == "set_priority":
        return {"actionable": 1, "priority_tier": int(d.priority_tier or 0)}
    return {"crisis": 1 if d.action == "flag_crisis" else 0}
