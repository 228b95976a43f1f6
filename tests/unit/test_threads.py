"""Threads: what a caller may send with a message, the labeled thread file, and the thread head's arithmetic."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from tests.conftest import ROOT
from triage_ml.data.threads import THREADS, follow_ups, load_threads
from triage_ml.errors import DataValidationError
from triage_ml.messages import MessageIn
from triage_ml.model.thread_head import onto
from triage_ml.settings import get_settings
from triage_ml.thread import Thread, Turn, thread_of


def test_a_thread_by_text_ends_with_the_answered_turn():
    thread = MessageIn.model_validate({"text": "nope", "thread": [
        {"text": "my card never came", "from": "customer"},
        {"text": "did the replacement arrive?", "from": "brand"}]}).to_message().thread
    assert thread.answered == Turn("did the replacement arrive?", "brand") and len(thread.turns) == 2
    reply = MessageIn.model_validate({"text": "nope", "in_reply_to": {"text": "anything else?", "from": "brand"},
                                      "thread": [{"text": "thanks, sorted", "from": "customer"}]}).to_message()
    assert reply.thread.answered == Turn("anything else?", "brand") and len(reply.thread.turns) == 2
    same = thread_of([Turn("did it arrive?", None)], "did it arrive?", "brand")
    assert same.turns == (Turn("did it arrive?", "brand"),)  # in_reply_to names the last turn: not twice
    assert MessageIn(text="hi").to_message().thread is None


def test_an_answered_turn_by_id_is_looked_up_or_noted():
    thread = MessageIn.model_validate({"text": "done", "in_reply_to": {"message_id": "m-1"}}).to_message().thread
    assert thread.reply_to_id == "m-1" and thread.answered is None
    found = thread.resolved("my parcel is lost")
    assert found.answered == Turn("my parcel is lost", "customer") and found.reply_to_id is None
    missing = thread.resolved(None)
    assert missing.answered is None and "'m-1' is not in the label store" in missing.notes[0]
    assert Thread().resolved(None) == Thread()


@pytest.fixture
def turn_limit(monkeypatch):
    monkeypatch.setenv("TRIAGE_MAX_THREAD_TURNS", "3")
    get_settings.cache_clear()
    yield
    monkeypatch.delenv("TRIAGE_MAX_THREAD_TURNS")
    get_settings.cache_clear()


@pytest.mark.parametrize(("extra", "fragment"), [
    ({"in_reply_to": {}}, "in_reply_to needs the answered turn's text"),
    ({"in_reply_to": {"text": "hi", "from": "agent"}}, "in_reply_to.from"),
    ({"thread": [{"text": "hi", "from": "bot"}]}, "thread.0.from"),
    ({"thread": [{"from": "brand"}]}, "thread.0.text"),
    ({"thread": [{"text": "  ", "from": "brand"}]}, "thread.0.text"),
    ({"thread": [{"text": "hi", "from": "brand", "mood": "x"}]}, "thread.0.mood"),
    ({"thread": "hello"}, "thread"),
])
def test_a_bad_thread_names_the_field(extra, fragment):
    with pytest.raises(ValidationError) as error:
        MessageIn.model_validate({"text": "nope", **extra})
    assert fragment in str(error.value)


def test_a_thread_over_the_limit_says_the_limit(turn_limit):
    turns = [{"text": f"turn {i}", "from": "brand"} for i in range(4)]
    with pytest.raises(ValidationError, match=r"4 turns; the limit is 3 \(TRIAGE_MAX_THREAD_TURNS\)"):
        MessageIn.model_validate({"text": "nope", "thread": turns})
    assert len(MessageIn.model_validate({"text": "nope", "thread": turns[:3]}).to_message().thread.turns) == 3


def test_the_bundled_threads_hold_enough_follow_ups_labeled_in_context():
    threads = load_threads(ROOT / THREADS)
    follow = follow_ups(threads)
    assert threads["thread_id"].nunique() >= 150 and len(follow) >= 400
    assert set(follow["reason"]) >= {"question", "empty", "complaint", "crisis", "praise"}
    assert threads.loc[threads["from"] == "brand", "actionable"].isna().all()
    first = threads.groupby("thread_id")["turn"].min()
    assert (first == 1).all() and (threads.groupby("thread_id")["from"].first() == "customer").all()
    # the point of the data: the same short reply labeled differently by the turn it answers
    short = follow[follow["text"].str.len() <= 12].assign(key=lambda f: f["text"].str.lower().str.strip(" .!"))
    assert (short.groupby("key")["actionable"].nunique() > 1).sum() >= 8


def test_follow_ups_answer_the_turn_before_them(tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame({"thread_id": ["t1"] * 4 + ["t2"], "turn": [1, 2, 3, 4, 1],
                  "from": ["customer", "brand", "customer", "customer", "customer"],
                  "text": ["card missing", "did it arrive?", "nope", "still nothing", "hi"],
                  "actionable": ["true", "", "true", "true", "false"],
                  "reason": ["question", "", "question", "question", "empty"]}).to_csv(path, index=False)
    follow = follow_ups(load_threads(path))
    assert follow["text"].tolist() == ["nope", "still nothing"]
    assert follow["answered_text"].tolist() == ["did it arrive?", "nope"]
    assert follow["answered_from"].tolist() == ["brand", "customer"]
    assert follow["message_id"].tolist() == ["t1-3", "t1-4"]


@pytest.mark.parametrize(("column", "value", "fragment"), [
    ("from", "agent", "'agent' is not a speaker; use customer or brand"),
    ("turn", "x", "is not a turn number"),
    ("reason", "praise", "a brand's turn carries labels"),
])
def test_a_bad_thread_file_names_row_and_column(tmp_path, column, value, fragment):
    frame = pd.DataFrame({"thread_id": ["t1", "t1"], "turn": ["1", "2"], "from": ["customer", "brand"],
                          "text": ["hi", "hello"], "reason": ["question", ""]})
    frame.loc[1, column] = value
    frame.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DataValidationError, match=fragment) as error:
        load_threads(tmp_path / "bad.csv")
    assert "row 2" in str(error.value) and f"'{column}'" in str(error.value)


def test_onto_keeps_order_and_moves_the_threshold():
    p = np.linspace(0, 1, 101)
    mapped = onto(p, 0.3, 0.6)
    assert np.all(np.diff(mapped) >= 0) and mapped[0] == 0 and mapped[-1] == pytest.approx(1)
    assert onto(np.array([0.3]), 0.3, 0.6)[0] == pytest.approx(0.6)
    assert ((p >= 0.3) == (mapped >= 0.6)).all()


def test_the_second_pass_agreement_is_the_readme_figure():
    from triage_ml.data.threads import SECOND_PASS, second_pass_agreement

    figures = second_pass_agreement(ROOT / THREADS, ROOT / SECOND_PASS)
    assert figures["items"] == len(follow_ups(load_threads(ROOT / THREADS)))
    readme = (ROOT / "data" / "README.md").read_text()
    for label in ("actionable", "priority_tier", "crisis", "crisis_kind", "reason"):
        one = figures[label]
        assert f"| `{label}` | {one['n']} | {one['agreement']:.3f} | {one['kappa']:.3f} |" in readme, label
