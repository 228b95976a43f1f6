"""The Label Studio client turns a server it cannot reach into the project's own error, naming the URL and
the fix: a real connection refusal on a closed loopback port. Label Studio's answers come from a small
HTTP server on loopback (the only thing faked is the server across the process boundary)."""

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from triage_ml.errors import ReviewUnavailableError
from triage_ml.review.client import LabelStudio


def closed_port() -> int:
    """A loopback port nothing listens on (bound once to find it, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_project_exists_on_a_server_that_is_down_is_one_clear_error():
    url = f"http://127.0.0.1:{closed_port()}"
    ls = LabelStudio(url, "f" * 40, timeout=5)
    with pytest.raises(ReviewUnavailableError) as caught:
        ls.project_exists(1)
    message = str(caught.value)
    assert url in message and "is unreachable" in message
    assert "TRIAGE_LABEL_STUDIO_URL" in message  # the fix
    assert caught.value.__cause__ is None and caught.value.__suppress_context__  # no httpx chain to print


class _Projects(BaseHTTPRequestHandler):
    """A stand-in for Label Studio's project endpoint on loopback: project 2 exists, project 1 was deleted
    (404), project 3 fails (500)."""

    def do_GET(self) -> None:
        status = {"/api/projects/2/": 200, "/api/projects/1/": 404}.get(self.path, 500)
        body = json.dumps({"id": 2, "title": "triage-ml: review queue"} if status == 200 else
                          {"detail": "Not found." if status == 404 else "boom"}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Projects)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_project_exists_reads_a_404_as_deleted_and_any_other_failure_as_the_clear_error(server):
    ls = LabelStudio(server, "f" * 40, timeout=5)
    assert ls.project_exists(2) is True
    assert ls.project_exists(1) is False  # deleted in Label Studio: ensure_project creates it again
    with pytest.raises(ReviewUnavailableError, match=r"answered 500 while trying to read project 3: boom"):
        ls.project_exists(3)
