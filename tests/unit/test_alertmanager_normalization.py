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
    (alert,) = alertmanager.parse(load_event("alertmanager-firing.json"), CTX)
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
    doc = load_event("alertmanager-mixed.json")
    assert doc["status"] == "firing"
    firing, resolved = alertmanager.parse(doc, CTX)
    assert (firing.action, resolved.action) == ("trigger", "resolve")
    assert firing.identity != resolved.identity


def test_a_resolve_with_zero_ends_at_takes_the_time_it_was_received() -> None:
    _, resolved = alertmanager.parse(load_event("alertmanager-mixed.json"), CTX)
    assert resolved.occurred_at == RECEIVED


def test_a_resolve_with_ends_at_uses_it() -> None:
    (alert,) = alertmanager.parse(load_event("alertmanager-resolved.json"), CTX)
    assert alert.action == "resolve"
    assert alert.occurred_at == datetime(2026, 11, 24, 9, 20, tzinfo=UTC)


def test_without_fingerprint_identity_is_a_stable_hash_of_sorted_labels() -> None:
    doc = load_event("alertmanager-firing.json")
    del doc["alerts"][0]["fingerprint"]
    (first,) = alertmanager.parse(doc, CTX)
    doc["alerts"][0]["labels"] = dict(reversed(list(doc["alerts"][0]["labels"].items())))
    (second,) = alertmanager.parse(doc, CTX)
    assert first.identity == second.identity
    assert first.identity.startswith("labels-")


@pytest.mark.parametrize(
    ("label", "expected"),
    [("critical", "critical"), ("page", "critical"), ("warning", "warning"), ("WARN", "warning"),
     ("info", "info"), ("error", "error"), ("something-else", "error"), (None, "error")],
)
def test_severity_label_maps_to_pagerdutys_four_values(label: str | None, expected: str) -> None:
    doc = load_event("alertmanager-firing.json")
    labels = doc["alerts"][0]["labels"]
    labels.pop("severity")
    if label is not None:
        labels["severity"] = label
    (alert,) = alertmanager.parse(doc, CTX)
    assert alert.severity == expected


def test_summary_falls_back_to_alertname_and_instance_and_is_truncated_visibly() -> None:
    doc = load_event("alertmanager-firing.json")
    doc["alerts"][0]["annotations"] = {}
    (alert,) = alertmanager.parse(doc, CTX)
    assert alert.summary == "HighErrorRate on checkout-7f9c:8080"
    doc["alerts"][0]["annotations"] = {"summary": "x" * 5000}
    (alert,) = alertmanager.parse(doc, CTX)
    assert alert.summary is not None
    assert len(alert.summary) == SUMMARY_LIMIT
    assert alert.summary.endswith(TRUNCATION_MARKER)


def test_problems_are_named_per_alert() -> None:
    doc = load_event("alertmanager-mixed.json")
    doc["alerts"][0]["status"] = "exploded"
    doc["alerts"][1] = "not an object"
    with pytest.raises(BadRequest) as caught:
        alertmanager.parse(doc, CTX)
    assert any(p.startswith("alerts[0]: status") for p in caught.value.problems)
    assert "alerts[1]: expected an object" in caught.value.problems


def test_an_empty_alert_list_is_refused() -> None:
    doc = load_event("alertmanager-firing.json")
    doc["alerts"] = []
    with pytest.raises(BadRequest, match="no alerts"):
        alertmanager.parse(doc, CTX)


def test_auto_detects_alertmanager_and_events_v2_and_names_what_it_tried() -> None:
    assert detect(load_event("alertmanager-firing.json"), {}).name == "alertmanager"
    assert detect(load_event("events-v2-trigger.json"), {}).name == "events_v2"
    with pytest.raises(BadRequest) as caught:
        detect({"hello": "world"}, {})
    assert "alertmanager" in caught.value.problems[0]
