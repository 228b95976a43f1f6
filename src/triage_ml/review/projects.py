"""The two Label Studio projects the store owns: disputed labels, and the active-learning review queue.

Each is created once per Label Studio server and remembered in ``review_projects``; a project deleted in
Label Studio is created again and the open items that pointed into it are sent again.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from triage_ml.review.client import LabelStudio
from triage_ml.review.labeling import labeling_config, taxonomy_summary
from triage_ml.store.db import Store
from triage_ml.store.tables import DisputeRow, ReviewProjectRow, ReviewQueueRow

DISPUTES, QUEUE = "disputes", "queue"
TITLES = {DISPUTES: "triage-ml: disputed labels", QUEUE: "triage-ml: review queue"}
DESCRIPTIONS = {
    DISPUTES: "Messages whose labels are in doubt (agents disagree, or an agent and a confident model disagree). "
              f"Your answer is the gold label.\n\n{taxonomy_summary()}",
    QUEUE: "Messages the model is least sure about, crisis candidates just under the threshold, and agent labels "
           f"that look wrong. Each task says why it was chosen.\n\n{taxonomy_summary()}",
}


@dataclass(frozen=True)
class Project:
    """Our row id (``ref``, what the store's foreign keys use) and Label Studio's project id."""

    ref: int
    kind: str
    project_id: int


def find_project(session: Session, kind: str, base_url: str) -> Project | None:
    row = session.scalar(select(ReviewProjectRow).where(ReviewProjectRow.kind == kind,
                                                        ReviewProjectRow.base_url == base_url))
    return None if row is None else Project(row.id, row.kind, row.project_id)


def find_by_project_id(session: Session, project_id: int, base_url: str) -> Project | None:
    row = session.scalar(select(ReviewProjectRow).where(ReviewProjectRow.project_id == project_id,
                                                        ReviewProjectRow.base_url == base_url))
    return None if row is None else Project(row.id, row.kind, row.project_id)


def ensure_project(store: Store, ls: LabelStudio, kind: str, *, overlap: int = 1) -> Project:
    """The project of ``kind`` on ``ls``: the remembered one if Label Studio still has it, else a new one
    whose tasks each need ``overlap`` leads."""
    with store.session() as session:
        known = find_project(session, kind, ls.base_url)
    if known is not None and ls.project_exists(known.project_id):
        return known
    project_id = ls.create_project(TITLES[kind], labeling_config(), DESCRIPTIONS[kind], overlap=overlap)

    def remember(session: Session) -> Project:
        row = session.scalar(select(ReviewProjectRow).where(ReviewProjectRow.kind == kind,
                                                            ReviewProjectRow.base_url == ls.base_url))
        if row is None:
            row = ReviewProjectRow(kind=kind, base_url=ls.base_url, project_id=project_id)
            session.add(row)
            session.flush()
        else:  # the old project is gone: what was sent there must be sent again
            row.project_id = project_id
            session.execute(update(DisputeRow).where(DisputeRow.review_project == row.id,
                                                     DisputeRow.state == "open")
                            .values(review_project=None, review_task_id=None, pushed_at=None))
            session.execute(update(ReviewQueueRow).where(ReviewQueueRow.review_project == row.id,
                                                         ReviewQueueRow.state == "open").values(state="lost"))
        return Project(row.id, kind, project_id)

    return store.write(remember)
