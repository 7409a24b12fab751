"""The PagerDuty-compatible endpoint validates events as PagerDuty documents them, and a trigger sent
again after its resolve opens a new incident whatever timestamp it carries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pdrelay.errors import BadRequest
from pdrelay.formats import ParseContext, events_v2
from tests.conftest import load_event
from tests.formats_harness import RECEIVED, load_case, walk

CTX = ParseContext(received_at=datetime(2026, 11, 24, 10, 0, tzinfo=UTC))


def test_a_valid_trigger_keeps_the_senders_dedup_key() -> None:
    (alert,) = events_v2.parse(load_event("formats/events_v2/trigger.json"), CTX)
    assert alert.dedup_key == "disk-full/db-1"
    assert alert.severity == "warning"
    assert alert.links[0].href == "https://grafana.example.com/d/disk"


def test_a_trigger_without_dedup_key_gets_a_fresh_one() -> None:
    doc = load_event("formats/events_v2/trigger.json")
    del doc["dedup_key"]
    (first,) = events_v2.parse(doc, CTX)
    (second,) = events_v2.parse(doc, CTX)
    assert first.dedup_key and second.dedup_key and first.dedup_key != second.dedup_key


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"event_action": "explode"}, "'event_action' must be one of"),
        ({"payload": None}, "'payload' is missing"),
        ({"payload": {"summary": "", "source": "x", "severity": "info"}}, "'payload.summary' is missing"),
        ({"payload": {"summary": "x" * 1025, "source": "x", "severity": "info"}}, "the limit is 1024"),
        ({"payload": {"summary": "s", "source": "x", "severity": "urgent"}}, "'payload.severity' must be"),
        ({"payload": {"summary": "s", "severity": "info"}}, "'payload.source' is missing"),
        ({"dedup_key": "k" * 256}, "at most 255"),
        ({"images": [{"src": "http://insecure.example.com/x.png"}]}, "HTTPS"),
        ({"links": "nope"}, "'links' must be a list"),
        (
            {"payload": {"summary": "s", "source": "x", "severity": "info", "timestamp": "yesterday"}},
            "'payload.timestamp'",
        ),
    ],
)
def test_invalid_events_are_refused_with_pagerduty_style_reasons(change: dict, expected: str) -> None:
    doc = load_event("formats/events_v2/trigger.json")
    doc.update(change)
    with pytest.raises(BadRequest) as caught:
        events_v2.parse(doc, CTX)
    assert any(expected in p for p in caught.value.problems), caught.value.problems


def test_resolve_needs_a_dedup_key_but_no_payload() -> None:
    (alert,) = events_v2.parse({"routing_key": "x", "event_action": "resolve", "dedup_key": "k1"}, CTX)
    assert (alert.action, alert.summary, alert.occurred_at) == ("resolve", None, CTX.received_at)
    with pytest.raises(BadRequest, match="invalid"):
        events_v2.parse({"routing_key": "x", "event_action": "resolve"}, CTX)


def test_an_events_v2_refire_after_a_resolve_opens_a_new_incident_whatever_its_timestamp() -> None:
    trigger: dict[str, Any] = load_case("events_v2", "trigger").doc
    trigger["payload"]["timestamp"] = (RECEIVED - timedelta(hours=1)).isoformat()  # the detection time, kept
    resolve = load_case("events_v2", "resolve").doc
    assert walk("events_v2", [(trigger, 0), (resolve, 10), (trigger, 30)]) == ["new", "resolve", "reopen"]
