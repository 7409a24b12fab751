"""The running relay answers as docs/openapi.yaml says (schemathesis over HTTP, through the local stack).

The document is loaded from the stack itself (``GET /openapi.yaml``); every operation gets a bounded
number of generated requests with a valid bearer token, and each answer goes through schemathesis's
``not_a_server_error``, ``status_code_conformance``, ``content_type_conformance`` and
``response_schema_conformance``. Failures are collected (with a curl command to reproduce each) and
reported together; the number of cases is printed. Seeded: see tests/fuzz_counter.py.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
import schemathesis
import yaml
from hypothesis import HealthCheck, given, seed, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from pdrelay.local.stack import LocalStack
from tests.conftest import TOKEN
from tests.fuzz_counter import SEED, record

pytestmark = pytest.mark.e2e

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
PER_OPERATION = 50  # x 9 operations


def test_the_stack_serves_its_openapi_document_as_yaml_and_json(stack: LocalStack) -> None:
    as_yaml = requests.get(f"{stack.url}/openapi.yaml", timeout=10)
    as_json = requests.get(f"{stack.url}/openapi.json", timeout=10)
    assert as_yaml.status_code == as_json.status_code == 200
    assert as_yaml.headers["Content-Type"] == "application/yaml"
    assert as_json.headers["Content-Type"] == "application/json"
    assert yaml.safe_load(as_yaml.text) == as_json.json() == yaml.safe_load(stack.openapi_path.read_text())


def test_every_operation_answers_as_the_document_says(stack: LocalStack, capsys: pytest.CaptureFixture[str]) -> None:
    schema = schemathesis.openapi.from_url(f"{stack.url}/openapi.yaml")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 9
    failures: list[str] = []
    ran: dict[str, int] = {}
    statuses: dict[int, int] = {}
    started = time.perf_counter()
    session = requests.Session()
    for operation in operations:
        label = f"{operation.method.upper()} {operation.path}"
        ran[label] = 0
        exercise(operation, label, stack.url, session, ran, failures, statuses)
    seconds = time.perf_counter() - started
    record("schemathesis", sum(ran.values()), seconds)
    with capsys.disabled():
        print(
            f"\nschemathesis: {sum(ran.values())} cases in {seconds:.1f} s, {len(failures)} failures; "
            f"statuses {dict(sorted(statuses.items()))}; {ran}"
        )
    assert sum(ran.values()) >= len(operations) * PER_OPERATION * 0.5
    assert failures == [], "\n\n".join(failures[:20])
    assert {200, 400} <= set(statuses)  # the generated requests get past authentication (202s: other e2e tests)


def test_the_checks_fail_an_answer_the_document_does_not_describe(stack: LocalStack) -> None:
    """The run above can fail: with a document whose health answer needs a field, the real answer is refused."""
    doc = yaml.safe_load(stack.openapi_path.read_text(encoding="utf-8"))
    doc["components"]["schemas"]["Health"]["required"].append("uptime")
    operation = schemathesis.openapi.from_dict(doc)["/health"]["GET"]
    case = operation.Case()
    with pytest.raises(BaseExceptionGroup) as caught:  # schemathesis raises a group of its failures
        case.call_and_validate(base_url=stack.url, checks=CHECKS, timeout=10)
    found = getattr(caught.value, "exceptions", [caught.value])
    assert any(type(failure).__name__ == "JsonSchemaError" for failure in found), found


def exercise(
    operation: Any,
    label: str,
    url: str,
    session: requests.Session,
    ran: dict[str, int],
    failures: list[str],
    statuses: dict[int, int],
) -> None:
    """``PER_OPERATION`` generated requests to one operation, each answer checked."""

    @seed(SEED)
    @settings(max_examples=PER_OPERATION, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def run(case: Any) -> None:
        ran[label] += 1
        try:
            answer = case.call_and_validate(
                base_url=url, session=session, checks=CHECKS, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
            )
            statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
        except (Exception, BaseExceptionGroup) as exc:  # a group of failures: record it, go on
            failures.append(f"{label}: {str(exc).strip()[:1500]}\n  reproduce: {case.as_curl_command()}")

    run()
