"""Findings 1, 2, 10 and 12 of the abuse probe, and the bodies that got 400: replayed against the real
service on loopback, each bounded in bytes and seconds."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterable

import pytest

from tests.abuse.conftest import process_memory_mb
from tests.integration.service_fixtures import KEYS
from triage_ml.review.push import WEBHOOK_HEADER

pytestmark = pytest.mark.integration
SECRET = "webhook-secret-0123456789"
MB = 1024 * 1024


@pytest.fixture(scope="module")
def guarded(start_service):
    """A service with a short body timeout and a webhook secret (and a Label Studio it never reaches)."""
    return start_service(TRIAGE_BODY_TIMEOUT_SECONDS="2", TRIAGE_LABEL_STUDIO_WEBHOOK_SECRET=SECRET,
                         TRIAGE_LABEL_STUDIO_API_KEY="unused-token", TRIAGE_LABEL_STUDIO_URL="http://127.0.0.1:9")


def raw_request(port: int, head: str, chunks: Iterable[bytes] = (), *, timeout: float = 20) -> tuple[int | None, float]:
    """Send ``head`` (request line and headers) and then ``chunks`` on one connection, reading the response
    on a thread meanwhile. Returns (status or None, seconds until the status line arrived or the server
    closed the connection)."""
    start = time.monotonic()
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    answer: dict[str, object] = {}

    def read() -> None:
        data = b""
        try:
            while b"\r\n" not in data:
                part = sock.recv(4096)
                if not part:
                    break
                data += part
        except OSError:
            pass
        answer["at"] = time.monotonic() - start
        answer["status"] = int(data.split()[1]) if data.startswith(b"HTTP/1.1 ") else None

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        sock.sendall(head.encode())
        for chunk in chunks:
            if "at" in answer:
                break
            sock.sendall(chunk)
    except OSError:  # the server answered and closed while we were still sending
        pass
    reader.join(timeout)
    sock.close()
    return answer.get("status"), float(answer.get("at", timeout))


def chunked(total: int, piece: int = 256 * 1024) -> Iterable[bytes]:
    """``total`` bytes of a JSON-looking body in HTTP chunked encoding, then the final chunk."""
    body = b"[" + b"1," * (piece // 2 - 1) + b"1"
    for _ in range(total // len(body)):
        yield f"{len(body):x}\r\n".encode() + body + b"\r\n"
    yield b"0\r\n\r\n"


def head(path: str, *headers: str) -> str:
    return "\r\n".join([f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json", *headers,
                        "", ""])


# -- 1: body limits and authentication before the body -------------------------------------------------------
def test_a_chunked_body_without_a_key_is_refused_before_it_is_read(guarded):
    before = process_memory_mb(guarded.proc.pid)
    status, _ = raw_request(guarded.port, head("/v1/score", "Transfer-Encoding: chunked"), chunked(200 * MB))
    assert status == 401
    assert process_memory_mb(guarded.proc.pid) - before < 30  # it read none of the 200 MB


def test_a_chunked_body_over_the_limit_gets_413_having_read_at_most_the_limit(guarded):
    before = process_memory_mb(guarded.proc.pid)
    status, _ = raw_request(guarded.port, head("/v1/score", "Transfer-Encoding: chunked",
                                               f"X-API-Key: {KEYS['scorer']}"), chunked(200 * MB))
    assert status == 413
    assert process_memory_mb(guarded.proc.pid) - before < 60  # the 4 MB limit, not 200 MB


def test_invalid_json_without_a_key_is_401_not_parsed(guarded):
    with guarded.client(None) as c:
        r = c.post("/v1/score", content=b"{not json", headers={"Content-Type": "application/json"})
        assert r.status_code == 401 and r.json()["detail"] == "missing X-API-Key header"
        r = c.post("/v1/score", content=b"{not json", headers={"Content-Type": "application/json",
                                                                "X-API-Key": "guess"})
        assert r.status_code == 401 and r.json()["detail"] == "invalid API key"
        r = c.post("/v1/webhooks/label-studio", content=b"{not json", headers={"Content-Type": "application/json"})
        assert r.status_code == 401 and WEBHOOK_HEADER in r.json()["detail"]


# -- 2: a message id names one message ---------------------------------------------------------------------
def test_the_same_message_id_with_another_text_is_a_409_not_the_first_result(guarded):
    first = {"text": "thanks, lovely flight!", "message_id": "abuse-tw-1"}
    other = {"text": "the engine caught fire on landing, passengers injured, I'm calling my lawyer and the BBC",
             "message_id": "abuse-tw-1"}
    with guarded.client("scorer") as c:
        r1 = c.post("/v1/score", json={"messages": [first]})
        assert r1.status_code == 200
        r2 = c.post("/v1/score", json={"messages": [other]})
        assert r2.status_code == 409, r2.text
        assert "abuse-tw-1" in r2.json()["detail"] and "message_id" in r2.json()["detail"]
        again = c.post("/v1/score", json={"messages": [first]})  # the same message again: its recorded result
        assert again.status_code == 200 and again.json()["results"] == r1.json()["results"]
        fresh = c.post("/v1/score", json={"messages": [{**other, "message_id": "abuse-tw-2"}]})
        assert fresh.json()["results"][0]["crisis_risk"] != r1.json()["results"][0]["crisis_risk"]


# -- 10: webhook payloads are validated ----------------------------------------------------------------------
@pytest.mark.parametrize(("payload", "field"), [
    ({"action": ["x"]}, "action"),
    ({"action": "ANNOTATION_CREATED", "task": "abc"}, "task"),
    ({"action": "ANNOTATION_CREATED", "task": {"id": 10**30, "project": 1}}, "task.id"),
    ({"action": "ANNOTATION_CREATED", "task": {"id": 1}, "project": {"id": -3}}, "project.id"),
])
def test_a_malformed_webhook_with_the_right_secret_is_422_naming_the_field(guarded, payload, field):
    with guarded.client(None) as c:
        r = c.post("/v1/webhooks/label-studio", json=payload, headers={WEBHOOK_HEADER: SECRET})
    assert r.status_code == 422, r.text
    assert field in [e["field"] for e in r.json()["detail"]]


# -- 12: slow bodies -----------------------------------------------------------------------------------------
def test_a_body_that_never_comes_gets_408_within_the_timeout(guarded):
    status, at = raw_request(guarded.port, head("/v1/score", "Content-Length: 100", f"X-API-Key: {KEYS['scorer']}"),
                             [b'{"messages": ['], timeout=15)
    assert status == 408 and at < 6  # TRIAGE_BODY_TIMEOUT_SECONDS=2


def test_a_trickled_body_gets_408_within_the_timeout(guarded):
    def trickle() -> Iterable[bytes]:
        for _ in range(30):
            time.sleep(0.5)
            yield b"5\r\n     \r\n"

    status, at = raw_request(guarded.port, head("/v1/score", "Transfer-Encoding: chunked",
                                                f"X-API-Key: {KEYS['scorer']}"), trickle(), timeout=20)
    assert status == 408 and at < 6


# -- bodies FastAPI could not read: 422 naming the body ------------------------------------------------------
@pytest.mark.parametrize(("body", "says"), [
    (b'{"messages": ' + b"[" * 10_000 + b"]" * 10_000 + b"}", "nested"),
    (b'{"messages": [{"text": "hi", "message_id": ' + b"9" * 5000 + b"}]}", "digits"),
    (json.dumps({"messages": [{"text": "caf\u00e9 au lait"}]}, ensure_ascii=False).encode("latin-1"), "UTF-8"),
])
def test_unreadable_json_is_422_naming_the_body(guarded, body, says):
    with guarded.client("scorer") as c:
        r = c.post("/v1/score", content=body, headers={"Content-Type": "application/json; charset=latin-1"})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["field"] == "body" and says in r.json()["detail"][0]["message"]
