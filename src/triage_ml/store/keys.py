"""Personal API keys, kept in the label store: each person has their own key, with a role and their name, so
what a request says about who decided can be checked against who sent it.

A key is ``secrets.token_urlsafe(32)``: 256 random bits. Only its SHA-256 is stored. Slow password hashes
(bcrypt, scrypt, Argon2) exist to make guessing low-entropy secrets expensive; a 256-bit random token cannot be
guessed, from its hash or otherwise, so one SHA-256 is enough, and it lets the service find a key by its hash
on every request without a slow computation. The key itself is shown once, when it is created.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import NamedTuple

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from triage_ml.errors import ConflictError, KeyRequestError, NotFoundError
from triage_ml.settings import ROLES
from triage_ml.store import audit
from triage_ml.store.audit import Actor
from triage_ml.store.db import Store
from triage_ml.store.tables import ApiKeyRow, utcnow

# A person's handle as decisions and resolutions name them: it also appears in URLs and on the command line.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$"


class Identity(NamedTuple):
    """Who sent a request: the key's role, and its person's name (None for a ``TRIAGE_API_KEYS`` key, a service
    account's, which names nobody)."""

    role: str
    person: str | None


def hash_key(key: str) -> str:
    """The hex SHA-256 stored for ``key`` (see the module's docstring for why no slow hash is needed)."""
    return hashlib.sha256(key.encode()).hexdigest()


def check_role(role: str) -> str:
    if role not in ROLES:
        raise KeyRequestError(f"role {role!r} is not one of {', '.join(ROLES)}")
    return role


def check_name(name: str) -> str:
    if not re.fullmatch(NAME_PATTERN, name):
        raise KeyRequestError(f"name {name[:64]!r}: use 1 to 128 letters, digits and . _ @ + -, starting with a "
                              "letter or digit (the name decisions and resolutions give, e.g. ana)")
    return name


def create_key(store: Store, role: str, name: str, actor: Actor) -> tuple[str, dict]:
    """A new key for ``name`` with ``role``: (the key, to show once; its view). ConflictError when the name
    already has an active key (revoke it first). Audited (``key.created``, never the key) as ``actor``'s."""
    check_role(role)
    check_name(name)
    key = secrets.token_urlsafe(32)

    def add(session: Session) -> dict:
        if session.scalar(_active(name)) is not None:
            raise ConflictError(f"'{name}' already has an active key; revoke it first (`triage-ml keys revoke "
                                f"{name}`) to give them a new one")
        row = ApiKeyRow(name=name, role=role, key_hash=hash_key(key), created_at=utcnow())
        session.add(row)
        audit.record(session, "key.created", actor, f"key:{name}", role=role)
        return _view(row)

    return key, store.write(add)


def revoke_key(store: Store, name: str, actor: Actor) -> dict:
    """Revoke ``name``'s active key (kept, with ``revoked_at``); NotFoundError when there is none. Audited."""
    check_name(name)

    def revoke(session: Session) -> dict:
        row = session.scalar(_active(name))
        if row is None:
            raise NotFoundError(f"no active key named '{name}'; `triage-ml keys list` shows them")
        row.revoked_at = utcnow()
        audit.record(session, "key.revoked", actor, f"key:{name}", role=row.role)
        return _view(row)

    return store.write(revoke)


def list_keys(store: Store, *, include_revoked: bool = True) -> list[dict]:
    """Every key's name, role, created_at and revoked_at, by name and the newest first; never a key or hash."""
    query = select(ApiKeyRow).order_by(ApiKeyRow.name, ApiKeyRow.id.desc())
    if not include_revoked:
        query = query.where(ApiKeyRow.revoked_at.is_(None))
    with store.session() as session:
        return [_view(row) for row in session.scalars(query)]


def active_keys(store: Store) -> dict[str, Identity]:
    """{SHA-256 of an active key: its role and person}, what the service checks keys against."""
    query = select(ApiKeyRow.key_hash, ApiKeyRow.role, ApiKeyRow.name).where(ApiKeyRow.revoked_at.is_(None))
    with store.session() as session:
        return {key_hash: Identity(role, name) for key_hash, role, name in session.execute(query)}


def _active(name: str) -> Select[tuple[ApiKeyRow]]:
    return select(ApiKeyRow).where(ApiKeyRow.name == name, ApiKeyRow.revoked_at.is_(None))


def _view(row: ApiKeyRow) -> dict:
    return {"name": row.name, "role": row.role, "created_at": row.created_at.isoformat(),
            "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None}
