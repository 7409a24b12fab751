"""Alertmanager payloads become one normalized alert per alert, each with its own status."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pdrelay.errors import BadRequest
from pdrelay.formats import ParseContext, alertmanager, detect
from pdrelay.models import SUMMARY_LIMIT, TRUNCATION_MARKER
from tests.conftest import load_event

RECEIVED = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
CTX = ParseContext(received_at=RECEIVED)


def test_a_firing_alert_triggers_with_its_fingerprint_as_identity() -> None:
    (alert,) = alertmanager.parse(load_event("formats/alertmanager/firing.json"), CTX).alerts
    assert alert.action == "trigger"
    assert alert.identity == "c0ffee00d15ea5e1"
    assert alert.severity == "critical"
    assert alert.summary == "Checkout 5xx rate above 5% for 10 minutes"
    assert alert.source == "checkout-7f9c:8080"
    assert alert.occurred_at == datetime(2026, 11, 24, 9, 0, 0, 123456, tzinfo=UTC)
    assert alert.class_ == "HighErrorRate"
    assert alert.group == "prod-eu"
    assert alert.custom_details["labels"]["job"] == "checkout"
    assert "endsAt" not in alert.custom_details  # moves on every repeat; must not look like a change
    assert [link.text for link in alert.links] == ["Source", "Runbook", "Alertmanager"]


def test_each_alert_uses_its_own_status_not_the_groups() -> None:
    doc = load_event("formats/alertmanager/mixed.json")
    assert doc["status"] == "firing"
    firing, resolved = alertmanager.parse(doc, CTX).alerts
    assert (firing.action, resolved.action) == ("trigger", "resolve")
    assert firing.identity != resolved.identity


def test_a_resolve_with_zero_ends_at_takes_the_time_it_was_received() -> None:
    _, resolved = alertmanager.parse(load_event("formats/alertmanager/mixed.json"), CTX).alerts
    assert resolved.occurred_at == RECEIVED


def test_a_resolve_with_ends_at_uses_it() -> None:
    (alert,) = alertmanager.parse(load_event("formats/alertmanager/resolved.json"), CTX).alerts
    assert alert.action == "resolve"
    assert alert.occurred_at == datetime(2026, 11, 24, 9, 20, tzinfo=UTC)


def test_without_fingerprint_identity_is_a_stable_hash_of_sorted_labels() -> None:
    doc = load_event("formats/alertmanager/firing.json")
    del doc["alerts"][0]["fingerprint"]
    (first,) = alertmanager.parse(doc, CTX).alerts
    doc["alerts"][0]["labels"] = dict(reversed(list(doc["alerts"][0]["labels"].items())))
    (second,) = alertmanager.parse(doc, CTX).alerts
    assert first.identity == second.identity
    assert first.identity.startswith("labels-")


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("critical", "critical"),
        ("page", "critical"),
        ("warning", "warning"),
        ("WARN", "warning"),
        ("info", "info"),
        ("error", "error"),
        ("something-else", "error"),
        (None, "error"),
    ],
)
def test_severity_label_maps_to_pagerdutys_four_values(label: str | None, expected: str) -> None:
    doc = load_event("formats/alertmanager/firing.json")
    labels = doc["alerts"][0]["labels"]
    labels.pop("severity")
    if label is not None:
        labels["severity"] = label
    (alert,) = alertmanager.parse(doc, CTX).alerts
    assert alert.severity == expected


def test_summary_falls_back_to_alertname_and_instance_and_is_truncated_visibly() -> None:
    doc = load_event("formats/alertmanager/firing.json")
    doc["alerts"][0]["annotations"] = {}
    (alert,) = alertmanager.parse(doc, CTX).alerts
    assert alert.summary == "HighErrorRate on checkout-7f9c:8080"
    doc["alerts"][0]["annotations"] = {"summary": "x" * 5000}
    (alert,) = alertmanager.parse(doc, CTX).alerts
    assert alert.summary is not None
    assert len(alert.summary) == SUMMARY_LIMIT
    assert alert.summary.endswith(TRUNCATION_MARKER)


def test_problems_are_named_per_alert_and_the_good_alerts_still_go() -> None:
    doc = load_event("formats/alertmanager/mixed.json")
    doc["alerts"][0]["status"] = "exploded"
    doc["alerts"].append("not an object")
    parsed = alertmanager.parse(doc, CTX)
    assert [a.action for a in parsed.alerts] == ["resolve"]
    assert any(p.startswith("alerts[0]: status") for p in parsed.rejected)
    assert "alerts[2]: expected an object" in parsed.rejected


GROUPED = ParseContext(received_at=RECEIVED, options=alertmanager.Options(group_by="group"))


def test_group_mode_pages_once_per_group_and_resolves_only_when_the_group_has() -> None:
    mixed = load_event("formats/alertmanager/mixed.json")  # one alert firing, one resolved
    (partly,) = alertmanager.parse(mixed, GROUPED).alerts
    assert partly.action == "trigger"
    assert partly.summary.startswith("[FIRING:1] HighErrorRate")
    assert partly.custom_details["resolved"] and partly.custom_details["firing"]
    (done,) = alertmanager.parse(load_event("formats/alertmanager/resolved.json"), GROUPED).alerts
    assert done.action == "resolve"
    assert done.identity == partly.identity and done.identity.startswith("group:")
    assert done.occurred_at == RECEIVED  # ordered by receipt: Alertmanager sends a group in order


def test_group_mode_needs_a_group_key() -> None:
    doc = load_event("formats/alertmanager/mixed.json")
    del doc["groupKey"]
    with pytest.raises(BadRequest, match="Alertmanager"):
        alertmanager.parse(doc, GROUPED)


def test_truncated_alerts_are_counted_and_noted() -> None:
    doc = load_event("formats/alertmanager/firing.json")
    doc["truncatedAlerts"] = 7
    parsed = alertmanager.parse(doc, CTX)
    assert parsed.alerts[0].custom_details["truncatedAlerts"] == 7
    assert "7 alert(s)" in parsed.notes[0]
    (group,) = alertmanager.parse(doc, GROUPED).alerts
    assert group.summary.startswith("[FIRING:8]")


def test_an_empty_alert_list_is_refused() -> None:
    doc = load_event("formats/alertmanager/firing.json")
    doc["alerts"] = []
    with pytest.raises(BadRequest, match="no alerts"):
        alertmanager.parse(doc, CTX)


def test_auto_detects_alertmanager_and_events_v2_and_names_what_it_tried() -> None:
    assert detect(load_event("formats/alertmanager/firing.json"), {}).name == "alertmanager"
    assert detect(load_event("formats/events_v2/trigger.json"), {}).name == "events_v2"
    with pytest.raises(BadRequest) as caught:
        detect({"hello": "world"}, {})
    assert "alertmanager" in caught.value.problems[0]
