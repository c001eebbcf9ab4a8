"""Fuzzing the REST API with schemathesis against its generated OpenAPI schema, once as an
administrator and once as a user with no rights: for every operation, no 5xx, only documented
status codes and content types, bodies and headers that match the schema, and a request the
schema calls invalid refused (schemathesis's negative-data check).

In the suite this is a short run (``FUZZ_EXAMPLES`` cases per operation, the same every time);
``make fuzz`` runs the long one and writes ``bench/fuzz-results.md``.
"""

from __future__ import annotations

import zlib
from typing import Any

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi import checks

from tests.fuzz.conftest import (
    ABSENT,
    PERSONAS,
    SCHEMA_URL,
    FuzzWorld,
    fuzz_config,
    generated_schema,
    record_case,
)

# The event stream never ends (a valid request streams until the client leaves), so it is
# left out; tests/live checks what it refuses.
schema = schemathesis.openapi.from_dict(generated_schema(), config=fuzz_config()).exclude(
    path="/api/v3/events/events/stream/"
)

CHECKS = [
    schemathesis.checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    # A request the schema calls invalid must be refused (4xx), not quietly accepted.
    checks.negative_data_rejection,
]


@pytest.fixture(params=PERSONAS)
def persona(request: pytest.FixtureRequest, fuzz_world: FuzzWorld) -> Any:
    return fuzz_world.personas[request.param]


# Values the API accepts where the schema can only say "a string" (an action, a query, a
# duration, a search field): without some of them nearly every generated request is a 400,
# and the fuzzer never reaches the code behind the validation.
ACCEPTED_VALUES = {
    "action": ["login", "model_updated", "custom_fuzzing"],
    "match": ['action = "login"', 'action = "custom_fuzz" and context.message ~ "fuzz"'],
    "count_steps": ["hours=24", "days=7"],
    "field": ["auditlog.event.action", "auditlog.event.app"],
}
MEMBERSHIP = ("/add_user/", "/remove_user/")


def pick(generated: Any, choices: list[Any]) -> Any:
    """The generated value, or one of ``choices``: which one follows from the generated value,
    so a case that fails is replayed (and shrunk) the same way."""
    chosen = zlib.crc32(repr(generated).encode()) % (len(choices) + 1)
    return choices[chosen - 1] if chosen else generated


def negative(case: Any, location: ParameterLocation) -> bool:
    """Whether the fuzzer made this part of the request invalid on purpose: it is then sent as
    generated, so that the negative-data check sees the invalid value reach the API."""
    meta = getattr(case, "_meta", None)
    return meta is not None and meta.is_negative_at(location)


def aim(case: Any, world: FuzzWorld) -> None:
    """Point most path parameters at existing objects (else nearly every case is a 404), but
    none at the personas' own user, token or group; give some fields values the API accepts.
    A part the fuzzer made invalid on purpose is left as it is."""
    parameters = case.path_parameters or {}
    for name, generated in list(parameters.items()):
        if negative(case, ParameterLocation.PATH):
            break
        chosen = pick(generated, world.ids_for(case.path, name))
        parameters[name] = ABSENT if str(chosen) in world.protected else chosen
    body = case.body if isinstance(case.body, list) else [case.body]
    containers = [] if negative(case, ParameterLocation.QUERY) else [case.query]
    if not negative(case, ParameterLocation.BODY):
        containers.extend(body)
    for container in containers:
        if not isinstance(container, dict):
            continue
        for name, choices in ACCEPTED_VALUES.items():
            if name in container:
                container[name] = pick(container[name], choices)
    if negative(case, ParameterLocation.BODY):
        return
    if case.path.endswith(MEMBERSHIP) and isinstance(case.body, dict) and "pk" in case.body:
        users = [int(pk) for pk in world.ids_for("/api/v3/core/users/{pk}/", "pk")]
        case.body["pk"] = pick(case.body["pk"], users)


@pytest.mark.django_db(transaction=True)
@schema.parametrize()
def test_every_operation_answers_as_documented(
    case: Any, persona: Any, fuzz_world: FuzzWorld, wsgi_application: WSGIHandler
) -> None:
    aim(case, fuzz_world)
    response = case.call(app=wsgi_application, headers=persona.headers)
    if case.method.upper() == case.operation.method.upper():  # not a probe of other methods
        record_case(case.operation.label, persona.name, response.status_code)
    case.validate_response(response, checks=CHECKS, headers=persona.headers)


@pytest.mark.django_db
def test_the_fuzzed_schema_is_the_one_the_api_serves(api_as, admin_user) -> None:
    served = api_as(admin_user).get(SCHEMA_URL, {"format": "json"})
    assert served.status_code == 200
    assert served.json() == generated_schema()
