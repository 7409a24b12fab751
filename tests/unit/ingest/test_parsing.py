"""From a parsed payload to the alerts ingest queues: a monitor's clock far ahead is capped, and a
test notification paged on purpose is marked ``[TEST]`` within PagerDuty's summary limit."""

from __future__ import annotations

from datetime import timedelta

from pdrelay.config import Route
from pdrelay.formats import ParseContext, Parsed, get
from pdrelay.ingest.parsing import parse_payload as _parse
from pdrelay.ingest.parsing import tests_handled as _tests_handled
from pdrelay.models import SUMMARY_LIMIT, Alert
from tests.conftest import ROUTING_KEY, load_event
from tests.formats_harness import RECEIVED


def test_a_monitor_clock_far_ahead_is_capped_so_our_own_later_events_are_not_stale() -> None:
    doc = load_event("formats/alertmanager/firing.json")
    doc["alerts"][0]["startsAt"] = "2099-01-01T00:00:00Z"
    (alert,) = _parse(get("alertmanager"), doc, ParseContext(received_at=RECEIVED)).alerts
    assert alert.occurred_at == RECEIVED + timedelta(minutes=5)


def test_the_test_prefix_keeps_a_long_summary_within_pagerdutys_limit() -> None:
    alert = Alert(
        format="f",
        identity="i",
        action="trigger",
        occurred_at=RECEIVED,
        summary="x" * SUMMARY_LIMIT,
        source="s",
        test=True,
    )
    (kept,) = _tests_handled(Parsed(alerts=[alert]), Route(routing_key=ROUTING_KEY, send_test_notifications=True), "r")
    assert kept.summary is not None and kept.summary.startswith("[TEST] ") and len(kept.summary) <= SUMMARY_LIMIT
    Alert.model_validate(kept.model_dump(by_alias=True))
