"""Events leave pdrelay in the shape PagerDuty documents, within its limits."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from pdrelay.delivery.events_api import MAX_EVENT_BYTES, TRIM_NOTE_KEY, build_event, payload_snapshot
from pdrelay.formats import ParseContext, alertmanager, events_v2, get
from pdrelay.ingest.parsing import parse_payload as _parse
from pdrelay.models import QueueMessage, deterministic_dedup_key, make_message, parse_message
from tests.conftest import ROUTING_KEY, load_event

RECEIVED = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)


def message_for(doc: dict, fmt=alertmanager, index: int = 0) -> QueueMessage:
    alert = get(fmt.NAME).run(doc, ParseContext(received_at=RECEIVED)).alerts[index]
    return make_message(alert, route="default", routing_key=ROUTING_KEY, received_at=RECEIVED, request_id="r1")


def test_links_and_images_sit_beside_the_payload_and_only_https_images_go() -> None:
    doc = load_event("formats/events_v2/trigger.json")
    doc["images"] = [{"src": "https://img.example.com/a.png", "alt": "graph"}]
    message = message_for(doc, events_v2)
    message.alert.images.append(message.alert.images[0].model_copy(update={"src": "http://plain.example.com/b.png"}))
    event = build_event(message, "trigger")
    assert "links" not in event["payload"] and "images" not in event["payload"]
    assert [i["src"] for i in event["images"]] == ["https://img.example.com/a.png"]
    assert event["links"][0]["href"] == "https://grafana.example.com/d/disk"
    assert "image(s) dropped" in event["payload"]["custom_details"][TRIM_NOTE_KEY]


def test_a_resolve_carries_the_full_payload() -> None:
    message = message_for(load_event("formats/alertmanager/resolved.json"))
    event = build_event(message, "resolve")
    assert event["event_action"] == "resolve"
    assert event["payload"]["summary"] == "Checkout 5xx rate above 5% for 10 minutes"
    assert event["payload"]["severity"] == "critical"
    assert event["payload"]["custom_details"]["labels"]["alertname"] == "HighErrorRate"


def test_a_bare_resolve_borrows_the_stored_trigger_payload() -> None:
    trigger = message_for(load_event("formats/events_v2/trigger.json"), events_v2)
    resolve = message_for(
        {"routing_key": "default", "event_action": "resolve", "dedup_key": "disk-full/db-1"}, events_v2
    )
    event = build_event(resolve, "resolve", payload_snapshot(trigger))
    assert event["payload"]["summary"] == "Disk 95% full on db-1"
    assert event["payload"]["source"] == "db-1"
    assert event["payload"]["severity"] == "warning"


def test_an_oversized_event_is_trimmed_in_custom_details_and_says_so() -> None:
    doc = load_event("formats/alertmanager/firing.json")
    doc["alerts"][0]["annotations"]["huge"] = "x" * (600 * 1024)
    doc["alerts"][0]["annotations"]["small"] = "kept"
    event = build_event(message_for(doc), "trigger")
    size = len(json.dumps(event, separators=(",", ":")).encode())
    assert size <= MAX_EVENT_BYTES
    details = event["payload"]["custom_details"]
    assert "annotations" in details[TRIM_NOTE_KEY]
    assert details["labels"]["alertname"] == "HighErrorRate"


def test_dedup_keys_are_deterministic_and_at_most_255_characters() -> None:
    assert deterministic_dedup_key("alertmanager", "abc") == "alertmanager:abc"
    long = deterministic_dedup_key("alertmanager", "x" * 400)
    assert len(long) <= 255
    assert long == deterministic_dedup_key("alertmanager", "x" * 400)
    assert deterministic_dedup_key("alertmanager", "line\nbreak").startswith("alertmanager:sha256:")


def test_queue_messages_round_trip_through_json() -> None:
    message = message_for(load_event("formats/alertmanager/firing.json"))
    again = parse_message(message.to_json())
    assert again == message
    assert again.v == 2


def test_version_1_messages_in_flight_across_an_upgrade_are_still_read() -> None:
    message = message_for(load_event("formats/alertmanager/firing.json"))
    old = message.model_dump(
        mode="json", by_alias=True, exclude_none=True, exclude={"destination", "rule", "probe", "kind"}
    )
    old["v"] = 1
    again = parse_message(json.dumps(old))
    assert isinstance(again, QueueMessage) and again.v == 2
    assert (again.alert, again.dedup_key, again.routing_key, again.destination) == (
        message.alert,
        message.dedup_key,
        message.routing_key,
        None,
    )


def test_queue_messages_are_ascii_so_sqs_takes_any_text() -> None:
    from pdrelay.models import make_message

    doc = load_event("formats/alertmanager/firing.json")
    doc["alerts"][0]["annotations"]["summary"] = "bad \uffff char \ufffe and é"
    (alert,) = _parse(get("alertmanager"), doc, ParseContext(received_at=RECEIVED)).alerts
    body = make_message(alert, route="r", routing_key="k" * 32, received_at=RECEIVED, request_id="x").to_json()
    assert body.isascii()
    assert "\uffff" in json.loads(body)["alert"]["summary"]
