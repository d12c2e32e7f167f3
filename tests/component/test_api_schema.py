"""Property tests: schemathesis generates requests from the served OpenAPI document and checks
every answer against it (no server errors, documented status codes, content types and
response schemas), with a key that holds every scope, over a small real MCI."""
from __future__ import annotations

import pytest
import schemathesis
from schemathesis.specs.openapi.checks import positive_data_acceptance
from hypothesis import HealthCheck, given, settings

from tests.component.test_api_support import build_index


@pytest.fixture
def api_app(project):  # noqa: ANN001, ANN201
    from joinedup.api import create_api
    from joinedup.api.keys import create_key
    from joinedup.mci.store import _engine_for, session_factory

    (project / "var").mkdir(exist_ok=True)
    build_index()
    app = create_api(rate_per_second=10_000, burst=10_000)
    with session_factory()() as session:
        _, token = create_key(session, ["person:read", "socialcare:read"], "schemathesis")
        session.commit()
    yield app, token
    _engine_for.cache_clear()


def test_api_conforms_to_its_openapi_document(api_app) -> None:  # noqa: ANN001
    """Each operation of the served document in turn (schemathesis's pytest plugin does not
    load under this pytest, so the operations' strategies are driven by hypothesis here)."""
    app, token = api_app
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 5  # the four reads and /health
    # "at least two details, or one identifier" is a rule JSON Schema cannot state, so a
    # schema-valid search body may be refused with 422: that one check is left out for it
    semantic_422 = [positive_data_acceptance]
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case) -> None:  # noqa: ANN001
            excluded = semantic_422 if operation.path.endswith("/search") else []
            case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, excluded_checks=excluded)

        check()
