"""Property-based fuzzing of the JSON API from its own OpenAPI schema (schemathesis).

Every GET operation, with generated parameters: no 5xx, and responses match
their declared schemas. (schemathesis's pytest plugin does not load under
pytest 9, so each operation's hypothesis strategy is driven directly.)
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="pip install schemathesis (in the [test] extra)")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import response_schema_conformance  # noqa: E402
from tests_support import fuzz_case  # noqa: E402

from recworld.dashboard.api import router  # noqa: E402

PATHS = sorted(r.path for r in router.routes if not r.path.endswith("/stream"))


@pytest.fixture(scope="module")
def api_schema(app):
    return schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.mark.slow
@pytest.mark.parametrize("path", PATHS)
def test_api_conforms_and_never_500(api_schema, path):
    op = api_schema[path]["GET"]

    @given(case=op.as_strategy())
    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def fuzz(case) -> None:
        with fuzz_case("dashboard API (schemathesis)"):
            case.call_and_validate(checks=[not_a_server_error, response_schema_conformance])

    fuzz()


def test_stream_fuzzed_ids(client):
    """The SSE route is left out above (it streams); its parameters are checked here."""
    for url in ("/api/runs/0/stream", "/api/runs/999/stream", "/api/runs/1/stream?after=-7", "/api/runs/x/stream"):
        assert client.get(url).status_code in (404, 422)
