"""Delivery control against DynamoDB/SQS (moto) and the emulator's faults over real HTTP."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from pdrelay.config import parse_config
from pdrelay.delivery.dispatcher import Dispatcher
from pdrelay.delivery.events_api import EventsClient
from pdrelay.errors import RetryableDelivery
from pdrelay.formats import ParseContext, alertmanager
from pdrelay.local.emulator import EmulatorServer
from pdrelay.models import QueueMessage, make_message
from pdrelay.ops.status import queue_status
from pdrelay.settings import Settings
from pdrelay.table import DedupStore, item_key
from pdrelay.timeutil import SYSTEM_CLOCK, Clock, ManualClock, to_micros
from tests.conftest import ROUTING_KEY, load_event, unique
from tests.integration.conftest import Aws

OTHER_KEY = "0THERR0UT1NGKEY00000000000000002"


def dispatcher(aws: Aws, pd: EmulatorServer, clock: Clock = SYSTEM_CLOCK, **env: str) -> Dispatcher:
    settings = Settings.from_env(
        {
            "PDRELAY_QUEUE_URL": aws.queue_url,
            "PDRELAY_DLQ_URL": aws.dlq_url,
            "PDRELAY_TABLE_NAME": aws.table_name,
            "PDRELAY_READ_TIMEOUT": "1",
            "PDRELAY_RETRY_BASE_SECONDS": "0",
            "PDRELAY_DISPATCH_CONCURRENCY": "1",  # this one dispatcher is the fleet
            **env,
        }
    )
    return Dispatcher(
        settings,
        DedupStore(aws.dynamodb, aws.table_name, clock=clock),
        EventsClient(pd.url, read_timeout=1.0, clock=clock),
        aws.sqs,
        clock=clock,
    )


def firing(
    routing_key: str = ROUTING_KEY,
    received_at: datetime | None = None,
    name: str = "formats/alertmanager/firing.json",
    fingerprint: str | None = None,
) -> QueueMessage:
    doc = load_event(name)
    doc["alerts"][0]["fingerprint"] = fingerprint or unique()
    received = received_at or datetime.now(UTC)
    (alert,) = alertmanager.parse(doc, ParseContext(received_at=received)).alerts
    return make_message(alert, route="default", routing_key=routing_key, received_at=received, request_id="r")


def test_a_429_pauses_that_key_defers_without_spending_an_attempt_and_other_keys_flow(
    aws: Aws, pagerduty: EmulatorServer
) -> None:
    d = dispatcher(aws, pagerduty, PDRELAY_THROTTLE_PAUSE_SECONDS="40")
    pagerduty.state.set_faults([{"mode": "status", "status": 429, "count": 1}])
    outcome = d.process(firing().to_json(), receive_count=3)
    assert (outcome.result, outcome.reason) == ("deferred", "throttled")
    assert 40 <= outcome.delay <= 41
    assert aws.delayed() == 1
    assert d.process(firing().to_json()).reason == "throttled"  # the key stays paused, no call made
    assert pagerduty.state.answers[429] == 1
    assert d.process(firing(OTHER_KEY).to_json()).result == "delivered"


def test_retry_after_is_honoured(aws: Aws, pagerduty: EmulatorServer) -> None:
    d = dispatcher(aws, pagerduty)
    pagerduty.state.set_faults([{"mode": "status", "status": 429, "count": 1, "retry_after": 7}])
    outcome = d.process(firing().to_json())
    assert outcome.reason == "throttled" and 7 <= outcome.delay <= 8


def test_three_429s_without_retry_after_cost_seconds_not_minutes(aws: Aws, pagerduty: EmulatorServer) -> None:
    """Paused briefly, doubling only while 429s continue: 2 + 4 + 8 s (a fixed 60 s pause took 3 minutes)."""
    clock = ManualClock()
    d = dispatcher(aws, pagerduty, clock)  # the default pauses
    pagerduty.state.set_faults([{"mode": "status", "status": 429, "count": 3}])
    message, waited = firing(), 0
    for pause in (2, 4, 8):
        outcome = d.process(message.to_json())
        assert (outcome.result, outcome.reason) == ("deferred", "throttled")
        assert pause <= outcome.delay <= pause + 1  # the queue's delay: the pause, rounded up
        assert d.process(firing().to_json()).reason == "throttled"  # the key waits, no call made
        clock.advance(outcome.delay)  # the message comes back when its delay is over
        waited += outcome.delay
    assert d.process(message.to_json()).result == "delivered"
    assert waited <= 17 and pagerduty.state.answers[429] == 3


def test_a_single_transient_failure_is_retried_within_a_few_seconds() -> None:
    """The first retry of a 5xx, timeout or dropped connection comes after the retry base (2 s ± 20 %)."""
    settings = Settings.from_env({})
    d = Dispatcher(settings, None, None, None)  # type: ignore[arg-type]  # back-off needs no clients
    assert {d.backoff_seconds(1) for _ in range(200)} <= {1, 2}
    assert max(d.backoff_seconds(2) for _ in range(200)) <= 4


def test_the_key_is_paced_under_its_limit(aws: Aws, pagerduty: EmulatorServer) -> None:
    d = dispatcher(aws, pagerduty, PDRELAY_RATE_LIMIT="6", PDRELAY_RATE_WINDOW_SECONDS="60")
    assert d.process(firing().to_json()).result == "delivered"
    outcome = d.process(firing().to_json())
    assert (outcome.result, outcome.reason) == ("deferred", "paced")
    assert 11 <= outcome.delay <= 12  # the next slot, 12 s on at 6 per minute (60 s / (6 - 1): a slot kept spare)
    assert len(pagerduty.state.events) == 1


def test_an_outage_opens_the_breaker_so_alerts_wait_in_the_queue_not_in_the_dlq(
    aws: Aws, pagerduty: EmulatorServer
) -> None:
    clock = ManualClock()
    d = dispatcher(aws, pagerduty, clock, PDRELAY_BREAKER_THRESHOLD="3", PDRELAY_BREAKER_COOLDOWN_SECONDS="30")
    pagerduty.state.set_faults([{"mode": "outage", "status": 503}])
    for _ in range(2):
        with pytest.raises(RetryableDelivery):
            d.process(firing().to_json())
    opened = d.process(firing().to_json())  # the third failure opens the breaker: it waits for the probe
    assert (opened.result, opened.reason) == ("deferred", "circuit-open") and 30 <= opened.delay <= 31
    calls = pagerduty.state.answers[503]
    held = [d.process(firing().to_json()) for _ in range(5)]
    assert {(o.result, o.reason) for o in held} == {("deferred", "circuit-open")}
    assert pagerduty.state.answers[503] == calls  # nobody called PagerDuty while open
    assert aws.delayed() == 6 and aws.drain(aws.dlq_url) == []
    pagerduty.state.set_faults([])
    clock.advance(31)  # cooldown over: one probe goes, succeeds, and the breaker closes
    assert d.process(firing().to_json()).result == "delivered"
    assert d.process(firing().to_json()).result == "delivered"


def test_an_alert_held_past_the_limit_goes_to_the_dlq_with_the_reason(aws: Aws, pagerduty: EmulatorServer) -> None:
    clock = ManualClock()
    d = dispatcher(aws, pagerduty, clock, PDRELAY_MAX_HOLD_SECONDS="60")
    pagerduty.state.set_faults([{"mode": "outage", "status": 502}])
    old = firing(received_at=clock.now())
    clock.advance(59)
    with pytest.raises(RetryableDelivery):  # within the limit: retried
        d.process(old.to_json())
    clock.advance(2)
    outcome = d.process(old.to_json(), receive_count=2)
    assert outcome.result == "dead-lettered"
    (dead,) = aws.drain(aws.dlq_url)
    assert "not delivered within 60 s" in dead["MessageAttributes"]["failure_reason"]["StringValue"]


def test_an_answer_lost_to_a_timeout_is_retried_and_pagerduty_keeps_one_incident(
    aws: Aws, pagerduty: EmulatorServer
) -> None:
    d = dispatcher(aws, pagerduty)
    pagerduty.state.set_faults([{"mode": "slow", "delay": 1.5, "count": 1}])
    message = firing()
    with pytest.raises(RetryableDelivery, match="timed out"):
        d.process(message.to_json())
    assert d.process(message.to_json(), receive_count=2).result == "delivered"
    (incident,) = [i for i in pagerduty.state.snapshot() if i["dedup_key"] == message.dedup_key]
    assert len(incident["log"]) == 2  # PagerDuty saw the trigger twice, on one incident


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_reordered_deliveries_never_let_an_older_event_win(
    aws: Aws, pagerduty: EmulatorServer, order: tuple[int, ...]
) -> None:
    """Trigger (t0), resolve (t1), trigger again (t2): whatever order SQS delivers them in, the alert
    ends open (its newest event is a trigger) on exactly one open incident."""
    fp = unique()
    first = firing(fingerprint=fp)
    resolved = firing(name="formats/alertmanager/resolved.json", fingerprint=fp)
    doc = load_event("formats/alertmanager/firing.json")
    doc["alerts"][0].update(fingerprint=fp, startsAt="2026-11-24T10:00:00Z")
    (again_alert,) = alertmanager.parse(doc, ParseContext(received_at=datetime.now(UTC))).alerts
    again = make_message(
        again_alert, route="default", routing_key=ROUTING_KEY, received_at=datetime.now(UTC), request_id="r"
    )
    events = [first, resolved, again]
    d = dispatcher(aws, pagerduty)
    for index in order:
        d.process(events[index].to_json())
    incidents = [i for i in pagerduty.state.snapshot() if i["dedup_key"] == first.dedup_key]
    assert [i["status"] for i in incidents if i["status"] != "resolved"] == ["triggered"]
    record = DedupStore(aws.dynamodb, aws.table_name).get(item_key(ROUTING_KEY, first.dedup_key))
    assert record is not None and record.state == "triggered" and record.delivered


def test_a_resolve_reordered_before_its_trigger_pages_no_one(aws: Aws, pagerduty: EmulatorServer) -> None:
    fp = unique()
    d = dispatcher(aws, pagerduty)
    resolve = firing(name="formats/alertmanager/resolved.json", fingerprint=fp)
    assert d.process(resolve.to_json()).reason == "forward"  # the table knows nothing: sent once
    assert d.process(firing(fingerprint=fp).to_json()).reason == "stale"
    assert [e["event_action"] for e in pagerduty.state.events] == ["resolve"]
    assert log_of(pagerduty, resolve.dedup_key) == []  # PagerDuty ignored it: no incident, no page


def _dlq_message(aws: Aws, message: QueueMessage, reason: str = "PagerDuty rejected the event") -> None:
    aws.sqs.send_message(
        QueueUrl=aws.dlq_url,
        MessageBody=message.to_json(),
        MessageAttributes={
            "route": {"DataType": "String", "StringValue": message.route or ""},
            "failure_reason": {"DataType": "String", "StringValue": reason},
            "http_status": {"DataType": "Number", "StringValue": "400"},
        },
    )


def test_redrive_moves_only_the_chosen_routes_messages_keeping_their_identity(aws: Aws) -> None:
    from pdrelay.ops import redrive

    mine = [firing() for _ in range(3)]
    theirs = firing(OTHER_KEY).model_copy(update={"route": "other"})
    for message in [*mine, theirs]:
        _dlq_message(aws, message)
    dry = redrive.redrive(aws.sqs, aws.dlq_url, aws.queue_url, where=redrive.Filter(route="default"), dry_run=True)
    assert (dry.matched, dry.moved) == (3, 0)
    result = redrive.redrive(aws.sqs, aws.dlq_url, aws.queue_url, where=redrive.Filter(route="default"), limit=2)
    assert (result.moved, result.skipped) == (2, 2)
    moved = aws.drain()
    assert {json.loads(m["Body"])["dedup_key"] for m in moved} <= {m.dedup_key for m in mine}
    assert all("failure_reason" not in m["MessageAttributes"] for m in moved)
    assert moved[0]["MessageAttributes"]["redriven"]["StringValue"] == "1"
    left = redrive.inspect(aws.sqs, aws.dlq_url)
    assert left.total == 2
    assert dict(left.by_route) == {("default", "…" + ROUTING_KEY[-4:]): 1, ("other", "…" + OTHER_KEY[-4:]): 1}
    assert ROUTING_KEY not in json.dumps(left.as_dict())


def test_the_sweeper_resends_a_resolve_that_was_never_confirmed(aws: Aws, pagerduty: EmulatorServer) -> None:
    from pdrelay.ops.sweeper import sweep

    fp = unique()
    d = dispatcher(aws, pagerduty)
    assert d.process(firing(fingerprint=fp).to_json()).result == "delivered"
    pagerduty.state.set_faults([{"mode": "status", "status": 500, "count": 1}])
    resolve = firing(name="formats/alertmanager/resolved.json", fingerprint=fp)
    with pytest.raises(RetryableDelivery):
        d.process(resolve.to_json())  # ... and suppose its message then ends in the DLQ
    store = DedupStore(aws.dynamodb, aws.table_name)
    assert [r.dedup_key for r in store.pending_resolves(0)] == [resolve.dedup_key]
    result = sweep(store, EventsClient(pagerduty.url), older_than_seconds=0)
    assert (result.found, result.resolved) == (1, 1)
    (incident,) = [i for i in pagerduty.state.snapshot() if i["dedup_key"] == resolve.dedup_key]
    assert incident["status"] == "resolved"
    assert store.pending_resolves(0) == []
    assert d.process(resolve.to_json(), receive_count=2).reason == "duplicate"


def test_queue_status_counts_per_route_with_masked_keys(aws: Aws, pagerduty: EmulatorServer) -> None:

    d = dispatcher(aws, pagerduty)
    d.process(firing().to_json())
    _dlq_message(aws, firing(), reason="PagerDuty rejected the event; 'payload.summary' is missing")
    aws.sqs.send_message(QueueUrl=aws.queue_url, MessageBody=firing().to_json())
    status = queue_status(aws.sqs, aws.queue_url, aws.dlq_url, DedupStore(aws.dynamodb, aws.table_name))
    doc: dict[str, Any] = status.as_dict()
    assert doc["queue"]["waiting"] == 1 and doc["dead_letter_queue"] == 1
    (row,) = doc["routes"]
    assert row == {
        "route": "default",
        "routing_key": "…" + ROUTING_KEY[-4:],
        "sending": 0,
        "delivered": 1,
        "open": 1,
        "held": 0,
        "rolled_up": 0,
        "suppressed": 0,
        "resolved_before_paged": 0,
        "dead_lettered": 1,
    }
    assert doc["dlq_reasons"] == [{"reason": "PagerDuty rejected the event", "count": 1}]


def test_the_sweeper_never_resolves_an_alert_that_reopened_after_its_query(aws: Aws, pagerduty: EmulatorServer) -> None:
    fp = unique()
    d = dispatcher(aws, pagerduty)
    d.process(firing(fingerprint=fp).to_json())
    pagerduty.state.set_faults([{"mode": "status", "status": 500, "count": 1}])
    with pytest.raises(RetryableDelivery):
        d.process(firing(name="formats/alertmanager/resolved.json", fingerprint=fp).to_json())
    store = DedupStore(aws.dynamodb, aws.table_name)
    (stale_view,) = store.pending_resolves(0)  # what the sweeper read from the index...
    doc = load_event("formats/alertmanager/firing.json")
    doc["alerts"][0].update(fingerprint=fp, startsAt="2026-11-24T11:00:00Z")
    (alert,) = alertmanager.parse(doc, ParseContext(received_at=datetime.now(UTC))).alerts
    reopen = make_message(
        alert, route="default", routing_key=ROUTING_KEY, received_at=datetime.now(UTC), request_id="r"
    )
    assert d.process(reopen.to_json()).result == "delivered"  # ...before the alert fired again
    assert store.claim_resolve(stale_view, to_micros(datetime.now(UTC)), 30_000_000) is None


def test_an_unexpected_error_is_retried_a_few_times_then_put_aside_with_its_reason(
    aws: Aws, pagerduty: EmulatorServer
) -> None:
    d = dispatcher(aws, pagerduty)

    def broken(event: dict[str, Any], path: str = "") -> Any:
        raise KeyError("something nobody planned for")

    d.events.send = broken  # type: ignore[method-assign]
    message = firing().to_json()
    with pytest.raises(KeyError):
        d.process(message, receive_count=1)
    assert d.process(message, receive_count=5).result == "dead-lettered"
    (dead,) = aws.drain(aws.dlq_url)
    assert "unexpected error after 5 attempts: KeyError" in dead["MessageAttributes"]["failure_reason"]["StringValue"]


# -- a resolve that overtakes its waiting trigger ------------------------------------------------------
def log_of(pd: EmulatorServer, dedup_key: str) -> list[tuple[str, str]]:
    """Each incident PagerDuty has for ``dedup_key``: (status, the actions it heard, in order)."""
    return [
        (i["status"], ",".join(e["action"] for e in i["log"]))
        for i in pd.state.snapshot()
        if i["dedup_key"] == dedup_key
    ]


def test_a_paced_trigger_overtaken_by_its_resolve_still_pages_then_resolves(
    aws: Aws, pagerduty: EmulatorServer
) -> None:
    """An alert that fired and recovered while its trigger waited for the key's pacing: PagerDuty
    hears the trigger, then the resolve (before, the resolve was recorded and the trigger then
    skipped as stale: no PagerDuty event at all)."""
    clock = ManualClock()
    d = dispatcher(aws, pagerduty, clock, PDRELAY_RATE_LIMIT="6", PDRELAY_RATE_WINDOW_SECONDS="60")
    assert d.process(firing().to_json()).result == "delivered"  # takes the key's only burst token
    fp = unique()
    trigger = firing(fingerprint=fp)
    resolve = firing(name="formats/alertmanager/resolved.json", fingerprint=fp)
    paced = d.process(trigger.to_json())
    assert (paced.result, paced.reason) == ("deferred", "paced")
    ((_, slot),) = aws.put_back()  # the trigger's copy, with the send time the key's schedule gave it
    waiting = d.process(resolve.to_json())
    assert (waiting.result, waiting.reason) == ("deferred", "after-trigger")
    assert waiting.delay >= paced.delay  # it comes back when its trigger is due, not every few seconds
    aws.put_back()
    clock.advance(paced.delay)
    assert d.process(trigger.to_json(), message_attributes=slot).result == "delivered"
    behind = d.process(resolve.to_json())  # the key's next slot (6 per minute: 12 s), ahead of any trigger
    assert (behind.result, behind.reason, behind.delay) == ("deferred", "paced", 12)
    ((_, slot),) = aws.put_back()
    clock.advance(behind.delay)
    assert d.process(resolve.to_json(), message_attributes=slot).result == "delivered"
    assert log_of(pagerduty, trigger.dedup_key) == [("resolved", "trigger,resolve")]


def test_a_trigger_in_back_off_overtaken_by_its_resolve_still_pages_then_resolves(
    aws: Aws, pagerduty: EmulatorServer
) -> None:
    d = dispatcher(aws, pagerduty)
    fp = unique()
    trigger = firing(fingerprint=fp)
    resolve = firing(name="formats/alertmanager/resolved.json", fingerprint=fp)
    pagerduty.state.set_faults([{"mode": "status", "status": 500, "count": 1}])
    with pytest.raises(RetryableDelivery):
        d.process(trigger.to_json())
    assert d.process(resolve.to_json()).reason == "after-trigger"
    assert d.process(trigger.to_json(), receive_count=2).result == "delivered"
    assert d.process(resolve.to_json()).result == "delivered"
    assert log_of(pagerduty, trigger.dedup_key) == [("resolved", "trigger,resolve")]


def test_nothing_waits_for_a_trigger_pagerduty_refused(aws: Aws, pagerduty: EmulatorServer) -> None:
    d = dispatcher(aws, pagerduty)
    fp = unique()
    trigger = firing(fingerprint=fp)
    resolve = firing(name="formats/alertmanager/resolved.json", fingerprint=fp)
    pagerduty.state.set_faults([{"mode": "status", "status": 400, "count": 1}])
    assert d.process(trigger.to_json()).result == "dead-lettered"
    outcome = d.process(resolve.to_json())
    assert (outcome.result, outcome.reason) == ("skipped", "never paged: resolve recorded only")
    assert log_of(pagerduty, trigger.dedup_key) == []
    (dead,) = aws.drain(aws.dlq_url)
    assert json.loads(dead["Body"])["dedup_key"] == trigger.dedup_key


def test_an_incident_whose_table_item_was_lost_still_resolves(aws: Aws, pagerduty: EmulatorServer) -> None:
    """State lost (table restored, stack rebuilt, item deleted) while PagerDuty has the incident open:
    the resolve is forwarded once and closes it; repeats of it cost no call."""
    d = dispatcher(aws, pagerduty)
    fp = unique()
    trigger = firing(fingerprint=fp)
    resolve = firing(name="formats/alertmanager/resolved.json", fingerprint=fp)
    assert d.process(trigger.to_json()).result == "delivered"
    aws.dynamodb.delete_item(TableName=aws.table_name, Key={"pk": {"S": item_key(ROUTING_KEY, trigger.dedup_key)}})
    outcome = d.process(resolve.to_json())
    assert (outcome.result, outcome.reason) == ("delivered", "forward")
    assert log_of(pagerduty, trigger.dedup_key) == [("resolved", "trigger,resolve")]
    assert d.process(resolve.to_json()).reason == "duplicate"
    assert len(pagerduty.state.events) == 2


@pytest.mark.parametrize("mode", ["page", "record", "drop"])
def test_resolved_before_paged_pages_records_or_drops_as_the_route_says(
    aws: Aws, pagerduty: EmulatorServer, mode: str
) -> None:
    """A trigger held back by the breaker whose resolve comes first: 'page' sends the trigger then
    the resolve; 'record' one change event and no incident; 'drop' nothing. Counted either way."""
    config = parse_config(
        json.dumps(
            {
                "default_route": "default",
                "callers": [{"name": "t", "token": "resolved-before-paged-token-01"}],
                "routes": {"default": {"routing_key": ROUTING_KEY, "resolved_before_paged": mode}},
            }
        )
    )
    clock = ManualClock()
    d = dispatcher(aws, pagerduty, clock, PDRELAY_BREAKER_THRESHOLD="1", PDRELAY_BREAKER_COOLDOWN_SECONDS="5")
    d.config = lambda: config
    pagerduty.state.set_faults([{"mode": "status", "status": 503, "count": 1}])
    fp = unique()
    trigger = firing(fingerprint=fp)
    assert d.process(trigger.to_json()).reason == "circuit-open"  # it failed, and the breaker opened
    resolve = firing(name="formats/alertmanager/resolved.json", fingerprint=fp)
    first = d.process(resolve.to_json())
    clock.advance(6)
    later = d.process(trigger.to_json(), receive_count=2)
    if mode == "page":
        assert (first.result, first.reason) == ("deferred", "after-trigger")
        assert later.result == "delivered"
        assert d.process(resolve.to_json()).result == "delivered"
        assert log_of(pagerduty, trigger.dedup_key) == [("resolved", "trigger,resolve")]
        record = d.store.get(item_key(ROUTING_KEY, trigger.dedup_key))
        assert record is not None and record.before_paged == "page"
        (row,) = queue_status(aws.sqs, aws.queue_url, aws.dlq_url, d.store).routes
        assert row.resolved_before_paged == 1
        return
    assert (first.result, first.reason) == ("skipped", f"unpaged: {mode}")
    assert (later.result, later.reason) == ("skipped", "stale")  # its trigger pages no one now
    assert log_of(pagerduty, trigger.dedup_key) == []
    (row,) = queue_status(aws.sqs, aws.queue_url, aws.dlq_url, d.store).routes
    assert row.resolved_before_paged == 1
    queued = [json.loads(body) for body, _ in aws.put_back()]
    changes = [m for m in queued if m.get("kind") == "change"]
    if mode == "drop":
        assert changes == []
        return
    (change,) = changes
    assert d.process(json.dumps(change)).result == "delivered"
    (event,) = pagerduty.state.change_events
    assert event["payload"]["summary"].startswith("Resolved before paging: ")
    assert event["payload"]["custom_details"]["dedup_key"] == trigger.dedup_key
