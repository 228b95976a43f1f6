"""The model registry's aliases: who is champion, who was before (for rollback), who is waiting."""

from __future__ import annotations

from datetime import UTC, datetime

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from triage_ml.errors import ModelNotFoundError

PREVIOUS = "previous"
CHALLENGER = "challenger"


def alias_version(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def _stamp(how: str) -> str:
    return f"{how} at {datetime.now(UTC).isoformat(timespec='seconds')}"


def set_champion(client: MlflowClient, name: str, alias: str, version: str, how: str) -> str | None:
    """Point ``alias`` at ``version``; the version it left keeps alias ``previous`` (for rollback).
    Returns that former champion's version (None when there was none)."""
    try:
        client.get_model_version(name, version)
    except MlflowException:
        raise ModelNotFoundError(f"{name} has no version {version}; `triage-ml model info` lists them") from None
    old = alias_version(client, name, alias)
    if old is not None and str(old.version) == str(version):
        return str(old.version)
    client.set_registered_model_alias(name, alias, version)
    if old is not None:
        client.set_registered_model_alias(name, PREVIOUS, old.version)
    waiting = alias_version(client, name, CHALLENGER)
    if waiting is not None and str(waiting.version) == str(version):
        client.delete_registered_model_alias(name, CHALLENGER)
    client.set_model_version_tag(name, version, "promotion", _stamp(how))
    return None if old is None else str(old.version)


def rollback(client: MlflowClient, name: str, alias: str) -> tuple[str, str | None]:
    """Make the previous champion champion again; the rolled-back version becomes ``previous``, so a second
    rollback undoes the first. Returns (new champion, rolled-back version)."""
    before = alias_version(client, name, PREVIOUS)
    if before is None:
        raise ModelNotFoundError(f"{name} has no '{PREVIOUS}' alias to roll back to (it is set when a champion is "
                                 "replaced); use `triage-ml promote VERSION`")
    current = set_champion(client, name, alias, str(before.version), "restored by rollback")
    return str(before.version), current
