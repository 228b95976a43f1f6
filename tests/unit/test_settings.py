"""parse_api_keys: the TRIAGE_API_KEYS format, each malformed form and its message (which never shows a key)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from triage_ml.settings import ROLES, Settings, parse_api_keys

KEY = "k" * 16  # the shortest key accepted
LONG = "Zm9vYmFyYmF6cXV4LXNlY3JldC1rZXk="


def message(entry: int) -> str:
    return (f"TRIAGE_API_KEYS entry {entry} must be role:key with role one of scorer, agent, lead, admin and a key "
            "of at least 16 characters")


def test_pairs_are_read_in_order():
    raw = f"scorer:{KEY},admin:{LONG}"
    assert parse_api_keys(raw) == [("scorer", KEY), ("admin", LONG)]


def test_every_role_is_accepted():
    assert [role for role, _ in parse_api_keys(",".join(f"{r}:{KEY}{r}" for r in ROLES))] == list(ROLES)


def test_blanks_around_entries_and_empty_entries_are_ignored():
    assert parse_api_keys(f"  scorer:{KEY} ,, ,\n lead:{LONG}\t,") == [("scorer", KEY), ("lead", LONG)]
    assert parse_api_keys("") == [] and parse_api_keys(" , ,") == []


def test_blanks_around_the_colon_are_not_part_of_role_or_key():
    assert parse_api_keys(f"scorer :{LONG}, lead : {KEY} ") == [("scorer", LONG), ("lead", KEY)]


def test_a_key_may_contain_colons():
    assert parse_api_keys(f"admin:{KEY}:{KEY}") == [("admin", f"{KEY}:{KEY}")]


@pytest.mark.parametrize(("raw", "entry"), [
    (LONG, 1),                            # no role
    (f"scorer{LONG}", 1),                 # no separator
    (f"root:{LONG}", 1),                  # unknown role
    (f"Scorer:{LONG}", 1),                # roles are lower case
    (f":{LONG}", 1),                      # an empty role
    ("scorer:", 1),                       # an empty key
    (f"scorer:{KEY[:-1]}", 1),            # 15 characters: one short
    (f"scorer:{LONG},lead:{KEY[:-1]}", 2),
    (f"scorer:{LONG},,  ,admin", 2),      # empty entries are not counted
])
def test_a_malformed_entry_is_refused_by_its_number_without_showing_the_key(raw, entry):
    with pytest.raises(ValueError) as err:
        parse_api_keys(raw)
    assert str(err.value) == message(entry)
    assert LONG not in str(err.value) and KEY[:-1] not in str(err.value)


def test_settings_refuse_malformed_keys_naming_the_field():
    with pytest.raises(ValidationError) as err:
        Settings(api_keys=f"admin:{LONG},root:{KEY}")
    [error] = err.value.errors()
    assert error["loc"] == ("api_keys",) and error["msg"] == f"Value error, {message(2)}"
    assert Settings(api_keys=f"scorer:{LONG}").keys() == [("scorer", LONG)]


def test_a_settings_error_never_shows_a_key():
    with pytest.raises(ValidationError) as err:
        Settings(api_keys=f"admin:{LONG},root:{KEY}")
    assert LONG not in str(err.value) and KEY not in str(err.value)


def test_a_blank_after_the_colon_is_not_kept_in_the_key():
    try:
        pairs = parse_api_keys(f"scorer: {LONG}")
    except ValueError:
        return  # refused with the usual message: fine
    assert pairs == [("scorer", LONG)]
