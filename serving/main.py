"""Assembles the app: lifespan (load model and map), middleware, error handlers, routers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from serving.middleware import Guard
from serving.models import Loader
from serving.routes import (
    admin,
    alerts,
    audit,
    authors,
    drafts,
    feedback,
    health,
    model,
    reports,
    routing,
    score,
    webhooks,
)
from serving.state import ServiceState
from triage_ml import __version__
from triage_ml.errors import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    ReviewUnavailableError,
    StoreUnavailableError,
)
from triage_ml.settings import Settings, get_settings

log = logging.getLogger("triage_ml.serving")


def create_app(settings: Settings | None = None, loader: Loader | None = None) -> FastAPI:
    """The service. ``loader`` replaces how a registered version is loaded (``serving.models.Loader``)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = ServiceState(settings, loader)
        await state.start()
        app.state.service = state
        try:
            yield
        finally:
            await state.stop()

    app = FastAPI(title="triage-ml", version=__version__, lifespan=lifespan,
                  description="Scores inbound social messages: actionable, priority tier, crisis risk, route.")
    for router in (score.router, feedback.router, drafts.router, alerts.router, model.router, admin.router,
                   audit.router, routing.router, reports.router, authors.router, health.router, webhooks.router):
        app.include_router(router)

    app.add_middleware(Guard, max_body_bytes=settings.max_body_bytes, body_timeout=settings.body_timeout_seconds,
                       rate_limit=settings.rate_limit)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        detail = [{"field": ".".join(str(p) for p in err["loc"] if p != "body") or "body",
                   "message": _message(err)} for err in exc.errors()]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(NotFoundError)
    async def not_found(_: Request, exc: NotFoundError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(ForbiddenError)
    async def forbidden(_: Request, exc: ForbiddenError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=403)

    @app.exception_handler(ConflictError)
    async def conflict(_: Request, exc: ConflictError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(StoreUnavailableError)
    async def store_down(_: Request, exc: StoreUnavailableError) -> JSONResponse:
        log.error("%s", exc)
        return JSONResponse({"detail": "the label store is unreachable; nothing was written, retry later"},
                            status_code=503, headers={"Retry-After": "5"})

    @app.exception_handler(ReviewUnavailableError)
    async def review_down(_: Request, exc: ReviewUnavailableError) -> JSONResponse:
        log.error("%s", exc)
        return JSONResponse({"detail": f"{exc}; nothing was stored, `triage-ml review pull` catches up"},
                            status_code=503)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.__cause__ is not None:  # FastAPI could not read the JSON body
            return JSONResponse({"detail": [{"field": "body", "message": _unreadable(exc.__cause__)}]},
                                status_code=422)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "internal error; it has been logged"}, status_code=500)

    return app


def _unreadable(cause: BaseException) -> str:
    """Why a body that is JSON by its first bytes could not be read, and the fix."""
    if isinstance(cause, RecursionError):
        return "JSON nested too deeply to read; send at most a few hundred levels"
    if isinstance(cause, UnicodeDecodeError):
        return "body is not UTF-8; send JSON encoded as UTF-8"
    if isinstance(cause, ValueError) and "digits" in str(cause):
        return "a number in the body has more than 4,300 digits; send it as a string or round it"
    return "body could not be read as JSON; send UTF-8 JSON"


def _message(err: dict) -> str:
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        return "unknown field; remove it (see /docs for the accepted fields)"
    if kind == "missing":
        return "field required"
    if kind == "json_invalid":
        return "body is not valid JSON"
    ctx = err.get("ctx") or {}
    if kind == "string_too_long":
        return f"too long; the limit is {ctx.get('max_length'):,} characters"
    return str(err.get("msg", "invalid value")).removeprefix("Value error, ")
