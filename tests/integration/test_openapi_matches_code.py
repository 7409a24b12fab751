"""docs/openapi.yaml describes the ingest function as it is: the same routes with the same methods (both
ways), the format enum equal to the formats registry, a status for every error the edge answers, and a
document that is valid OpenAPI 3.1 (schemathesis's validator, and openapi-spec-validator's when it is
installed: it also refuses two templated paths that differ only in their parameter's name)."""

from __future__ import annotations

import importlib.util
import inspect
import re
from functools import cache
from typing import Any

import pytest
import yaml

from pdrelay import errors, formats
from tests.conftest import ROOT
from tests.integration.conftest import SPEC

DOCUMENT = ROOT / "docs" / "openapi.yaml"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


@cache
def document() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(DOCUMENT.read_text(encoding="utf-8"))
    return doc


def shape(path: str) -> str:
    """A path with its parameters unnamed: ``/v1/test/<route_name>`` and ``/v1/test/{name}`` are one path."""
    return re.sub(r"<[^>]+>|\{[^}]+\}", "{}", path)


def code_routes() -> set[tuple[str, str]]:
    """The routes of pdrelay.handlers.ingest, loaded from the template's CodeUri as Lambda does."""
    handler = SPEC.functions["IngestFunction"].load_handler()
    routes = inspect.unwrap(handler).__globals__["ROUTES"]
    return {(route.method.upper(), shape(route.path)) for route in routes}


def documented_routes() -> set[tuple[str, str]]:
    return {
        (method.upper(), shape(path))
        for path, item in document()["paths"].items()
        for method in METHODS
        if method in item
    }


def operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, item[method])
        for path, item in document()["paths"].items()
        for method in METHODS
        if method in item
    ]


def test_every_route_of_the_ingest_app_is_documented_with_its_method_and_nothing_else_is() -> None:
    in_code, in_document = code_routes(), documented_routes()
    assert in_code - in_document == set(), "routes the document does not describe"
    assert in_document - in_code == set(), "documented routes the ingest app does not have"
    assert len(in_code) == 9


def test_the_format_enum_is_auto_and_every_registered_format() -> None:
    (parameter,) = [p for p in document()["paths"]["/v1/alerts/{name}"]["post"]["parameters"] if p.get("in") == "path"]
    assert parameter["schema"]["enum"] == ["auto", *formats.names()]


def test_the_document_is_valid_openapi_3_1() -> None:
    import schemathesis

    assert document()["openapi"].startswith("3.1.")
    schemathesis.openapi.from_dict(document()).validate()
    if importlib.util.find_spec("openapi_spec_validator") is not None:
        from openapi_spec_validator import validate

        validate(document())  # type: ignore[arg-type]


def test_the_validator_refuses_a_broken_document() -> None:
    """The check above can fail: a document without ``info`` is refused."""
    import schemathesis

    broken = {k: v for k, v in document().items() if k != "info"}
    with pytest.raises(Exception, match="info"):
        schemathesis.openapi.from_dict(broken).validate()


def test_every_status_a_refusal_can_have_is_documented() -> None:
    statuses = {cls.status for cls in _subclasses(errors.RequestError)}
    documented = {int(code) for _m, _p, op in operations() for code in op["responses"] if code.isdigit()}
    assert statuses - documented == set()
    assert {502, 503} <= documented


def response(op: dict[str, Any], status: int) -> dict[str, Any]:
    """An operation's documented answer for ``status``, its ``$ref`` followed."""
    found: dict[str, Any] = op["responses"][str(status)]
    if "$ref" in found:
        found = document()["components"]["responses"][found["$ref"].rsplit("/", 1)[-1]]
    return found


def test_every_operation_that_takes_credentials_documents_401_and_its_rate_limit_answer_with_retry_after() -> None:
    from pdrelay.ingest.endpoints import error_response

    v1_path = inspect.unwrap(SPEC.functions["IngestFunction"].load_handler()).__globals__["V1_PATH"]
    throttled = errors.TooManyRequests("over its rate limit", retry_after=3)
    for method, path, op in operations():
        if op.get("security") == []:
            continue
        assert "401" in op["responses"], f"{method} {path}"
        # The status the code answers a caller over its limit with on this path (403 on Events API v1).
        status, _ = error_response(throttled, events_v1=path == v1_path)
        assert str(status) in op["responses"], f"{method} {path}: {status}"
        assert "Retry-After" in response(op, status).get("headers", {}), f"{method} {path}: {status}"
    assert error_response(throttled, events_v1=True)[0] == 403
    assert "429" not in document()["paths"][v1_path]["post"]["responses"]  # what the v1 endpoint never answers
    challenge = document()["components"]["responses"]["Unauthorized"]["headers"]
    assert "WWW-Authenticate" in challenge


def test_the_pagerduty_compatible_endpoints_answer_400_as_pagerduty_does() -> None:
    from pdrelay.ingest.endpoints import error_response

    status, body = error_response(errors.BadRequest("bad", ["routing_key: missing"]), pagerduty_style=True)
    schema = document()["components"]["schemas"]["PagerDutyError"]
    assert status == 400 and set(schema["required"]) <= set(body)
    assert body["status"] == schema["properties"]["status"]["const"]
    for path in ("/v2/enqueue", "/v2/change/enqueue", "/generic/2010-04-15/create_event.json"):
        assert document()["paths"][path]["post"]["responses"]["400"]["$ref"].endswith("/PagerDutyBadRequest")


def test_the_security_schemes_are_bearer_basic_the_token_query_and_the_signature() -> None:
    schemes = document()["components"]["securitySchemes"]
    assert schemes["bearer"] == {**schemes["bearer"], "type": "http", "scheme": "bearer"}
    assert schemes["basic"] == {**schemes["basic"], "type": "http", "scheme": "basic"}
    assert (schemes["token"]["in"], schemes["token"]["name"]) == ("query", "token")
    assert schemes["signature"]["name"].lower() == "x-pdrelay-signature"


def _subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found.extend([sub, *_subclasses(sub)])
    return found
