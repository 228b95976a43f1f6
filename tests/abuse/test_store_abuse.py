"""Issue 19, the label store's findings: the export's CSV (6), dispute reasons and lists (9), timestamps (11).

The store-level tests run on SQLite and PostgreSQL (the ``database_url`` fixture); PostgreSQL runs in a
session whose time zone is not UTC, so a timestamp the store does not convert shows up there too. The
last test replays finding 9 against the real service.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime

import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from triage_ml.data.io import read_table
from triage_ml.data.schema import load_labeled
from triage_ml.errors import ConflictError
from triage_ml.labels.decisions import Decision
from triage_ml.labels.disputes import DisputePolicy
from triage_ml.labels.export import training_table, write_export
from triage_ml.labels.feedback import (
    dispute_page,
    flag_dispute,
    get_dispute,
    list_disputes,
    record_decisions,
    record_predictions,
)
from triage_ml.messages import Message
from triage_ml.store.db import Store

pytestmark = pytest.mark.integration
POLICY = DisputePolicy()
FORMULA_TEXTS = {"f-eq": '=HYPERLINK("http://evil.example","click")', "f-plus": "+1 555 0100 call me now",
                 "f-minus": "-2 stars, the app ate my order", "f-at": "@SkyLarkAir where is my bag",
                 "f-tab": "\tcmd|' /C calc'!A0"}
BARE_CR = "line one\rline two and my refund is late"  # no comma: nothing else makes the writer quote it


def non_utc_session(url: str) -> str:
    """PostgreSQL sessions in Asia/Kolkata (+05:30): what the database hands back is then not UTC."""
    return f"{url}?options=-c%20timezone%3DAsia%2FKolkata" if url.startswith("postgresql") else url


@pytest.fixture
def store(database_url):
    s = Store(non_utc_session(database_url))
    yield s
    s.dispose()


def decide(event: str, message: str, text: str, agent: str = "ana", action: str = "responded", **kw) -> Decision:
    return Decision(event_id=event, message_id=message, agent=agent, action=action, text=text, **kw)


def neutralised(value: str) -> str:
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


# -- 2: a message id names one message --------------------------------------------------------------------
def test_a_message_id_with_another_text_is_refused_by_scoring_decisions_and_flags(store):
    result = {"actionable": False, "crisis_risk": 0.01}
    record_predictions(store, "triage-ml", "1", [(Message("thanks, lovely flight!", "tw-1"), result)])
    other = "the engine caught fire on landing, passengers injured"
    with pytest.raises(ConflictError, match="'tw-1' is already stored with a different text"):
        record_predictions(store, "triage-ml", "1", [(Message(other, "tw-1"), {**result, "crisis_risk": 0.99})])
    with pytest.raises(ConflictError, match=r"decisions\.0\.message_id"):
        record_decisions(store, [decide("e-x", "tw-1", other, action="escalated", team="pr")], POLICY)
    with pytest.raises(ConflictError, match="tw-1"):
        flag_dispute(store, "tw-1", "lea", "lead", "looks like a crisis", text=other)
    # the same text again is the same message: its first result, and decisions are taken
    again = record_predictions(store, "triage-ml", "1",
        [(Message("thanks, lovely flight!", "tw-1"), {**result, "x": 1})])
    assert again["tw-1"] == result
    [out] = record_decisions(store, [decide("e-y", "tw-1", "thanks, lovely flight!", action="marked_spam")], POLICY)
    assert out["labels"]


# -- 6: the export's CSV ----------------------------------------------------------------------------------
def test_five_messages_export_as_five_rows_and_formulas_are_neutralised_for_people(store, tmp_path):
    texts = {**FORMULA_TEXTS, "cr": BARE_CR}
    record_decisions(store, [decide(f"e-{k}", k, t) for k, t in texts.items()]
                     + [decide("e-id", "=cmd|' /C calc'!A0", "an id that is a formula")], POLICY)
    table = training_table(store)

    human = read_table(write_export(table, tmp_path / "labels.csv"))
    assert len(human) == len(texts) + 1  # the bare CR is quoted: one row per message
    by_id = dict(zip(human["message_id"], human["text"], strict=True))
    assert by_id["cr"] == BARE_CR
    for key, text in FORMULA_TEXTS.items():
        assert by_id[key] == "'" + text
    assert by_id["'=cmd|' /C calc'!A0"] == "an id that is a formula"
    load_labeled(tmp_path / "labels.csv")  # `data validate` accepts it

    for machine in ("labels.parquet", "labels.jsonl"):  # read back by code: exact, never neutralised
        exact = load_labeled(write_export(table, tmp_path / machine))
        assert dict(zip(exact["message_id"], exact["text"], strict=True)) == {
            **texts, "=cmd|' /C calc'!A0": "an id that is a formula"}


def test_train_from_store_reads_an_exact_machine_export(store, tmp_path):
    from triage_ml.cli.common import export_store
    from triage_ml.settings import Settings

    texts = {**FORMULA_TEXTS, "cr": BARE_CR}
    record_decisions(store, [decide(f"e-{k}", k, t) for k, t in texts.items()], POLICY)
    path, digest, rows = export_store(Settings(database_url=store.url), tmp_path / "exports")
    assert rows == len(texts) and path.suffix == ".parquet" and digest[:12] in path.name
    loaded = load_labeled(path)
    assert dict(zip(loaded["message_id"], loaded["text"], strict=True)) == texts


IDS = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), min_size=1, max_size=40)
TEXTS = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), min_size=1,
                max_size=200).filter(str.strip)


def test_any_stored_text_and_id_come_back_identical(store, tmp_path):
    stored: dict[str, str] = {}  # the store keeps a message's first text
    events = itertools.count()

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(st.tuples(IDS, TEXTS), min_size=1, max_size=4, unique_by=lambda pair: pair[0]))
    @example([("=1+1", "a\rb"), ("\r", "-2 stars"), (" id ", "@brand\r\n\"x\",y"), ("\t", "\u2028 x \x85 \x1e")])
    def round_trip(pairs: list[tuple[str, str]]) -> None:
        for message_id, text in pairs:
            stored.setdefault(message_id, text)  # an id already stored is sent with its text (another is refused)
        record_decisions(store, [decide(f"e{next(events)}", m, stored[m]) for m, _ in pairs], POLICY)
        table = training_table(store)
        exact = read_table(write_export(table, tmp_path / "labels.parquet"))
        assert dict(zip(exact["message_id"], exact["text"], strict=True)) == stored
        jsonl = read_table(write_export(table, tmp_path / "labels.jsonl"))
        assert dict(zip(jsonl["message_id"], jsonl["text"], strict=True)) == stored
        human = read_table(write_export(table, tmp_path / "labels.csv"))
        assert dict(zip(human["message_id"], human["text"], strict=True)) == {
            neutralised(m): neutralised(t) for m, t in stored.items()}

    round_trip()


# -- 9: dispute reasons and lists -------------------------------------------------------------------------
def view_kb(view: dict) -> float:
    return len(json.dumps(view).encode()) / 1024


def test_repeated_flags_are_counted_not_stored_again(store):
    reason = "sarcasm? " * 220  # ~2,000 characters, as the probe sent
    for _ in range(300):
        flagged = flag_dispute(store, "m1", "lea", "lead", reason, text="great, another delay")
    [view] = list_disputes(store, "open", 50, 0)
    assert view == get_dispute(store, flagged["id"])
    [manual] = view["reasons"]
    assert manual["count"] == 300 and manual["rule"] == "manual" and reason in manual["detail"]
    assert view_kb(view) < 8, f"{view_kb(view):.0f} KB"


def test_distinct_reasons_are_bounded_and_still_counted(store):
    for i in range(150):  # distinct flaggers, distinct texts
        flag_dispute(store, "m1", f"agent-{i}", "agent", f"reason number {i} " + "x" * 1900, text="hello")
    # 40 agents who disagree in turn: each decision disagrees with every earlier agent
    record_decisions(store, [decide(f"e{i}", "m2", "hi", agent=f"a{i}", **({"action": "marked_spam"} if i % 2 else {}))
                             for i in range(40)], POLICY)
    for message in ("m1", "m2"):
        [view] = [v for v in list_disputes(store, "open", 50, 0) if v["message"]["message_id"] == message]
        assert len(view["reasons"]) <= 60
        assert view_kb(view) < 150, f"{message}: {view_kb(view):.0f} KB"
    [m1] = [v for v in list_disputes(store, "open", 50, 0) if v["message"]["message_id"] == "m1"]
    assert sum(r["count"] for r in m1["reasons"]) == 150  # none is lost from the count


def test_migration_compacts_the_reasons_of_existing_disputes(store):
    from sqlalchemy import text

    from triage_ml.store.db import migrate

    migrate(store.engine, "0002")
    reason = {"rule": "manual", "detail": "flagged by lead lea: sarcasm?", "by": "lea", "at": "2026-11-30T10:00:00"}
    with store.engine.begin() as conn:
        conn.execute(text("INSERT INTO messages (id, text, first_seen) VALUES ('m1', 'hi', '2026-11-30 10:00:00')"))
        conn.execute(text("INSERT INTO disputes (message_id, state, reasons, opened_at) VALUES "
                          "('m1', 'open', :reasons, '2026-11-30 10:00:00')"), {"reasons": json.dumps([reason] * 300)})
    migrate(store.engine)
    [view] = list_disputes(store, "open", 50, 0)
    assert [(r["rule"], r["count"], r["detail"]) for r in view["reasons"]] == [("manual", 300, reason["detail"])]


def test_dispute_list_pages_with_total_and_next_offset(store):
    for i in range(7):
        flag_dispute(store, f"m{i}", "lea", "lead", "check", text="hello")
    pages, offset = [], 0
    while offset is not None:
        page = dispute_page(store, "open", limit=3, offset=offset)
        assert (page["limit"], page["offset"], page["total"]) == (3, offset, 7)
        pages.append([v["message"]["message_id"] for v in page["disputes"]])
        offset = page["next_offset"]
    assert pages == [["m0", "m1", "m2"], ["m3", "m4", "m5"], ["m6"]]


# -- 11: timestamps ---------------------------------------------------------------------------------------
def test_timestamps_are_stored_and_returned_in_utc_with_an_offset(store):
    aware, naive = datetime.fromisoformat("2026-11-01T10:00:00+05:00"), datetime.fromisoformat("2026-11-01T10:00:00")
    record_decisions(store, [decide("e1", "aware", "hello", created_at=aware),
                             decide("e2", "naive", "hello", created_at=naive)], POLICY)
    rows = training_table(store).set_index("message_id")
    assert rows.loc["aware", "created_at"] == "2026-11-01T05:00:00+00:00"  # the same instant, in UTC
    assert rows.loc["naive", "created_at"] == "2026-11-01T10:00:00+00:00"  # naive means UTC, as in the API

    written = flag_dispute(store, "aware", "lea", "lead", "check")
    read = get_dispute(store, written["id"])
    assert written["opened_at"] == read["opened_at"] and read["opened_at"].endswith("+00:00")
    assert read["message"]["created_at"] == "2026-11-01T05:00:00+00:00"
    assert all(d["received_at"].endswith("+00:00") for d in read["decisions"])
    opened = datetime.fromisoformat(read["opened_at"])
    assert abs((opened - datetime.now(UTC)).total_seconds()) < 120


# -- 9, through the service -------------------------------------------------------------------------------
def test_service_dispute_list_is_bounded_and_paged(start_service):
    service = start_service(TRIAGE_MODEL_POLL_SECONDS="0")
    reason = "this is not a complaint " * 80  # ~1,900 characters
    with service.client("lead") as c:
        for _ in range(300):
            r = c.post("/v1/disputes", json={"message_id": "abuse-9", "by": "lea", "reason": reason,
                                             "text": "great, another delay"})
            assert r.status_code == 201, r.text
        for i in range(3):
            assert c.post("/v1/disputes", json={"message_id": f"abuse-9-{i}", "by": "lea", "reason": "check",
                                                "text": "hello"}).status_code == 201
        listed = c.get("/v1/disputes", params={"state": "open"})
        body = listed.json()
        assert listed.status_code == 200 and len(listed.content) < 64 * 1024, len(listed.content)
        [mine] = [d for d in body["disputes"] if d["message"]["message_id"] == "abuse-9"]
        assert [(r["rule"], r["count"]) for r in mine["reasons"]] == [("manual", 300)]
        assert (body["limit"], body["offset"], body["total"], body["next_offset"]) == (50, 0, 4, None)
        page = c.get("/v1/disputes", params={"state": "open", "limit": 2, "offset": 2}).json()
        assert (len(page["disputes"]), page["total"], page["next_offset"]) == (2, 4, None)
        assert c.get("/v1/disputes", params={"limit": 2}).json()["next_offset"] == 2
        assert c.get("/v1/disputes", params={"limit": 101}).status_code == 422  # the documented maximum


def test_score_batch_output_keeps_a_bare_cr_inside_its_row(tmp_path):
    """The batch writer appends chunks; a chunk holding a bare CR is quoted, so rows stay rows."""
    from triage_ml.batch.files import ChunkWriter, read_chunks

    out = tmp_path / "scored.csv"
    writer = ChunkWriter(out)
    chunks = [pd.DataFrame({"message_id": ["a", "b"], "text": ["plain", "line\ronly CR"]}),
              pd.DataFrame({"message_id": ["c"], "text": ["=1+1"]})]
    for chunk in chunks:
        writer.write(chunk)
    writer.finish()
    back = pd.concat(list(read_chunks(out, 10)), ignore_index=True)
    assert back.to_dict("records") == pd.concat(chunks, ignore_index=True).to_dict("records")
