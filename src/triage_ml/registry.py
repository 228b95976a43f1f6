"""The model registry, the one place that answers "which version does this alias point to": who is champion,
who was before (for rollback), who is waiting, and loading a version.

Everything goes through an explicit ``MlflowClient(tracking_uri, registry_uri)`` (``client_for``): nothing here
sets MLflow's process-global tracking or registry URI, so two stores in one process (tests, a service beside a
training run) never see each other's.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from triage_ml.errors import ModelNotFoundError

if TYPE_CHECKING:
    from triage_ml.model.triage_model import TriageModel
    from triage_ml.settings import Settings

PREVIOUS = "previous"
CHALLENGER = "challenger"


def client_for(settings: Settings) -> MlflowClient:
    """A client of the configured store (the local default folder is created when missing)."""
    uri = settings.resolved_tracking_uri()
    if not settings.tracking_uri:
        settings.mlruns_dir.mkdir(parents=True, exist_ok=True)
    return MlflowClient(tracking_uri=uri, registry_uri=settings.registry_uri or uri)


def alias_version(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    """The version ``alias`` points to; None when there is none (or no such model)."""
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def resolve(client: MlflowClient, name: str, alias: str) -> ModelVersion:
    """The version ``alias`` points to; ModelNotFoundError, saying how to get one, when there is none."""
    version = alias_version(client, name, alias)
    if version is None:
        raise ModelNotFoundError(f"no model models:/{name}@{alias} in {client.tracking_uri}; train one with "
                                 "`triage-ml train`")
    return version


def resolve_uri(client: MlflowClient, uri: str) -> tuple[str, str, str | None]:
    """(name, version, alias or None) of a registry URI: ``models:/name@alias`` or ``models:/name/version``."""
    if not uri.startswith("models:/"):
        raise ModelNotFoundError(f"{uri}: not a registry URI; use models:/NAME@ALIAS or models:/NAME/VERSION")
    path = uri.removeprefix("models:/")
    if "@" in path:
        name, alias = path.split("@", 1)
        return name, str(resolve(client, name, alias).version), alias
    name, _, version = path.rpartition("/")
    return name, version, None


def load(client: MlflowClient, uri: str, *, backend: str = "auto", threads: int | None = None) -> TriageModel:
    """The TriageModel behind a model URI (``models:/name@alias``, ``models:/name/version``, ``runs:/...``),
    read from this client's store."""
    import mlflow

    from triage_ml.model.pyfunc import ARTIFACT_KEY
    from triage_ml.model.triage_model import TriageModel

    source = uri
    if uri.startswith("models:/"):
        name, version, _ = resolve_uri(client, uri)
        try:
            source = client.get_model_version_download_uri(name, version)
        except MlflowException:
            raise ModelNotFoundError(f"{name} has no version {version}; `triage-ml model info` lists them") from None
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=source, tracking_uri=client.tracking_uri,
                                                     registry_uri=client._registry_uri))
    return TriageModel.load(local / "artifacts" / ARTIFACT_KEY, backend=backend, threads=threads)


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
