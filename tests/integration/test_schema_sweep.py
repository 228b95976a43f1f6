"""Schemathesis sweeps the OpenAPI schema of the running service: no input may cause a server error."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.integration.service_fixtures import KEYS, RunningService

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sweep_service(trained_store, tmp_path_factory):
    store, _ = trained_store
    running = RunningService(store, tmp_path_factory.mktemp("sweep"), TRIAGE_MAX_BATCH="16").start()
    yield running
    running.stop()


def test_no_server_errors(sweep_service):
    # schemathesis' pytest plugin does not run under pytest 9; its strategies are driven with hypothesis here.
    schema = schemathesis.openapi.from_url(f"{sweep_service.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/v1/score", "/v1/model", "/v1/admin/reload", "/healthz", "/readyz",
                                              "/v1/feedback", "/v1/disputes", "/v1/disputes/{dispute_id}/resolve"}
    calls = 0
    statuses: set[int] = set()

    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def check(case):
            nonlocal calls
            for role in ("admin", "scorer", None):
                headers = {"X-API-Key": KEYS[role]} if role else {}
                response = case.call(base_url=sweep_service.url, headers=headers, timeout=60)
                calls += 1
                statuses.add(response.status_code)
                assert response.status_code < 500, (
                    f"{case.method} {case.path} -> {response.status_code}: {response.text[:300]}")

        check()
    assert calls >= 100
    assert {200, 401, 403, 422} <= statuses, statuses
