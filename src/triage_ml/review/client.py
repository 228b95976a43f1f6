"""The Label Studio server, through ``label-studio-sdk``: every call that can fail becomes one clear
``ReviewUnavailableError`` (server down, token refused, a refused request), never a traceback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from triage_ml.errors import ReviewUnavailableError
from triage_ml.settings import Settings

T = TypeVar("T")


@dataclass(frozen=True)
class LabelStudioTask:
    """A task as we read it back: its data and its annotations (each with the lead's email)."""

    id: int
    data: dict[str, Any]
    annotations: list[dict[str, Any]]


class LabelStudio:
    """A thin, typed layer over ``label_studio_sdk.LabelStudio`` for what triage-ml needs."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 30.0) -> None:
        from label_studio_sdk import LabelStudio as Sdk

        self.base_url = base_url.rstrip("/")
        self._sdk = Sdk(base_url=self.base_url, api_key=api_key, timeout=timeout)

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        import httpx
        from label_studio_sdk.core.api_error import ApiError

        try:
            return fn()
        except httpx.TransportError as exc:
            raise ReviewUnavailableError(f"Label Studio at {self.base_url} is unreachable ({type(exc).__name__}) "
                                         f"while trying to {what}; start it or set TRIAGE_LABEL_STUDIO_URL") from None
        except ApiError as exc:
            detail = exc.body.get("detail") if isinstance(exc.body, dict) else None
            if exc.status_code == 401:
                raise ReviewUnavailableError(
                    f"Label Studio at {self.base_url} refused the API token ({exc.status_code}) while trying to "
                    f"{what}; set TRIAGE_LABEL_STUDIO_API_KEY to a valid token (Account & Settings)") from None
            hint = ""
            if "reserved network address" in str(detail):
                hint = ("; Label Studio refuses webhooks to private addresses unless it is started with "
                        "USE_DEFAULT_BANNED_SUBNETS=false (or unset TRIAGE_LABEL_STUDIO_WEBHOOK_URL)")
            raise ReviewUnavailableError(f"Label Studio at {self.base_url} answered {exc.status_code} while trying "
                                         f"to {what}: {detail or 'no detail'}{hint}") from None

    def check(self) -> str:
        """The email of the user the token belongs to (proves the server is up and the token good)."""
        return str(self._call("check the API token", self._sdk.users.whoami).email)

    def project_exists(self, project_id: int) -> bool:
        """Whether the server still has the project (404: it was deleted); any other failure, the server
        unreachable included, is a ``ReviewUnavailableError`` like every other call's."""
        from label_studio_sdk.core.api_error import ApiError

        def read() -> bool:
            try:
                self._sdk.projects.get(id=project_id)
            except ApiError as exc:
                if exc.status_code == 404:
                    return False
                raise
            return True

        return self._call(f"read project {project_id}", read)

    def users(self) -> dict[int, str]:
        """{user id: email} of the server's users (annotations name their lead by id in task lists)."""
        return {int(u.id): str(u.email) for u in self._call("list users", lambda: list(self._sdk.users.list()))}

    def create_project(self, title: str, label_config: str, description: str, *, overlap: int = 1) -> int:
        """A new project; ``overlap``: annotations each task needs (one per lead)."""
        project = self._call("create a project", lambda: self._sdk.projects.create(
            title=title, label_config=label_config, description=description, maximum_annotations=overlap,
            show_overlap_first=overlap > 1))
        return int(project.id)

    def overlap(self, project_id: int) -> int:
        """How many annotations (leads) each task of the project needs, as its settings say now."""
        project = self._call(f"read project {project_id}", lambda: self._sdk.projects.get(id=project_id))
        return max(1, int(getattr(project, "maximum_annotations", None) or 1))

    def import_tasks(self, project_id: int, tasks: list[dict[str, Any]]) -> list[int]:
        """Create ``tasks`` (with their predictions) and return their ids, in order."""
        if not tasks:
            return []
        answer = self._call("import tasks", lambda: self._sdk.projects.import_tasks(
            id=project_id, request=tasks, return_task_ids=True))
        ids = [int(i) for i in (answer.task_ids or [])]
        if len(ids) != len(tasks):
            raise ReviewUnavailableError(f"Label Studio at {self.base_url} created {len(ids)} of {len(tasks)} tasks "
                                         "without an error; nothing was marked pushed, run the command again")
        return ids

    def task(self, task_id: int) -> LabelStudioTask:
        raw = self._call(f"read task {task_id}", lambda: self._sdk.tasks.get(id=task_id))
        return LabelStudioTask(int(raw.id), dict(raw.data or {}), [dict(a) for a in (raw.annotations or [])])

    def tasks(self, project_id: int) -> Iterator[LabelStudioTask]:
        """Every task of a project with its annotations."""
        pages = self._call("list tasks", lambda: list(self._sdk.tasks.list(project=project_id, fields="all")))
        for raw in pages:
            yield LabelStudioTask(int(raw.id), dict(raw.data or {}), [dict(a) for a in (raw.annotations or [])])

    def add_webhook(self, project_id: int, url: str, secret: str, header: str) -> int:
        """A webhook on ``project_id`` posting created and updated annotations to ``url`` with the secret
        in ``header``; an existing one for the same url is reused."""
        hooks = self._call("list webhooks", lambda: list(self._sdk.webhooks.list(project=str(project_id))))
        for hook in hooks:
            if hook.url == url and getattr(hook, "project", None) == project_id:
                return int(hook.id)
        hook = self._call("create a webhook", lambda: self._sdk.webhooks.create(
            url=url, project=project_id, send_payload=True, send_for_all_actions=False,
            actions=["ANNOTATION_CREATED", "ANNOTATION_UPDATED"], headers={header: secret}, is_active=True))
        return int(hook.id)

    @property
    def sdk(self) -> Any:
        """The SDK client itself, for what this layer does not cover (tests create annotations with it)."""
        return self._sdk


def label_studio_client(settings: Settings) -> LabelStudio:
    """The configured server; a clear error when no token is set."""
    if settings.label_studio_api_key is None or not settings.label_studio_api_key.get_secret_value():
        raise ReviewUnavailableError("no Label Studio token: set TRIAGE_LABEL_STUDIO_API_KEY (Label Studio: "
                                     "Account & Settings > Access Token) and TRIAGE_LABEL_STUDIO_URL")
    return LabelStudio(settings.label_studio_url, settings.label_studio_api_key.get_secret_value())
