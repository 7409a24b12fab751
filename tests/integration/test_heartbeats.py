"""Heartbeats through the real ingest and sweep functions, moto and the PagerDuty emulator, on a clock
the test moves: a route whose Watchdog alert stops coming pages once (however many sweeps see the
silence) and resolves when it comes back; other alerts are no contact; pings to
``POST /v1/heartbeat/{route}`` are, and queue nothing; a maintenance window holds the page; routes
without a heartbeat cost no write. The timing rules alone: tests/unit/policy/test_heartbeat_timing.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from pdrelay.delivery.dispatcher import config_reader
from pdrelay.local.apigw import api_gateway_event
from pdrelay.local.emulator import EmulatorServer
from pdrelay.ops.resources import Resources, run_sweep
from pdrelay.ops.status import queue_status
from pdrelay.settings import get_settings
from pdrelay.table import DedupStore
from pdrelay.timeutil import ManualClock
from tests.conftest import TOKEN
from tests.integration.conftest import Aws, Handler
from tests.integration.policy_harness import (
    OPS_KEY,
    alertmanager,
    configured_with,
    dispatch_all,
    incidents,
    shop_doc,
    window,
)

EVERY = 120
GRACE = 12  # a tenth of `every`: how much newer than recorded a contact may be


def watchdog_doc() -> dict[str, Any]:
    """Route 'ops' expects Alertmanager's always-firing Watchdog every 2 minutes, and pages no one for it."""
    doc = shop_doc()
    doc["routes"]["ops"] = {
        "routing_key": OPS_KEY,
        "rules": [{"name": "watchdog", "when": {"labels.alertname": "Watchdog"}, "page": False}],
        "heartbeat": {"every": "2m", "when": {"labels.alertname": "Watchdog"}},
    }
    return doc


configure = configured_with(watchdog_doc)


def watchdog() -> dict[str, Any]:
    doc = alertmanager(severity="none", fingerprint="watchdog", summary="An alert that should always be firing")
    doc["alerts"][0]["labels"]["alertname"] = "Watchdog"
    return doc


def post_at(ingest: Handler, path: str, body: Any, at: float, token: str = TOKEN) -> tuple[int, dict[str, Any]]:
    event = api_gateway_event(
        "POST",
        path,
        {"authorization": f"Bearer {token}", "content-type": "application/json"},
        json.dumps(body).encode() if body is not None else b"",
    )
    event["requestContext"]["timeEpoch"] = int(at * 1000)
    answer = ingest(event)
    return answer["statusCode"], json.loads(answer["body"])


def sweep(aws: Aws, clock: ManualClock) -> dict[str, Any]:
    """The sweep function's work, at the clock's time."""
    resources = Resources(aws.queue_url, aws.dlq_url, aws.table_name)
    settings = get_settings()
    return run_sweep(resources, settings.events_url, 300, config=config_reader(settings), clock=clock)


@pytest.fixture
def at() -> ManualClock:
    return ManualClock()


