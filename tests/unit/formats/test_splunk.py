"""Splunk's webhook alert action: identity across runs, severity, summary, and odd input."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from pdrelay import formats
from pdrelay.errors import BadRequest
from pdrelay.formats import ParseContext, splunk
from pdrelay.models import Alert
from tests.conftest import load_event
from tests.formats_harness import HOSTILE_VALUES

RECEIVED = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)


def parse(doc: Any, **options: Any) -> Alert:
    context = ParseContext(received_at=RECEIVED, options=splunk.Options.model_validate(options))
    (alert,) = formats.get("splunk").run(doc, context).alerts
    return alert


def fired(**result: Any) -> dict[str, Any]:
    doc = load_event("formats/splunk/firing.json")
    doc["result"].update(result)
    return doc


def test_every_run_of_one_alert_is_one_incident_though_the_sid_changes() -> None:
    first, second = fired(), fired(count="300")
    second["sid"] = "scheduler__admin__search__RMD5a1b2c3d4e5f60718_at_1795424700_1240"
    assert parse(first).identity == parse(second).identity == "Checkout 5xx errors"


def test_splunk_never_resolves_so_every_notification_triggers_at_receipt() -> None:
    alert = parse(fired())
    assert alert.action == "trigger"
    assert alert.occurred_at == RECEIVED


def test_identity_fields_make_one_incident_per_value() -> None:
    web, db = fired(host="web-01"), fired(host="db-02")
    assert parse(web, identity_fields=["host"]).identity == "Checkout 5xx errors|host=web-01"
    assert parse(db, identity_fields=["host"]).identity == "Checkout 5xx errors|host=db-02"
    assert parse(web).identity == parse(db).identity  # without the option: one incident per alert
    assert (
        parse(fired(host=["a", "b"]), identity_fields=["host", "nope"]).identity
        == "Checkout 5xx errors|host=a, b|nope="
    )


@pytest.mark.parametrize(
    ("sid", "identity"),
    [
        (
            "scheduler__admin__search__RMD5a1b2c3d4e5f60718_at_1795424400_1234",
            "scheduler__admin__search__RMD5a1b2c3d4e5f60718",
        ),
        ("scheduler_admin_search_W2_at_14232356_132", "scheduler_admin_search_W2"),
        ("1795424400.1234", "1795424400.1234"),  # an ad-hoc search: no saved search to name
    ],
)
def test_without_a_search_name_the_scheduler_sid_less_its_run_suffix_is_the_identity(sid: str, identity: str) -> None:
    doc = fired()
    doc.update(search_name=None, sid=sid)
    alert = parse(doc)
    assert alert.identity == identity
    assert alert.summary == "Checkout returned 142 HTTP 503 responses in the last 5 minutes"


@pytest.mark.parametrize("junk", [None, "", "  ", [], {}])
def test_without_a_search_name_or_a_sid_it_is_a_400(junk: object) -> None:
    doc = fired()
    doc.update(search_name=junk, sid=junk)
    with pytest.raises(BadRequest, match="invalid Splunk payload"):
        parse(doc)


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ({"severity": "critical"}, "critical"),
        ({"severity": "High"}, "error"),
        ({"severity": "medium"}, "warning"),
        ({"severity": "low"}, "info"),
        ({"severity": "informational"}, "info"),
        ({"severity": "severe"}, "critical"),
        ({"severity": "fatal"}, "critical"),
        ({"severity": "3"}, "error"),
        ({"severity": "bogus", "priority": "low"}, "info"),
        ({"priority": "critical"}, "critical"),
        ({"urgency": "medium"}, "warning"),
        ({"severity": "info", "urgency": "critical"}, "info"),
        ({"severity": ["warning", "critical"]}, "error"),  # a multivalue field is no one word
    ],
)
def test_severity_comes_from_the_result_when_it_is_a_known_word(result: dict[str, Any], expected: str) -> None:
    doc = fired()
    doc["result"] = result
    assert parse(doc).severity == expected


def test_without_a_known_severity_the_route_s_default_applies() -> None:
    doc = fired()
    doc["result"] = {"count": "8"}
    assert parse(doc).severity == "error"
    assert parse(doc, severity="warning").severity == "warning"
    assert parse(fired(), severity="info").severity == "error"  # the result's "high" wins


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ({"summary": "S", "message": "M", "description": "D", "_raw": "R"}, "S"),
        ({"message": "M", "description": "D", "_raw": "R"}, "M"),
        ({"description": "D", "_raw": "R"}, "D"),
        ({"_raw": "R  with\n  spaces"}, "R with spaces"),
        ({"message": ["first", "second"]}, "first, second"),
        ({"count": "8"}, "Splunk alert Checkout 5xx errors"),
        ({"summary": "", "message": None, "description": {}}, "Splunk alert Checkout 5xx errors"),
    ],
)
def test_the_summary_is_the_result_s_own_words_else_the_alert_name(result: dict[str, Any], expected: str) -> None:
    doc = fired()
    doc["result"] = result
    assert parse(doc).summary == expected


def test_source_is_the_result_host_else_the_splunk_server() -> None:
    doc = fired()
    del doc["result"]["host"]
    alert = parse(doc)
    assert alert.source == "splunk.example.internal"
    assert alert.client_url == "https://splunk.example.internal:8000"
    doc["results_link"] = None
    assert parse(doc).source == "Splunk"


HOSTILE: list[object] = [
    *HOSTILE_VALUES,
    7,
    1.5,
    ["x", None, {"a": 1}],
    {"deep": {"er": 1}},
    "http://:0",
    "ftp://splunk.example.internal/",
]
PLACES = [
    "result",
    "results_link",
    "search_name",
    "owner",
    "app",
    "result.host",
    "result.summary",
    "result.severity",
    "result._raw",
    "result.service",
    "result.environment",
]


@pytest.mark.parametrize("junk", HOSTILE, ids=[repr(v)[:20] for v in HOSTILE])
@pytest.mark.parametrize("place", PLACES)
def test_any_field_may_be_junk_and_the_alert_still_goes(place: str, junk: object) -> None:
    doc = fired()
    if place.startswith("result."):
        doc["result"][place.split(".", 1)[1]] = junk
    else:
        doc[place] = junk
    alert = parse(doc, identity_fields=["host"])
    assert alert.summary and alert.source and len(alert.summary) <= 1024
    assert all(link.href.startswith(("https://", "http://")) for link in alert.links)


@pytest.mark.parametrize("doc", [[], "text", 5, None])
def test_a_body_that_is_not_an_object_is_a_400(doc: object) -> None:
    with pytest.raises(BadRequest):
        formats.get("splunk").run(doc, ParseContext(received_at=RECEIVED))


def test_detection_needs_the_sid_and_the_results_link() -> None:
    doc = fired()
    assert splunk.detect(doc, {})
    assert not splunk.detect({k: v for k, v in doc.items() if k != "sid"}, {})
    assert not splunk.detect({k: v for k, v in doc.items() if k != "results_link"}, {})
    assert not splunk.detect({"sid": "x", "results_link": "y"}, {})
    assert not splunk.detect(load_event("formats/alertmanager/firing.json"), {})


def test_options_are_checked() -> None:
    assert formats.option_problems("splunk", {"identity_fields": ["host"], "severity": "warning"}) == []
    assert formats.option_problems("splunk", {"severity": "page"})
    assert formats.option_problems("splunk", {"identity_fields": "host"})
    assert formats.option_problems("splunk", {"group_by": "host"})
