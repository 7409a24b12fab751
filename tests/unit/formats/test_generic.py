"""The generic adapter: field paths per route, validated with the configuration."""

from __future__ import annotations

from typing import Any

import pytest

from pdrelay.config import parse_config
from pdrelay.errors import BadRequest, ConfigError
from pdrelay.formats import ParseContext, generic
from tests.conftest import ROUTING_KEY
from tests.formats_harness import RECEIVED


def parse(doc: Any, **options: Any) -> Any:
    return generic.parse(doc, ParseContext(received_at=RECEIVED, options=generic.Options.model_validate(options)))


def config_with(options: Any) -> str:
    return f"""
default_route: jobs
callers: [{{name: cron, token: a-token-of-sixteen-chars}}]
routes:
  jobs:
    routing_key: {ROUTING_KEY}
    formats:
      generic: {options}
"""


def test_route_options_are_validated_with_the_configuration_and_name_the_place() -> None:
    assert parse_config(config_with("{identity: [job, host], status: state}")).routes["jobs"].formats["generic"]
    with pytest.raises(ConfigError) as caught:
        parse_config(config_with("{identity: 'job[', default_severity: loud, colour: red}"))
    problems = " ".join(caught.value.problems)
    assert "routes.jobs.formats" in problems
    assert "not a JMESPath expression" in problems and "default_severity" in problems and "colour" in problems


def test_an_unknown_format_in_route_options_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no format named 'nagios-xi'"):
        parse_config(config_with("{}").replace("generic:", "nagios-xi:"))


def test_a_status_outside_the_configured_values_is_refused_naming_them() -> None:
    with pytest.raises(BadRequest) as caught:
        parse({"id": "x", "status": "meh"}, trigger_values=["bad"], resolve_values=["good"])
    assert caught.value.problems == ["body[0]: status at 'status' is 'meh'; configured values: bad, good"]


def test_missing_identity_parts_are_named() -> None:
    with pytest.raises(BadRequest, match="invalid generic payload") as caught:
        parse({"job": "j", "status": "firing"}, identity=["job", "host"])
    assert "identity: nothing at host" in caught.value.problems[0]


def test_one_bad_alert_in_a_list_does_not_stop_the_others() -> None:
    parsed = parse({"items": [{"id": "a", "status": "firing"}, "junk", {"status": "firing"}]}, alerts="items")
    assert [a.identity for a in parsed.alerts] == ["a"]
    assert [r.split(":")[0] for r in parsed.rejected] == ["items[1]", "items[2]"]


def test_values_compare_case_insensitively_and_acknowledge_is_optional() -> None:
    (alert,) = parse({"id": "a", "status": "ACKED"}, acknowledge_values=["acked"]).alerts
    assert alert.action == "acknowledge"


def test_severity_values_then_words_then_the_default() -> None:
    options = {"severity_values": {"P1": "critical"}, "default_severity": "warning"}
    assert parse({"id": "a", "status": "firing", "severity": "p1"}, **options).alerts[0].severity == "critical"
    assert parse({"id": "a", "status": "firing", "severity": "info"}, **options).alerts[0].severity == "info"
    assert parse({"id": "a", "status": "firing", "severity": "odd"}, **options).alerts[0].severity == "warning"


def test_a_test_flag_marks_a_test_notification() -> None:
    (alert,) = parse({"id": "a", "status": "firing", "demo": True}, test="demo").alerts
    assert alert.test


@pytest.mark.parametrize(
    "doc",
    [
        {"id": "a", "status": "firing"},
        {"id": 7, "status": "firing", "summary": None, "source": {"nested": 1}},
        {"id": "a", "status": "firing", "summary": "é" * 50_000},
    ],
)
def test_missing_or_odd_fields_still_give_a_sensible_trigger(doc: dict[str, Any]) -> None:
    (alert,) = parse(doc).alerts
    assert alert.summary and alert.source
    assert len(alert.summary) <= 1024


def test_the_generic_format_is_never_auto_detected() -> None:
    assert not generic.detect({"id": "a", "status": "firing", "summary": "s"}, {})
