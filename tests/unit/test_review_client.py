"""The Label Studio client turns a server it cannot reach into the project's own error, naming the URL and
the fix: a real connection refusal on a closed loopback port, nothing mocked."""

import socket

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
