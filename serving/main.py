"""Assembles the app: lifespan (load model and map), middleware, error handlers, routers."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.routes import admin, alerts, feedback, health, model, score, webhooks
from serving.state import ServiceState
from triage_ml import __version__
from triage_ml.errors import ConflictError, NotFoundError, ReviewUnavailableError, StoreUnavailableError
from triage_ml.settings import Settings, get_settings

log = logging.getLogger("triage_ml.serving")


class LimitAndMeasure:
    """Pure ASGI middleware: refuses declared bodies over the limit (413) and records request counts and
    latency per route. (Starlette's ``BaseHTTPMiddleware`` cost ~2 ms per request here.)"""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            response = JSONResponse({"detail": f"request body over {self.max_body_bytes:,} bytes"}, status_code=413)
            await response(scope, receive, send)
            return
        start = time.perf_counter()
        status_code = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            service = getattr(scope["app"].state, "service", None) if "app" in scope else None
            if service is not None:
                path = getattr(scope.get("route"), "path", "unmatched")
                service.metrics.requests.labels(path, scope["method"], str(status_code)).inc()
                service.metrics.latency.labels(path).observe(time.perf_counter() - start)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = ServiceState(settings)
        await state.start()
        app.state.service = state
        try:
            yield
        finally:
            await state.stop()

    app = FastAPI(title="triage-ml", version=__version__, lifespan=lifespan,
                  description="Scores inbound social messages: actionable, priority tier, crisis risk, route.")
    for router in (score.router, feedback.router, alerts.router, model.router, admin.router, health.router,
                   webhooks.router):
        app.include_router(router)

    app.add_middleware(LimitAndMeasure, max_body_bytes=settings.max_body_bytes)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        detail = [{"field": ".".join(str(p) for p in err["loc"] if p != "body") or "body",
                   "message": _message(err)} for err in exc.errors()]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(NotFoundError)
    async def not_found(_: Request, exc: NotFoundError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

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
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "internal error; it has been logged"}, status_code=500)

    return app


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
