"""An Events API v1 event, as the PagerDuty Agent (``pd-send``) and its scripts send it, loses nothing
v2 has a place for: contexts become links and images, ``client``/``client_url`` and ``details`` pass
through, and the Agent's own ``agent`` block is kept in the details, its ``queued_at`` as the time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pdrelay.delivery.events_api import build_event
from pdrelay.formats import ParseContext, events_v1
from pdrelay.models import Alert, make_message
from tests.conftest import load_event

CTX = ParseContext(received_at=datetime(2026, 11, 24, 10, 0, tzinfo=UTC))
AGENT = {"agent_id": "0f6c1a52", "queued_by": "pd-send", "queued_at": "2026-11-24T09:58:30Z"}


def parsed(doc: dict[str, Any]) -> Alert:
    (alert,) = events_v1.parse(doc, CTX)
    return alert


def sent(alert: Alert) -> dict[str, Any]:
    """The Events API v2 event the dispatcher builds for it."""
    message = make_message(alert, route=None, routing_key="R" * 32, received_at=CTX.received_at, request_id="")
    return build_event(message, alert.action)


def trigger(**fields: Any) -> dict[str, Any]:
    return {"service_key": "default", "event_type": "trigger", "description": "disk full", **fields}


def test_contexts_become_links_and_images_and_the_client_fields_pass_through() -> None:
    event = sent(parsed(load_event("formats/events_v1/trigger.json")))
    assert event["links"] == [{"href": "https://runbooks.example.com/web/http-down", "text": "Runbook"}]
    assert event["images"] == [{"src": "https://graphs.example.com/web-03/http.png", "alt": "HTTP response time"}]
    assert event["client"] == "Nagios"
    assert event["client_url"] == "https://nagios.example.internal/nagios/cgi-bin/status.cgi?host=web-03"
    assert event["payload"]["custom_details"]["SERVICESTATE"] == "CRITICAL"


def test_contexts_of_other_kinds_or_without_their_url_are_left_out() -> None:
    alert = parsed(
        trigger(
            contexts=[
                {"type": "link", "href": "https://a.example.com"},
                {"type": "image", "src": "https://a.example.com/x.png", "href": "https://a.example.com"},
                {"type": "link", "text": "no href"},
                {"type": "image", "alt": "no src"},
                {"type": "video", "href": "https://a.example.com/v"},
                "not an object",
            ]
        )
    )
    assert [link.href for link in alert.links] == ["https://a.example.com"]
    assert [(i.src, i.href) for i in alert.images] == [("https://a.example.com/x.png", "https://a.example.com")]


def test_the_agents_block_is_kept_in_the_details_and_its_queued_at_is_the_events_time() -> None:
    # Given what pd-send queues: its details, the client, and the agent block
    alert = parsed(trigger(details={"host": "db-02"}, client="Nagios", agent=AGENT))

    # Then PagerDuty gets the agent block in custom_details and the time the event was queued
    event = sent(alert)
    assert event["payload"]["custom_details"] == {"host": "db-02", "agent": AGENT}
    assert event["payload"]["timestamp"] == "2026-11-24T09:58:30.000Z"
    # while events keep being ordered by receipt, as v1 has no time of its own
    assert alert.occurred_at == CTX.received_at


def test_a_details_key_named_agent_wins_and_an_agent_block_without_a_usable_time_sets_none() -> None:
    alert = parsed(trigger(details={"agent": "nrpe"}, agent=AGENT))
    assert alert.custom_details == {"agent": "nrpe"}
    assert parsed(trigger(agent={"queued_at": "soon"})).timestamp is None
    assert parsed(trigger(agent="pd-send 1.2")).custom_details == {"agent": "pd-send 1.2"}
    assert parsed(trigger()).timestamp is None and parsed(trigger()).custom_details == {}


def test_an_acknowledge_from_the_agent_keeps_its_block_too() -> None:
    alert = parsed({"service_key": "default", "event_type": "acknowledge", "incident_key": "k", "agent": AGENT})
    assert alert.custom_details == {"agent": AGENT}
