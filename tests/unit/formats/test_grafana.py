"""Grafana webhooks (unified alerting and legacy dashboard alerting) become normalized alerts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from pdrelay.errors import BadRequest
from pdrelay.formats import ParseContext, grafana, option_problems
from pdrelay.models import SUMMARY_LIMIT
from tests.conftest import load_event

RECEIVED = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
CTX = ParseContext(received_at=RECEIVED)


def unified(name: str = "unified_firing") -> Any:
    return load_event(f"formats/grafana/{name}.json")


def legacy(name: str = "legacy_alerting") -> Any:
    return load_event(f"formats/grafana/{name}.json")


def with_options(**options: Any) -> ParseContext:
    return ParseContext(received_at=RECEIVED, options=grafana.Options(**options))


# --- unified alerting ---------------------------------------------------------------------------


def test_firing_and_resolved_alerts_share_their_fingerprint_identity() -> None:
    fired = grafana.parse(unified("unified_firing"), CTX).alerts
    resolved = grafana.parse(unified("unified_resolved"), CTX).alerts
    assert [a.action for a in fired] == ["trigger", "trigger"]
    assert [a.action for a in resolved] == ["resolve", "resolve"]
    assert [a.identity for a in fired] == [a.identity for a in resolved] == ["c6eadffa33fcdf37", "bc97ff14869b13e3"]


def test_each_alert_uses_its_own_status_not_the_groups() -> None:
    doc = unified()
    doc["alerts"][1]["status"] = "resolved"
    doc["alerts"][1]["endsAt"] = "2026-11-24T09:20:00Z"
    first, second = grafana.parse(doc, CTX).alerts
    assert (first.action, second.action) == ("trigger", "resolve")
    assert second.occurred_at == datetime(2026, 11, 24, 9, 20, tzinfo=UTC)


def test_an_alert_without_status_takes_the_groups() -> None:
    doc = unified("unified_resolved")
    del doc["alerts"][0]["status"]
    assert grafana.parse(doc, CTX).alerts[0].action == "resolve"


def test_an_unknown_status_rejects_that_alert_only() -> None:
    doc = unified()
    doc["alerts"][0]["status"] = "pending"
    parsed = grafana.parse(doc, CTX)
    assert [a.identity for a in parsed.alerts] == ["bc97ff14869b13e3"]
    assert parsed.rejected == ["alerts[0]: status must be 'firing' or 'resolved', got 'pending'"]


def test_times_come_from_starts_at_and_ends_at_and_receipt_when_ends_at_is_zero() -> None:
    (first, _) = grafana.parse(unified(), CTX).alerts
    assert first.occurred_at == datetime(2026, 11, 24, 9, 1, 3, 157076, tzinfo=UTC)
    doc = unified("unified_resolved")
    doc["alerts"][0]["endsAt"] = "0001-01-01T00:00:00Z"
    assert grafana.parse(doc, CTX).alerts[0].occurred_at == RECEIVED


def test_without_fingerprint_the_identity_is_a_hash_of_the_sorted_labels() -> None:
    doc = unified()
    del doc["alerts"][0]["fingerprint"]
    first = grafana.parse(doc, CTX).alerts[0].identity
    doc["alerts"][0]["labels"] = dict(reversed(list(doc["alerts"][0]["labels"].items())))
    assert grafana.parse(doc, CTX).alerts[0].identity == first
    assert first.startswith("labels-")
    doc["alerts"][0]["labels"]["instance"] = "payments-api-9.example.internal"
    assert grafana.parse(doc, CTX).alerts[0].identity != first


def test_the_alert_carries_links_image_and_details_for_the_responder() -> None:
    alert = grafana.parse(unified(), CTX).alerts[0]
    assert [link.text for link in alert.links] == ["Alert rule", "Dashboard", "Panel", "Runbook", "Silence", "Grafana"]
    assert [image.src for image in alert.images] == ["https://grafana-images.example.com/alerting/example-panel-01.png"]
    assert alert.client == "Grafana"
    assert alert.client_url == "https://grafana.example.com/alerting/grafana/fexample01/view?orgId=1"
    assert alert.custom_details["values"] == {"B": 93.27, "C": 1}
    assert alert.custom_details["folder"] == "Payments"
    assert (alert.source, alert.component, alert.group, alert.class_) == (
        "payments-api-1.example.internal",
        "payments-api",
        "prod-eu",
        "High memory usage",
    )


def test_an_image_that_is_not_https_is_left_out() -> None:
    doc = unified()
    doc["alerts"][0]["imageURL"] = "http://grafana-images.example.internal/panel.png"
    assert grafana.parse(doc, CTX).alerts[0].images == []


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("critical", "critical"),
        ("high", "error"),
        ("warning", "warning"),
        ("info", "info"),
        ("P1", "critical"),
        ("something-else", "error"),
        (None, "error"),
    ],
)
def test_the_severity_label_maps_to_pagerdutys_severities(label: str | None, expected: str) -> None:
    doc = unified()
    if label is None:
        del doc["alerts"][0]["labels"]["severity"]
    else:
        doc["alerts"][0]["labels"]["severity"] = label
    assert grafana.parse(doc, CTX).alerts[0].severity == expected


def test_the_contact_point_test_is_a_test_notification() -> None:
    (alert,) = grafana.parse(unified("unified_test"), CTX).alerts
    assert alert.test is True
    assert alert.action == "trigger"


def test_a_real_rule_that_happens_to_be_called_testalert_is_not_a_test() -> None:
    doc = unified()
    doc["alerts"] = doc["alerts"][:1]
    doc["alerts"][0]["labels"]["alertname"] = "TestAlert"
    (alert,) = grafana.parse(doc, CTX).alerts
    assert alert.test is False
    assert grafana.parse(unified(), CTX).alerts[0].test is False


def test_no_data_is_noted_without_paging_by_default_and_errors_still_page() -> None:
    parsed = grafana.parse(unified("unified_nodata_and_error"), CTX)
    assert [a.class_ for a in parsed.alerts] == ["DatasourceError"]
    assert parsed.alerts[0].summary.startswith("Order latency: data source error: ")
    assert parsed.notes == [
        "Grafana reports no data for rule 'Queue depth': not paged (grafana option no_data: ignore)"
    ]


def test_no_data_pages_at_warning_when_the_route_asks() -> None:
    parsed = grafana.parse(unified("unified_nodata_and_error"), with_options(no_data="trigger"))
    no_data = next(a for a in parsed.alerts if a.class_ == "DatasourceNoData")
    assert (no_data.action, no_data.severity, no_data.identity) == ("trigger", "warning", "0a1b2c3d4e5f6071")
    assert no_data.summary == "Queue depth: no data from the metrics source"
    assert not parsed.notes


def test_a_no_data_recovery_is_always_sent() -> None:
    doc = unified("unified_nodata_and_error")
    doc["alerts"][0]["status"] = "resolved"
    parsed = grafana.parse(doc, CTX)
    assert [(a.class_, a.action) for a in parsed.alerts] == [
        ("DatasourceNoData", "resolve"),
        ("DatasourceError", "trigger"),
    ]


def test_truncated_alerts_are_noted() -> None:
    doc = unified()
    doc["truncatedAlerts"] = 3
    assert any("left out 3 alert(s)" in note for note in grafana.parse(doc, CTX).notes)


@pytest.mark.parametrize("alerts", [[], None, "x", {"a": 1}])
def test_a_payload_without_alerts_is_a_400(alerts: Any) -> None:
    doc = unified()
    doc["alerts"] = alerts
    with pytest.raises(BadRequest):
        grafana.parse(doc, CTX)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("labels", None),
        ("labels", 7),
        ("labels", ["a"]),
        ("annotations", "junk"),
        ("annotations", None),
        ("fingerprint", {"x": 1}),
        ("generatorURL", 12),
        ("imageURL", ["https://x"]),
        ("values", "B=1"),
        ("startsAt", "yesterday"),
        ("startsAt", 1.5e20),
        ("dashboardURL", "javascript:alert(1)"),
    ],
)
def test_junk_in_a_field_degrades_instead_of_failing(field: str, value: Any) -> None:
    doc = unified()
    doc["alerts"][0][field] = value
    parsed = grafana.parse(doc, CTX)
    assert len(parsed.alerts) == 2 and not parsed.rejected
    assert parsed.alerts[0].summary and parsed.alerts[0].source


def test_an_alert_with_neither_labels_nor_fingerprint_is_rejected_and_others_go() -> None:
    doc = unified()
    doc["alerts"][0]["labels"] = {}
    del doc["alerts"][0]["fingerprint"]
    doc["alerts"].append("not an alert")
    parsed = grafana.parse(doc, CTX)
    assert len(parsed.alerts) == 1
    assert parsed.rejected == [
        "alerts[0]: labels: an alert needs labels or a fingerprint",
        "alerts[2]: expected an object",
    ]


def test_huge_and_non_ascii_text_is_cut_to_the_summary_limit() -> None:
    doc = unified()
    doc["alerts"][0]["annotations"]["summary"] = "Mémoire saturée 🔥 " * 10_000
    alert = grafana.parse(doc, CTX).alerts[0]
    assert alert.summary is not None and len(alert.summary) <= SUMMARY_LIMIT
    assert alert.summary.startswith("Mémoire saturée 🔥")


def test_an_alert_with_nothing_but_a_fingerprint_still_has_a_summary_and_source() -> None:
    doc = {"orgId": 1, "status": "firing", "alerts": [{"fingerprint": "f00"}]}
    (alert,) = grafana.parse(doc, CTX).alerts
    assert (alert.summary, alert.source, alert.identity) == ("Grafana alert", "grafana", "f00")


# --- legacy alerting ----------------------------------------------------------------------------


def test_legacy_alerting_and_ok_share_the_rule_identity() -> None:
    (fired,) = grafana.parse(legacy("legacy_alerting"), CTX).alerts
    (resolved,) = grafana.parse(legacy("legacy_ok"), CTX).alerts
    assert (fired.action, resolved.action) == ("trigger", "resolve")
    assert fired.identity == resolved.identity == "legacy:orgId=1,dashboardId=7,panelId=2,ruleId=42"
    assert fired.occurred_at == RECEIVED
    assert fired.summary == "Batch CPU saturation - CPU on the batch workers has been saturated for 10 minutes."
    assert (fired.severity, fired.source) == ("warning", "batch-worker-3.example.internal")


def test_legacy_identity_uses_whatever_ids_are_present_then_the_rule_name() -> None:
    doc = legacy()
    del doc["orgId"], doc["dashboardId"], doc["panelId"]
    assert grafana.parse(doc, CTX).alerts[0].identity == "legacy:ruleId=42"
    del doc["ruleId"]
    assert grafana.parse(doc, CTX).alerts[0].identity == "legacy:ruleName=Batch CPU saturation"
    del doc["ruleName"]
    with pytest.raises(BadRequest, match="invalid Grafana legacy alert"):
        grafana.parse(doc, CTX)


@pytest.mark.parametrize(("state", "action"), [("alerting", "trigger"), ("ok", "resolve"), ("OK", "resolve")])
def test_legacy_states_that_page(state: str, action: str) -> None:
    doc = legacy()
    doc["state"] = state
    assert grafana.parse(doc, CTX).alerts[0].action == action


@pytest.mark.parametrize("state", ["paused", "pending", "unknown", "no_data"])
def test_legacy_states_that_are_only_noted(state: str) -> None:
    doc = legacy()
    doc["state"] = state
    parsed = grafana.parse(doc, CTX)
    assert parsed.alerts == []
    assert len(parsed.notes) == 1 and "Batch CPU saturation" in parsed.notes[0]


def test_legacy_no_data_pages_at_warning_when_the_route_asks() -> None:
    (alert,) = grafana.parse(legacy("legacy_no_data"), with_options(no_data="trigger")).alerts
    assert (alert.action, alert.severity) == ("trigger", "warning")
    assert alert.summary.startswith("[No Data] Archive disk space")


@pytest.mark.parametrize("state", ["", None, 3, "firing"])
def test_a_legacy_state_grafana_never_sends_is_a_400(state: Any) -> None:
    doc = legacy()
    doc["state"] = state
    with pytest.raises(BadRequest, match="invalid Grafana legacy alert") as caught:
        grafana.parse(doc, CTX)
    assert caught.value.problems[0].startswith("state: must be one of alerting, ok, no_data")


def test_legacy_send_test_is_a_test_notification_with_identity_test() -> None:
    (alert,) = grafana.parse(legacy("legacy_test"), CTX).alerts
    assert (alert.test, alert.identity) == (True, "test")
    old = {
        "ruleId": 0,
        "ruleName": "",
        "state": "alerting",
        "message": "Someone is testing the alert notification within grafana.",
    }
    (alert,) = grafana.parse(old, CTX).alerts
    assert (alert.test, alert.identity) == (True, "test")
    assert grafana.parse(legacy(), CTX).alerts[0].test is False


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("ruleName", "ß" * 100_000),
        ("message", None),
        ("message", {"a": 1}),
        ("tags", ["x"]),
        ("tags", None),
        ("evalMatches", "x"),
        ("evalMatches", [None, 3, {"tags": 5, "value": {"x": 1}}]),
        ("ruleUrl", 5),
        ("imageUrl", "http://insecure.example.internal/x.png"),
        ("title", None),
        ("ruleId", {"x": 1}),
    ],
)
def test_legacy_junk_degrades_instead_of_failing(field: str, value: Any) -> None:
    doc = legacy()
    doc[field] = value
    (alert,) = grafana.parse(doc, CTX).alerts
    assert alert.summary and len(alert.summary) <= SUMMARY_LIMIT and alert.source
    assert all(image.src.startswith("https://") for image in alert.images)


# --- detection and options ----------------------------------------------------------------------


def test_detect_claims_grafana_shapes_and_leaves_alertmanagers() -> None:
    assert grafana.detect(unified(), {})
    no_org = unified()
    del no_org["orgId"]
    assert grafana.detect(no_org, {})
    bare = {"receiver": "x", "alerts": [{"labels": {"a": "b"}, "panelURL": ""}]}
    assert grafana.detect(bare, {})
    assert grafana.detect(legacy(), {})
    assert grafana.detect({"state": "ok", "ruleId": 3}, {})
    assert not grafana.detect(load_event("formats/alertmanager/firing.json"), {})
    assert not grafana.detect({"state": "open", "ruleId": 3}, {})
    assert not grafana.detect({"state": "ok"}, {})
    assert not grafana.detect(["alerts"], {})


def test_a_payload_of_neither_kind_is_a_400() -> None:
    with pytest.raises(BadRequest, match="not a Grafana alert payload"):
        grafana.parse({"hello": "world"}, CTX)
    with pytest.raises(BadRequest):
        grafana.parse([1, 2], CTX)


def test_options_are_validated() -> None:
    assert option_problems("grafana", {"no_data": "trigger"}) == []
    assert option_problems("grafana", None) == []
    assert option_problems("grafana", {"no_data": "page"})
    assert option_problems("grafana", {"nodata": "trigger"})
