"""Personal API keys in the label store (issue 19, finding 7), on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from triage_ml.errors import ConflictError, KeyRequestError, NotFoundError
from triage_ml.store import audit
from triage_ml.store.audit import Actor
from triage_ml.store.db import Store
from triage_ml.store.keys import Identity, active_keys, create_key, hash_key, list_keys, revoke_key
from triage_ml.store.tables import ApiKeyRow

pytestmark = pytest.mark.integration
ADMIN = Actor("root", "admin")


@pytest.fixture
def store(database_url):
    s = Store(database_url)
    yield s
    s.dispose()


def test_a_key_is_shown_once_and_stored_only_as_its_hash(store):
    key, view = create_key(store, "agent", "ana", ADMIN)
    assert len(key) >= 43 and view["name"] == "ana" and view["role"] == "agent" and view["revoked_at"] is None
    assert hash_key(key) == hashlib.sha256(key.encode()).hexdigest()
    with store.session() as s:
        [row] = s.scalars(select(ApiKeyRow)).all()
    assert row.key_hash == hash_key(key) and key not in (row.key_hash, row.name)
    assert active_keys(store) == {hash_key(key): Identity("agent", "ana")}
    listed = list_keys(store)
    assert [{k: v for k, v in e.items() if k != "created_at"} for e in listed] == [
        {"name": "ana", "role": "agent", "revoked_at": None}]
    assert key not in repr(listed) and row.key_hash not in repr(listed)
    assert datetime.fromisoformat(listed[0]["created_at"]).utcoffset() == UTC.utcoffset(None)


def test_one_active_key_per_name_and_revoked_keys_stop_resolving(store):
    first, _ = create_key(store, "agent", "ana", ADMIN)
    with pytest.raises(ConflictError, match="'ana' already has an active key"):
        create_key(store, "lead", "ana", ADMIN)
    lead, _ = create_key(store, "lead", "lena", ADMIN)

    revoked = revoke_key(store, "ana", ADMIN)
    assert revoked["name"] == "ana" and revoked["revoked_at"] is not None
    assert active_keys(store) == {hash_key(lead): Identity("lead", "lena")}
    with pytest.raises(NotFoundError, match="no active key named 'ana'"):
        revoke_key(store, "ana", ADMIN)
    with pytest.raises(NotFoundError, match="no active key named 'bob'"):
        revoke_key(store, "bob", ADMIN)

    second, _ = create_key(store, "agent", "ana", ADMIN)  # a new key for the same person
    assert second != first
    assert active_keys(store) == {hash_key(lead): Identity("lead", "lena"), hash_key(second): Identity("agent", "ana")}
    # by name, the newest first
    assert [(e["name"], e["revoked_at"] is None) for e in list_keys(store)] == [
        ("ana", True), ("ana", False), ("lena", True)]
    assert [e["name"] for e in list_keys(store, include_revoked=False)] == ["ana", "lena"]
    # every issue and revocation that happened is in the audit trail, the refused ones are not, and no key is
    trail = audit.page(store, kind="key")
    assert [(e["kind"], e["subject"], e["actor"], e["role"], e["detail"]) for e in trail["entries"]] == [
        ("key.created", "key:ana", "root", "admin", {"role": "agent"}),
        ("key.created", "key:lena", "root", "admin", {"role": "lead"}),
        ("key.revoked", "key:ana", "root", "admin", {"role": "agent"}),
        ("key.created", "key:ana", "root", "admin", {"role": "agent"})]
    assert first not in repr(trail) and second not in repr(trail) and hash_key(first) not in repr(trail)


def test_the_database_refuses_two_active_keys_for_one_name(store):
    """The partial unique index, not only the code, keeps one active key per name (a concurrent create)."""
    create_key(store, "agent", "ana", ADMIN)
    with pytest.raises(IntegrityError), store.sessions() as s, s.begin():
        s.add(ApiKeyRow(name="ana", role="agent", key_hash="0" * 64))
    with store.sessions() as s, s.begin():  # a revoked one may share the name
        s.add(ApiKeyRow(name="ana", role="agent", key_hash="1" * 64, revoked_at=datetime.now(UTC)))
    with pytest.raises(IntegrityError), store.sessions() as s, s.begin():
        s.add(ApiKeyRow(name="bob", role="agent", key_hash="1" * 64, revoked_at=datetime.now(UTC)))


@pytest.mark.parametrize(("role", "name", "fragment"), [
    ("boss", "ana", "role 'boss'"),
    ("agent", "", "name ''"),
    ("agent", "ana smith", "name 'ana smith'"),
    ("agent", "-ana", "name '-ana'"),
    ("agent", "a" * 129, "name 'aaaa"),
    ("agent", "ana\x00", "name 'ana\\x00'"),
])
def test_an_unknown_role_or_a_name_that_is_not_a_plain_handle_is_refused(store, role, name, fragment):
    with pytest.raises(KeyRequestError) as exc:
        create_key(store, role, name, ADMIN)
    assert fragment in str(exc.value)
    assert list_keys(store) == []
    if role == "agent":  # never sent to the database (PostgreSQL's text cannot hold NUL)
        with pytest.raises(KeyRequestError, match="name '"):
            revoke_key(store, name, ADMIN)
