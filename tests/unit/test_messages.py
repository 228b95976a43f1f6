"""The one Message: its field lists, and the checks every caller's message goes through."""

from __future__ import annotations

from dataclasses import fields

import pytest
from pydantic import ValidationError

from triage_ml.batch.score import parse_row
from triage_ml.labels.decisions import Decision
from triage_ml.labels.export import COLUMNS
from triage_ml.messages import CONTEXT_FIELDS, FIELDS, THREAD_INPUT, Message, MessageIn
from triage_ml.settings import get_settings


@pytest.fixture
def text_limit(monkeypatch):
    """Set TRIAGE_MAX_TEXT_CHARS for one test (the settings are read once per process, so the cache is cleared)."""
    def set_limit(chars: int) -> None:
        monkeypatch.setenv("TRIAGE_MAX_TEXT_CHARS", str(chars))
        get_settings.cache_clear()

    yield set_limit
    monkeypatch.delenv("TRIAGE_MAX_TEXT_CHARS", raising=False)
    get_settings.cache_clear()


def test_every_field_list_comes_from_message():
    names = [f.name for f in fields(Message) if f.name != "thread"]  # the thread is input only, never stored
    assert list(FIELDS) == names[1:] and list(CONTEXT_FIELDS) == names[2:]
    assert set(MessageIn.model_fields) == {*names, *THREAD_INPUT}
    assert set(names) <= set(Decision.model_fields)
    assert COLUMNS[:len(names)] == ("message_id", "text", *CONTEXT_FIELDS)


def test_the_text_limit_is_the_setting_and_can_be_raised(text_limit):
    long = "my order never came " * 750  # 15,000 characters
    with pytest.raises(ValidationError, match="the limit is 10,000"):
        MessageIn(text=long)
    message, problem = parse_row({"text": long}, "text")
    assert message is None and "the limit is 10,000" in problem
    text_limit(20_000)
    assert MessageIn(text=long).to_message().text == long
    message, problem = parse_row({"text": long}, "text")
    assert problem is None and message.text == long
    decision = Decision(event_id="e1", message_id="m1", agent="ana", action="responded", text=long)
    assert decision.text == long
    text_limit(100)
    with pytest.raises(ValidationError, match="the limit is 100 "):
        MessageIn(text="x" * 101)


def test_message_and_decision_share_the_checks():
    with pytest.raises(ValidationError, match="message_id"):
        MessageIn(text="hi", message_id="a\x00b")
    with pytest.raises(ValidationError, match="is_private"):
        MessageIn(text="hi", is_private="maybe")
    with pytest.raises(ValidationError, match="extra"):
        MessageIn(text="hi", colour="red")
    with pytest.raises(ValidationError, match="ahead of this server's clock"):
        Decision(event_id="e1", message_id="m1", agent="ana", action="responded", created_at="2999-01-01T00:00:00")
    with pytest.raises(ValidationError, match="message_id"):
        Decision(event_id="e1", agent="ana", action="responded")
