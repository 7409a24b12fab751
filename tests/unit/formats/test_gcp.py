"""Google Cloud Monitoring webhooks: incident identity, states, severities, the test notification and
hostile fields."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from pdrelay import formats
from pdrelay.errors import BadRequest
from pdrelay.formats import ParseContext, gcp
from pdrelay.models import Alert
from tests.formats_harness import RECEIVED, load_case


def case(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = load_case("gcp", name).doc
    return doc


def parse_one(doc: Any, options: gcp.Options | None = None) -> Alert:
    (alert,) = gcp.parse(doc, ParseContext(received_at=RECEIVED, options=options or gcp.Options()))
    return alert


def test_open_and_closed_share_the_incident_id() -> None:
    opened, closed = parse_one(case("open")), parse_one(case("closed"))
    assert opened.identity == closed.identity == "0.nexample4k2q1"
    assert (opened.action, closed.action) == ("trigger", "resolve")
    assert closed.occurred_at > opened.occurred_at


@pytest.mark.parametrize(
    ("state", "action"), [("open", "trigger"), ("OPEN", "trigger"), ("closed", "resolve"), ("Closed", "resolve")]
)
def test_the_state_decides_the_action(state: str, action: str) -> None:
    doc = case("open")
    doc["incident"]["state"] = state
    assert parse_one(doc).action == action


@pytest.mark.parametrize("state", [None, "", "acknowledged", 1])
def test_an_unknown_state_is_a_400(state: Any) -> None:
    doc = case("open")
    doc["incident"]["state"] = state
    with pytest.raises(BadRequest, match="state"):
        gcp.parse(doc, ParseContext(received_at=RECEIVED))


def test_ordering_times_are_started_at_and_ended_at_else_receipt() -> None:
    assert parse_one(case("open")).occurred_at.isoformat() == "2026-11-24T08:51:07+00:00"
    assert parse_one(case("closed")).occurred_at.isoformat() == "2026-11-24T09:19:43+00:00"
    for junk in (None, 0, -5, "soon", {"s": 1}, True):
        doc = case("closed")
        doc["incident"]["ended_at"] = junk
        assert parse_one(doc).occurred_at == RECEIVED
    doc = case("open")
    doc["incident"]["started_at"] = "1795510267"  # a number as a string
    assert parse_one(doc).occurred_at.isoformat() == "2026-11-24T08:51:07+00:00"


@pytest.mark.parametrize(
    ("severity", "label", "option", "expected"),
    [
        ("Critical", None, "error", "critical"),
        ("Error", None, "info", "error"),
        ("Warning", "critical", "error", "warning"),  # the policy's severity wins over a label
        ("No severity", "warning", "error", "warning"),  # then the policy's severity label
        ("No severity", None, "info", "info"),  # then the route's option
        (None, None, "error", "error"),
        ("no severity", "bogus", "critical", "critical"),
        (42, None, "warning", "warning"),
    ],
)
def test_severity_order(severity: Any, label: str | None, option: str, expected: str) -> None:
    doc = case("open")
    doc["incident"]["severity"] = severity
    doc["incident"]["policy_user_labels"] = {"severity": label} if label else {}
    assert parse_one(doc, gcp.Options(severity=option)).severity == expected


def test_the_channels_test_notification_is_a_test_with_identity_test() -> None:
    alert = parse_one(case("test-notification"))
    assert alert.test and alert.identity == "test" and alert.action == "trigger"
    assert alert.occurred_at == RECEIVED  # its times are 0
    assert not parse_one(case("open")).test


def test_the_test_sample_is_recognised_without_its_version_too() -> None:
    doc = case("test-notification")
    doc["version"] = "1.2"
    assert parse_one(doc).test
    doc["incident"]["summary"] = "Something real"
    assert not parse_one(doc).test


def test_summary_prefers_the_documentation_subject_then_the_incident_summary() -> None:
    assert parse_one(case("open")).summary == "[CRITICAL] checkout-web-1: CPU above 90%"
    incident_summary = str(parse_one(case("cloud-run-no-severity")).summary)
    assert incident_summary.startswith("Request Count for shop-prod-example orders-api")
    doc = case("cloud-run-no-severity")
    del doc["incident"]["summary"]
    assert parse_one(doc).summary == "orders-api 5xx: Cloud Run Revision - 5xx requests above 5/s on orders-api"


def test_documentation_links_and_the_incident_url_become_links() -> None:
    alert = parse_one(case("open"))
    assert [(link.text, link.href) for link in alert.links] == [
        ("Incident in Cloud Monitoring", case("open")["incident"]["url"]),
        ("Runbook", "https://runbooks.example.com/checkout/cpu"),
        ("Dashboard", "https://grafana.example.com/d/checkout"),
    ]
    assert alert.client_url == case("open")["incident"]["url"]


def test_an_old_notification_gets_its_project_from_the_console_url() -> None:
    alert = parse_one(case("minimal-v1.1"))
    assert alert.group == "batch-example" and alert.source == "legacy-batch-host"


def test_options_are_validated() -> None:
    assert formats.option_problems("gcp", {"severity": "urgent"})
    assert formats.option_problems("gcp", {"no_data": "ignore"})
    assert formats.option_problems("gcp", {"severity": "warning"}) == []


def test_detect_is_specific() -> None:
    assert gcp.detect(case("open"), {}) and gcp.detect(case("test-notification"), {})
    assert not gcp.detect({"incident": {"incident_id": "x"}}, {})  # no state
    assert not gcp.detect({"incident": "0.abc", "version": "1.2"}, {})
    assert not gcp.detect([], {})


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"incident": []},
        {"version": "1.2"},
        {"incident": {"state": "open"}},
        {"incident": {"incident_id": None, "state": "open"}},
    ],
)
def test_unusable_bodies_are_a_400(body: Any) -> None:
    with pytest.raises(BadRequest):
        gcp.parse(body, ParseContext(received_at=RECEIVED))


JUNK: list[Any] = [None, "", 12345, {"a": 1}, ["x"], "x" * 100_000, "ünïcødé ✓ 警报", True]
FIELDS = [
    "summary",
    "policy_name",
    "condition_name",
    "resource",
    "resource_name",
    "resource_display_name",
    "resource_type_display_name",
    "metric",
    "metadata",
    "policy_user_labels",
    "documentation",
    "condition",
    "url",
    "apigee_url",
    "severity",
    "observed_value",
    "scoping_project_id",
    "started_at",
]


@pytest.mark.parametrize("junk", JUNK, ids=[repr(j)[:20] for j in JUNK])
@pytest.mark.parametrize("field", FIELDS)
def test_hostile_fields_never_break_parsing(field: str, junk: Any) -> None:
    doc = case("open")
    doc["incident"][field] = copy.deepcopy(junk)
    alert = parse_one(doc)
    assert alert.summary and len(alert.summary) <= 1024 and alert.source
    assert alert.identity == "0.nexample4k2q1"


@pytest.mark.parametrize("junk", JUNK, ids=[repr(j)[:20] for j in JUNK])
@pytest.mark.parametrize("field", ["subject", "links", "content"])
def test_hostile_documentation_never_breaks_parsing(field: str, junk: Any) -> None:
    doc = case("open")
    doc["incident"]["documentation"][field] = copy.deepcopy(junk)
    assert parse_one(doc).summary


def test_a_numeric_incident_id_is_read_as_text() -> None:
    doc = case("open")
    doc["incident"]["incident_id"] = 987
    assert parse_one(doc).identity == "987"
