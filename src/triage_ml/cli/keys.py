"""Personal API keys in the label store: create (the key is printed once), revoke, list (never keys)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, TypeVar

import typer

from triage_ml.cli.common import keys_app, settings_from_env
from triage_ml.store.audit import cli_actor

T = TypeVar("T")


def _with_store(fn: Callable[..., T]) -> T:
    from triage_ml.store.db import Store

    store = Store(settings_from_env().database_url)
    try:
        return fn(store)
    finally:
        store.dispose()


@keys_app.command("create")
def keys_create_cmd(
    role: Annotated[str, typer.Option(help="scorer, agent, lead or admin")],
    name: Annotated[str, typer.Option(help="the person, as decisions and resolutions name them (e.g. ana)")],
) -> None:
    """Create a key for one person. The key is printed once, alone on stdout; only its hash is stored."""
    from triage_ml.store.keys import create_key

    key, view = _with_store(lambda store: create_key(store, role, name, cli_actor()))
    typer.echo(f"created {view['role']} key for '{view['name']}'; it is shown once, below: hand it over now", err=True)
    typer.echo(key)


@keys_app.command("revoke")
def keys_revoke_cmd(name: Annotated[str, typer.Argument(help="whose active key to revoke")]) -> None:
    """Revoke a person's active key; a running service refuses it within its poll interval."""
    from triage_ml.store.keys import revoke_key

    view = _with_store(lambda store: revoke_key(store, name, cli_actor()))
    poll = settings_from_env().routing_poll_seconds
    typer.echo(f"revoked {view['name']}'s {view['role']} key (created {_minute(view['created_at'])}); running "
               f"services refuse it within {poll:g} s (TRIAGE_ROUTING_POLL_SECONDS)")


@keys_app.command("list")
def keys_list_cmd(
    active: Annotated[bool, typer.Option("--active", help="only keys not revoked")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Every key's person, role, creation and revocation, by name; never a key or its hash."""
    from triage_ml.store.keys import list_keys

    keys = _with_store(lambda store: list_keys(store, include_revoked=not active))
    if as_json:
        typer.echo(json.dumps(keys, indent=2))
        return
    rows = [("name", "role", "created", "state")] + [
        (k["name"], k["role"], _minute(k["created_at"]),
         "active" if k["revoked_at"] is None else f"revoked {_minute(k['revoked_at'])}") for k in keys]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[3])


def _minute(iso: str) -> str:
    return datetime.fromisoformat(iso).strftime("%Y-%m-%dT%H:%MZ")
