"""The service's outermost guard, a pure ASGI middleware (Starlette's ``BaseHTTPMiddleware`` cost ~2 ms per
request here). In order, for every HTTP request:

1. the API (``/v1/...``) refuses a missing or unknown ``X-API-Key`` (Label Studio's webhook: its shared
   secret) with 401 before a byte of the body is read, so an anonymous client cannot make the service
   buffer or parse anything; a known key's role and person (None for a ``TRIAGE_API_KEYS`` key) go in the
   request's state, from memory: personal keys are re-read from the label store by ``ServiceState``'s poller;
2. a declared ``Content-Length`` over the limit is refused at once (413), and the body's bytes are counted
   as they stream, declared or chunked: past the limit the request ends with 413, having held at most the
   limit in memory;
3. each key is held to ``rate_limit`` (429 with ``Retry-After`` past it; the ``limits`` library's moving
   window, in this process's memory);
4. a body not received whole within ``body_timeout`` seconds of the first read (a stalled client, or one
   that trickles) gets 408 and the connection closes;
5. request counts and latency per route go to the Prometheus metrics.

A client that stalls inside its headers never reaches the application: uvicorn cannot time that out, so
``deploy/nginx.conf`` does (README, "Reliability").
"""

from __future__ import annotations

import hashlib
import math
import time
from typing import Any

import anyio
from fastapi import HTTPException
from fastapi.responses import JSONResponse
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.deps import authenticate, check_webhook_secret
from triage_ml.review.push import WEBHOOK_HEADER

WEBHOOK_PREFIX = "/v1/webhooks/"  # Label Studio's events: a shared secret, not an API key


class Guard:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, body_timeout: float, rate_limit: str | None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_timeout = body_timeout
        self.rates: list[RateLimitItem] = parse_many(rate_limit) if rate_limit else []
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status_code = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
            await send(message)

        try:
            refusal = self._refusal(scope)
            if refusal is not None:
                await refusal(scope, receive, send_and_note)
            else:
                await self.app(scope, self._metered(receive), send_and_note)
        finally:
            _record(scope, status_code, time.perf_counter() - start)

    def _refusal(self, scope: Scope) -> JSONResponse | None:
        """A response that ends the request before the application runs, or None."""
        headers = Headers(scope=scope)
        path, service = scope["path"], _service(scope)
        try:
            if path.startswith(WEBHOOK_PREFIX):
                check_webhook_secret(service.settings if service else None, headers.get(WEBHOOK_HEADER))
            elif path.startswith("/v1/"):
                key = headers.get("x-api-key")
                role, person = authenticate(service.keyring.keys if service else [], key,
                                            service.keyring.people if service else {})
                caller = hashlib.sha256(key.encode()).hexdigest()[:16]  # who asks, without keeping the key
                scope.setdefault("state", {}).update(role=role, person=person, caller=caller)
                self._within_rate(caller)
        except HTTPException as exc:
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            return JSONResponse({"detail": f"request body over {self.max_body_bytes:,} bytes"}, status_code=413)
        return None

    def _within_rate(self, caller: str) -> None:
        """429 when ``caller`` is past any of the rates, saying when to retry."""
        for rate in self.rates:
            if not self.limiter.test(rate, caller):
                reset = self.limiter.get_window_stats(rate, caller).reset_time
                wait = max(1, math.ceil(reset - time.time()))
                raise HTTPException(429, f"rate limit of {rate} per API key reached; retry in {wait} s",
                                    headers={"Retry-After": str(wait)})
        for rate in self.rates:
            self.limiter.hit(rate, caller)

    def _metered(self, receive: Receive) -> Receive:
        """``receive`` that counts body bytes and times out a slow body; after the body, a pass-through."""
        received = 0
        done = False
        deadline: float | None = None

        async def metered() -> Message:
            nonlocal received, done, deadline
            if done:
                return await receive()
            deadline = deadline or anyio.current_time() + self.body_timeout
            try:
                with anyio.fail_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise HTTPException(408, f"the request body did not arrive within {self.body_timeout:g} s; "
                                    "send it whole",
                                    headers={"Connection": "close"}) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                done = not message.get("more_body", False)
                if received > self.max_body_bytes:
                    raise HTTPException(413, f"request body over {self.max_body_bytes:,} bytes",
                                        headers={"Connection": "close"})
            else:
                done = True
            return message

        return metered


def _service(scope: Scope) -> Any:
    app = scope.get("app")
    return getattr(app.state, "service", None) if app is not None else None


def _record(scope: Scope, status_code: int, seconds: float) -> None:
    service = _service(scope)
    if service is not None:
        path = getattr(scope.get("route"), "path", "unmatched")
        service.metrics.requests.labels(path, scope["method"], str(status_code)).inc()
        service.metrics.latency.labels(path).observe(seconds)
