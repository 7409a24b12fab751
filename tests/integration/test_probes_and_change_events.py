"""Test probes and change events through the real handlers against moto and the PagerDuty emulator:
a probe reaches every destination of its route, is never held by maintenance and reports each
answer with advice; a change event goes to each destination, scrubbed; bad input to either is a
400 with reasons and queues nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pdrelay.delivery.dispatcher import get_dispatcher
from pdrelay.local.apigw import api_gateway_event
from pdrelay.local.emulator import EmulatorServer
from pdrelay.models import ChangeMessage, parse_message
from tests.conftest import TOKEN
from tests.integration.conftest import Aws, Handler
from tests.integration.policy_harness import (
    PLATFORM_KEY,
    TEAM_KEY,
    configured_with,
    dispatch_all,
    dispatch_released,
    post,
    shop_doc,
    window,
)

configure = configured_with(shop_doc)


# -- test probes -----------------------------------------------------------------------------------


def test_a_test_probe_reaches_every_destination_and_reports_each_answer(
    aws: Aws, pagerduty: EmulatorServer, ingest: Handler, configure: Any
) -> None:
    status, started = post(ingest, "/v1/test/shop", {})
    assert status == 202 and sorted(d["destination"] for d in started["destinations"]) == ["platform", "team"]
    assert all(d["routing_key"].startswith("…") for d in started["destinations"])
    pagerduty.state.set_faults([{"mode": "status", "status": 400, "count": 1}])
    outcomes = dispatch_all(aws)
    assert sorted(o.result for o in outcomes) == ["delivered", "rejected"]
    assert aws.drain(aws.dlq_url) == []  # a refused test is reported, not dead-lettered
    answer = ingest(api_gateway_event("GET", f"/v1/test/{started['probe']}", {"authorization": f"Bearer {TOKEN}"}, b""))
    report = json.loads(answer["body"])
    by_destination = {row["destination"]: row["trigger"] for row in report["destinations"]}
    assert sorted(a["ok"] for a in by_destination.values()) == [False, True]
    refused = next(a for a in by_destination.values() if not a["ok"])
    assert refused["status"] == 400 and "refused the event as invalid" in refused["advice"]
    assert all(e["payload"]["summary"].startswith("[TEST] ") for e in pagerduty.state.events)
    # each destination's dedup key, as the answer gave it, is the one PagerDuty got
    assert {e["dedup_key"] for e in pagerduty.state.events} == {d["dedup_key"] for d in started["destinations"]}

    status, _ = post(ingest, "/v1/test/shop", {"action": "resolve", "probe": started["probe"]})
    assert status == 202
    dispatch_all(aws)
    report = json.loads(
        ingest(api_gateway_event("GET", f"/v1/test/{started['probe']}", {"authorization": f"Bearer {TOKEN}"}, b""))[
            "body"
        ]
    )
    assert all(row["resolve"] and row["resolve"]["status"] == 202 for row in report["destinations"])


def test_a_test_probe_is_not_held_by_maintenance(
    aws: Aws, pagerduty: EmulatorServer, ingest: Handler, configure: Any
) -> None:
    doc = shop_doc()
    doc["maintenance"] = [window("everything")]
    configure(doc)
    post(ingest, "/v1/test/ops", {})
    assert [o.result for o in dispatch_all(aws)] == ["delivered"]


def test_a_bad_test_request_is_a_400_with_reasons(aws: Aws, ingest: Handler, configure: Any) -> None:
    status, body = post(ingest, "/v1/test/shop", {"action": "explode"})
    assert status == 400 and "action: 'trigger' or 'resolve'" in body["errors"]
    status, body = post(ingest, "/v1/test/nowhere", {})
    assert status == 400 and body["message"] == "unknown route 'nowhere'"


@pytest.mark.parametrize(
    "body",
    [
        [],
        "trigger",
        {"action": ["trigger"]},
        {"severity": {"x": 1}},
        {"action": "resolve"},
        {"action": "resolve", "probe": "../../etc"},
        {"action": "resolve", "probe": "a" * 33},
    ],
)
def test_a_test_probe_with_bad_input_is_a_400_and_queues_nothing(
    aws: Aws, configure: Any, ingest: Handler, body: Any
) -> None:
    status, answer = post(ingest, "/v1/test/shop", body)
    assert status == 400 and answer["message"] == "invalid test request"
    assert aws.drain() == []


# -- change events ---------------------------------------------------------------------------------


def test_a_change_event_to_a_route_goes_to_each_destination(
    aws: Aws, pagerduty: EmulatorServer, ingest: Handler, configure: Any
) -> None:
    event = {
        "routing_key": "shop",
        "payload": {
            "summary": "Deployed shop v2.4.1",
            "source": "ci",
            "custom_details": {"commit": "abc123", "deploy_token": "s3cr3t-value"},
        },
        "links": [{"href": "https://ci.example.com/build/42", "text": "Build 42"}],
    }
    status, body = post(ingest, "/v2/change/enqueue", event)
    assert (status, body) == (202, {"status": "success", "message": "Change event processed"})
    queued = [parse_message(m["Body"]) for m in aws.drain()]
    assert all(isinstance(m, ChangeMessage) for m in queued) and len(queued) == 2
    for message in queued:
        get_dispatcher().process(message.to_json())
    received = json.loads(json.dumps(pagerduty.state.change_events))
    assert sorted(e["routing_key"] for e in received) == sorted(["…" + TEAM_KEY[-4:], "…" + PLATFORM_KEY[-4:]])
    assert all(e["payload"]["custom_details"]["deploy_token"] == "[redacted by pdrelay]" for e in received)
    assert pagerduty.state.incidents == []

    status, body = post(ingest, "/v2/change/enqueue", {"routing_key": "shop", "payload": {}})
    assert status == 400 and body["status"] == "invalid event"
    status, body = post(ingest, "/v2/change/enqueue", {**event, "event_action": "trigger"})
    assert status == 400 and "event_action" in body["errors"][0]


@pytest.mark.parametrize(
    "change",
    [
        {"links": {"href": "https://ci.example.com"}},
        {"links": "https://ci.example.com"},
        {"links": [42]},
        {"payload": {"summary": "deployed", "timestamp": "yesterday-ish"}},
        {"payload": {"summary": "deployed", "custom_details": ["not", "a", "mapping"]}},
        {"payload": {"summary": ""}},
    ],
)
def test_a_change_event_with_an_odd_payload_is_a_400_and_queues_nothing(
    aws: Aws, configure: Any, ingest: Handler, change: dict[str, Any]
) -> None:
    status, answer = post(
        ingest, "/v2/change/enqueue", {"routing_key": "ops", "payload": {"summary": "deployed"}, **change}
    )
    assert status == 400 and answer["status"] == "invalid event"
    assert aws.drain() == []


def test_a_change_event_with_large_details_and_a_local_timestamp_is_delivered(
    aws: Aws, pagerduty: EmulatorServer, configure: Any, ingest: Handler
) -> None:
    details = {f"k{i}": "x" * 1000 for i in range(150)}
    status, _ = post(
        ingest,
        "/v2/change/enqueue",
        {
            "routing_key": "ops",
            "payload": {"summary": "deployed", "timestamp": "2026-11-24T10:00:00", "custom_details": details},
        },
    )
    assert status == 202
    assert [o.result for o in dispatch_released(aws.drain())] == ["delivered"]
    (sent,) = pagerduty.state.change_events
    assert sent["payload"]["timestamp"].startswith("2026-11-24T10:00:00")
