"""Property-based run over the published OpenAPI schema against the service on loopback.

Every operation gets generated requests (valid and invalid) with a validator's
token; no response may be a server error, and every response must match the
schema (status code documented, body shape, content type). Bounded examples
keep the run short.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from _sample import sample_store
from assay.api.process import start_server, stop_server
from assay.auth import service as auth
from assay.registry import get_user

pytestmark = pytest.mark.slow

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("schemathesis-home")
    store, url = sample_store(home, password="unused password 1", models=2, reports=False)
    with store.transaction() as s:
        token = auth.create_token(s, get_user(s, "admin"), "vic", "fuzz")[1]
    store.dispose()
    proc, base = start_server({"ASSAY_HOME": str(home), "ASSAY_DATABASE_URL": url})
    yield base, token
    stop_server(proc)


def _operations(schema) -> list:
    """Every operation of the schema; a schema error fails the test with its reason."""
    ops = []
    for result in schema.get_all_operations():
        ops.append(result.ok())  # raises with the schema error when there is one
    return ops


def test_no_server_error_and_responses_match_the_schema(served) -> None:
    """Valid and invalid requests to every operation, a few examples each.

    Driven through schemathesis' public API (the operations and their
    hypothesis strategies), not its pytest plugin, which reaches into pytest
    internals that change between pytest releases.
    """
    base, token = served
    schema = schemathesis.openapi.from_url(base + "/openapi.json")
    operations = _operations(schema)
    assert len(operations) > 20, "the published schema lost its operations"
    failures: list[str] = []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=3, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck))
            def run(case) -> None:
                case.call_and_validate(headers={"Authorization": f"Bearer {token}"},
                                       checks=CHECKS, timeout=30)

            try:
                run()
            except Unsatisfiable:
                # nothing to make invalid: an operation without parameters or body
                if mode is GenerationMode.POSITIVE:
                    failures.append(f"{operation.label}: no valid request can be generated")
            except Exception as exc:  # one operation's failure must not hide the others
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    assert not failures, "\n\n".join(failures)