def test_a_silent_watchdog_pages_once_and_resolves_when_it_fires_again(
    aws: Aws, pagerduty: EmulatorServer, ingest: Handler, configure: Any, at: ManualClock
) -> None:
    # Deployed: the sweep first sees the heartbeat; silence counts from now, so nothing pages.
    assert sweep(aws, at)["heartbeats_triggered"] == 0
    at.advance(10)
    assert post_at(ingest, "/v1/alerts/alertmanager?route=ops", watchdog(), at.time())[0] == 202
    last = at.time()
    assert dispatch_all(aws) == []  # the Watchdog itself pages no one (its rule)

    # Other alerts to the route are not the Watchdog: no contact.
    at.advance(EVERY + GRACE - 1)
    status, _ = post_at(ingest, "/v1/alerts/alertmanager?route=ops", alertmanager(fingerprint="other"), at.time())
    assert status == 202
    dispatch_all(aws)
    assert sweep(aws, at)["heartbeats_triggered"] == 0  # just under every (+ grace) since the Watchdog
    at.advance(2)
    assert sweep(aws, at)["heartbeats_triggered"] == 1
    assert [o.result for o in dispatch_all(aws)] == ["delivered"]
    (page,) = [i for i in incidents(pagerduty, OPS_KEY) if i["dedup_key"] == "heartbeat:ops"]
    assert page["status"] == "triggered"
    assert "Heartbeat missed: route ops silent for 2m13s (expected every 2m)" in page["summary"]
    since = datetime.fromtimestamp(last, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert f"last contact from tests (alertmanager) at {since}" in page["summary"]

    # Later sweeps see the same silence: nothing more is queued or sent.
    for _ in range(3):
        at.advance(60)
        result = sweep(aws, at)
        assert (result["heartbeats_silent"], result["heartbeats_triggered"]) == (1, 0)
    assert aws.drain() == []
    store = DedupStore(aws.dynamodb, aws.table_name)
    (row,) = queue_status(aws.sqs, aws.queue_url, aws.dlq_url, store).heartbeats
    assert (row.route, row.state, row.last_contact, row.last_sent["caller"]) == ("ops", "silent", since, "tests")

    # The Watchdog is back: the next sweep resolves the incident; one incident in all.
    post_at(ingest, "/v1/alerts/alertmanager?route=ops", watchdog(), at.time())
    assert sweep(aws, at)["heartbeats_resolved"] == 1
    dispatch_all(aws)
    assert [(i["dedup_key"], i["status"]) for i in incidents(pagerduty, OPS_KEY) if "heartbeat" in i["dedup_key"]] == [
        ("heartbeat:ops", "resolved")
    ]
    assert sweep(aws, at)["heartbeats_resolved"] == 0 and aws.drain() == []
    (row,) = queue_status(aws.sqs, aws.queue_url, aws.dlq_url, store).heartbeats
    assert row.state == "ok"


def test_pings_are_contact_and_queue_nothing(
    aws: Aws, pagerduty: EmulatorServer, ingest: Handler, configure: Any, at: ManualClock
) -> None:
    sweep(aws, at)
    for _ in range(3):
        at.advance(EVERY)
        assert post_at(ingest, "/v1/heartbeat/ops", None, at.time()) == (
            202,
            {"status": "accepted", "route": "ops", "every": "2m"},
        )
        assert sweep(aws, at)["heartbeats_triggered"] == 0
    assert aws.drain() == []
    status, body = post_at(ingest, "/v1/heartbeat/shop", None, at.time())
    assert (status, body["message"]) == (400, "route 'shop' has no heartbeat")
    assert post_at(ingest, "/v1/heartbeat/ops", None, at.time(), token="not-the-token-at-all")[0] == 401
    at.advance(EVERY + GRACE + 1)
    assert sweep(aws, at)["heartbeats_triggered"] == 1


def test_a_maintenance_window_holds_the_heartbeat_page(
    aws: Aws, pagerduty: EmulatorServer, ingest: Handler, configure: Any, at: ManualClock
) -> None:
    configure({**watchdog_doc(), "maintenance": [window("ops-upgrade", routes=["ops"])]})
    sweep(aws, at)
    at.advance(EVERY + GRACE + 1)
    assert sweep(aws, at)["heartbeats_triggered"] == 1
    assert [o.result for o in dispatch_all(aws)] == ["held"]
    assert pagerduty.state.events == []


def test_contact_is_written_once_per_interval_and_routes_without_a_heartbeat_write_nothing(
    aws: Aws, ingest: Handler, configure: Any, at: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes: list[str] = []
    original = DedupStore.touch_heartbeat

    def counted(self: DedupStore, route: str, when: float, sent: dict[str, str]) -> bool:
        writes.append(route)
        return original(self, route, when, sent)

    monkeypatch.setattr(DedupStore, "touch_heartbeat", counted)
    for _ in range(5):
        post_at(ingest, "/v1/alerts/alertmanager?route=shop", alertmanager(), at.time())
        post_at(ingest, "/v1/alerts/alertmanager?route=ops", watchdog(), at.time())
        at.advance(1)
    assert writes == ["ops"]
    at.advance(GRACE)
    post_at(ingest, "/v1/alerts/alertmanager?route=ops", watchdog(), at.time())
    assert writes == ["ops", "ops"]
    items = aws.dynamodb.scan(TableName=aws.table_name)["Items"]
    (item,) = [i for i in items if i["pk"]["S"].startswith("heartbeat#")]
    assert item["pk"]["S"] == "heartbeat#ops"
    assert float(item["last_contact"]["N"]) == pytest.approx(at.time(), abs=0.01)


def test_a_heartbeat_removed_while_silent_has_its_incident_resolved(
    aws: Aws, pagerduty: EmulatorServer, configure: Any, at: ManualClock
) -> None:
    """No page stays open for a monitor nobody expects any more: the next sweep resolves it where it went."""
    sweep(aws, at)
    at.advance(EVERY + GRACE + 1)
    assert sweep(aws, at)["heartbeats_triggered"] == 1
    dispatch_all(aws)
    assert [i["status"] for i in incidents(pagerduty, OPS_KEY) if i["dedup_key"] == "heartbeat:ops"] == ["triggered"]

    without = watchdog_doc()
    del without["routes"]["ops"]["heartbeat"]
    configure(without)
    at.advance(60)
    assert sweep(aws, at)["heartbeats_resolved"] == 1
    dispatch_all(aws)
    assert [i["status"] for i in incidents(pagerduty, OPS_KEY) if i["dedup_key"] == "heartbeat:ops"] == ["resolved"]
    at.advance(60)
    assert sweep(aws, at)["heartbeats_resolved"] == 0 and aws.drain() == []  # once
