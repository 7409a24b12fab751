"""Datadog webhooks (pdrelay's payload template) become normalized alerts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from pdrelay.errors import BadRequest
from pdrelay.formats import ParseContext, datadog, option_problems
from pdrelay.models import SUMMARY_LIMIT
from tests.conftest import load_event

RECEIVED = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
CTX = ParseContext(received_at=RECEIVED)


def case(name: str = "triggered") -> Any:
    return load_event(f"formats/datadog/{name}.json")


def one(doc: Any, ctx: ParseContext = CTX) -> Any:
    (alert,) = datadog.parse(doc, ctx).alerts
    return alert


def test_trigger_and_recovery_share_monitor_and_scope_though_the_event_id_changes() -> None:
    fired, recovered = case("triggered"), case("recovered")
    assert fired["id"] != recovered["id"]
    a, b = one(fired), one(recovered)
    assert (a.action, b.action) == ("trigger", "resolve")
    assert a.identity == b.identity == "monitor:10000001:env:prod,host:web-3.example.internal"


def test_the_scope_order_does_not_change_the_identity_and_other_groups_differ() -> None:
    doc = case()
    doc["alert_scope"] = "env:prod, host:web-3.example.internal"
    assert one(doc).identity == one(case()).identity
    doc["alert_scope"] = "host:web-4.example.internal,env:prod"
    assert one(doc).identity != one(case()).identity


def test_without_scope_the_aggregation_key_then_the_monitor_id_is_the_identity() -> None:
    doc = case()
    doc["alert_scope"] = ""
    assert one(doc).identity == "aggreg:0f1e2d3c4b5a69788796a5b4c3d2e1f0"
    doc["aggreg_key"] = ""
    assert one(doc).identity == "monitor:10000001"
    doc["alert_id"] = ""
    with pytest.raises(BadRequest, match="invalid Datadog payload"):
        datadog.parse(doc, CTX)


@pytest.mark.parametrize(
    ("transition", "alert_type", "action"),
    [
        ("Triggered", "error", "trigger"),
        ("Re-Triggered", "error", "trigger"),
        ("Warn", "warning", "trigger"),
        ("Re-Warn", "warning", "trigger"),
        ("Renotify", "error", "trigger"),
        ("Recovered", "success", "resolve"),
        ("Warn Recovered", "success", "resolve"),
        ("Null", "error", "trigger"),
        ("Null", "success", "resolve"),
        ("", "warning", "trigger"),
    ],
)
def test_each_transition_maps_to_an_action(transition: str, alert_type: str, action: str) -> None:
    doc = case()
    doc["alert_transition"], doc["alert_type"] = transition, alert_type
    assert one(doc).action == action


@pytest.mark.parametrize("transition", ["Null", "Muted", ""])
def test_a_transition_that_says_nothing_with_an_info_type_is_only_noted(transition: str) -> None:
    doc = case()
    doc["alert_transition"], doc["alert_type"] = transition, "info"
    parsed = datadog.parse(doc, CTX)
    assert parsed.alerts == [] and "nothing to page" in parsed.notes[0]


@pytest.mark.parametrize("transition", ["No Data", "Re-No Data"])
def test_no_data_is_noted_by_default_and_paged_at_warning_when_asked(transition: str) -> None:
    doc = case()
    doc["alert_transition"] = transition
    parsed = datadog.parse(doc, CTX)
    assert parsed.alerts == [] and "no data" in parsed.notes[0]
    alert = one(doc, ParseContext(received_at=RECEIVED, options=datadog.Options(no_data="trigger")))
    assert (alert.action, alert.severity) == ("trigger", "warning")


@pytest.mark.parametrize(
    ("priority", "alert_type", "transition", "severity"),
    [
        ("P1", "error", "Triggered", "critical"),
        ("P2", "error", "Triggered", "error"),
        ("P3", "error", "Triggered", "warning"),
        ("P4", "error", "Triggered", "info"),
        ("P5", "error", "Triggered", "info"),
        ("", "error", "Triggered", "error"),
        ("", "warning", "Warn", "warning"),
        ("", "info", "Triggered", "info"),
        ("P1", "warning", "Warn", "warning"),
        ("P4", "warning", "Warn", "info"),
        ("", "", "Triggered", "error"),
        ("P1", "error", "Re-Warn", "warning"),
    ],
)
def test_severity_comes_from_priority_and_alert_type(
    priority: str, alert_type: str, transition: str, severity: str
) -> None:
    doc = case()
    doc["alert_priority"], doc["alert_type"], doc["alert_transition"] = priority, alert_type, transition
    assert one(doc).severity == severity


def test_the_event_date_orders_events_then_last_updated_then_receipt() -> None:
    doc = case()
    assert one(doc).occurred_at == datetime(2026, 11, 24, 9, 2, tzinfo=UTC)
    doc["date"] = ""
    doc["last_updated"] = 1795511400000
    assert one(doc).occurred_at == datetime(2026, 11, 24, 9, 10, tzinfo=UTC)
    doc["last_updated"] = "soon"
    assert one(doc).occurred_at == RECEIVED


def test_links_image_and_monitor_url_follow_the_datadog_site() -> None:
    alert = one(case("warn_priority_p1"))
    assert alert.client_url == "https://app.datadoghq.eu/monitors/10000002"
    assert alert.images == []  # the snapshot is not https
    alert = one(case())
    assert [link.text for link in alert.links] == ["Datadog monitor", "Datadog event"]
    assert alert.images[0].src.startswith("https://p.datadoghq.com/")
    assert (alert.source, alert.component, alert.group) == ("web-3.example.internal", "checkout", "prod")


def test_a_test_notification_is_marked_and_kept_apart_from_the_real_group() -> None:
    alert = one(case("test"))
    assert alert.test is True
    assert alert.identity == "test:" + one(case()).identity
    doc = case("test")
    doc["alert_id"] = doc["aggreg_key"] = doc["alert_scope"] = ""
    assert one(doc).identity == "test"
    assert one(case()).test is False


def test_an_unsubstituted_template_is_a_400_naming_the_variables() -> None:
    doc = case()
    doc["alert_id"], doc["alert_transition"], doc["alert_scope"] = "$ALERT_ID", "$ALERT_TRANSITION", "$ALERT_SCOPE"
    with pytest.raises(BadRequest) as caught:
        datadog.parse(doc, CTX)
    assert caught.value.message == (
        "the webhook template was not substituted: $ALERT_ID $ALERT_TRANSITION $ALERT_SCOPE; Datadog fills "
        "variables only in the webhook's payload field"
    )
    assert caught.value.problems == [
        "alert_id: still $ALERT_ID",
        "alert_transition: still $ALERT_TRANSITION",
        "alert_scope: still $ALERT_SCOPE",
    ]


def test_dollars_in_free_text_or_unknown_names_are_not_mistaken_for_variables() -> None:
    doc = case()
    doc["event_msg"] = "Costs rose to $IDLE_CAPACITY and $ALERT_ID in the runbook"
    doc["alert_title"] = "Spend above $500 on $IDENTITY"
    assert one(doc).summary == "Spend above $500 on $IDENTITY"


def test_a_payload_without_the_template_is_a_400() -> None:
    default_payload = {
        "body": "x",
        "last_updated": "1",
        "event_type": "query_alert_monitor",
        "title": "t",
        "date": "1",
        "org": {"id": "1", "name": "n"},
        "id": "5",
    }
    with pytest.raises(BadRequest, match="not pdrelay's Datadog payload template"):
        datadog.parse(default_payload, CTX)
    with pytest.raises(BadRequest):
        datadog.parse(["not", "an", "object"], CTX)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("alert_title", None),
        ("alert_title", 12),
        ("alert_title", {"a": 1}),
        ("alert_scope", ["host:x"]),
        ("tags", None),
        ("tags", 5),
        ("snapshot", ["https://x"]),
        ("link", "javascript:alert(1)"),
        ("date", True),
        ("alert_priority", None),
        ("alert_type", None),
        ("hostname", "  "),
        ("event_msg", "ü" * 100_000),
        ("alert_id", 10000001),
    ],
)
def test_junk_in_a_field_degrades_instead_of_failing(field: str, value: Any) -> None:
    doc = case()
    doc[field] = value
    alert = one(doc)
    assert alert.summary and len(alert.summary) <= SUMMARY_LIMIT and alert.source


def test_nothing_but_a_monitor_id_and_a_transition_still_makes_an_alert() -> None:
    alert = one({"alert_id": "42", "alert_transition": "Triggered"})
    assert (alert.identity, alert.summary, alert.source, alert.severity) == (
        "monitor:42",
        "Datadog monitor 42",
        "datadog",
        "error",
    )


def test_a_huge_title_is_cut_to_the_summary_limit() -> None:
    doc = case()
    doc["alert_title"] = "Überlast 🔥 " * 20_000
    assert len(one(doc).summary) <= SUMMARY_LIMIT


def test_detect_is_specific() -> None:
    assert datadog.detect(case(), {})
    assert not datadog.detect({"alert_transition": "Triggered"}, {})
    assert not datadog.detect(load_event("formats/alertmanager/firing.json"), {})
    assert not datadog.detect("alert_transition", {})


def test_options_are_validated() -> None:
    assert option_problems("datadog", {"no_data": "trigger"}) == []
    assert option_problems("datadog", {"no_data": "always"})
    assert option_problems("datadog", {"unknown": 1})
