"""Assembles the app: lifespan (load model and map), middleware, error handlers, routers."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from serving.routes import admin, health, model, score
from serving.state import ServiceState
from triage_ml import __version__
from triage_ml.settings import Settings, get_settings

log = logging.getLogger("triage_ml.serving")


class BodyTooLargeError(Exception):
    pass


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
    for router in (score.router, model.router, admin.router, health.router):
        app.include_router(router)

    @app.middleware("http")
    async def limit_and_measure(request: Request, call_next):  # noqa: ANN001
        start = time.perf_counter()
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > settings.max_body_bytes):
            return JSONResponse({"detail": f"request body over {settings.max_body_bytes:,} bytes"}, status_code=413)
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        service = getattr(request.app.state, "service", None)
        if service is not None:
            service.metrics.requests.labels(path, request.method, str(response.status_code)).inc()
            service.metrics.latency.labels(path).observe(time.perf_counter() - start)
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        detail = [{"field": ".".join(str(p) for p in err["loc"] if p != "body") or "body",
                   "message": _message(err)} for err in exc.errors()]
        return JSONResponse({"detail": detail}, status_code=422)

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
