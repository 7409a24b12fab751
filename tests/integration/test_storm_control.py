"""Storm control through the real dispatcher against moto and the PagerDuty emulator: updates within
``min_resend_seconds`` are suppressed (and a suppressed one delivered again is a duplicate), and
new alerts above ``max_new_per_minute`` roll up into one incident that resolves with its last
member, through 503s, concurrent joins, acknowledges, storm control turned off and reopens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pdrelay.delivery.dispatcher import get_dispatcher
from pdrelay.errors import RetryableDelivery
from pdrelay.local.emulator import EmulatorServer
from pdrelay.models import QueueMessage
from pdrelay.ops.status import queue_status
from pdrelay.table import DedupStore, item_key, storm_key
from tests.conftest import unique
from tests.integration.conftest import Aws, Handler
from tests.integration.policy_harness import (
    OPS_KEY,
    T0,
    alertmanager,
    by_key,
    configured_with,
    dispatch_all,
    incidents,
    message,
    ops_doc,
    post,
    run,
    shop_doc,
)

configure = configured_with(ops_doc)


def fail_next(pd: EmulatorServer, status: int = 503, count: int = 1) -> None:
    pd.state.set_faults([{"mode": "status", "status": status, "count": count}])


def run_retrying(m: QueueMessage) -> Any:
    """Process ``m`` as SQS would: redelivered after each retryable failure."""
    for receive in range(1, 6):
        try:
            return run(m, receive)
        except RetryableDelivery:
            continue
    raise AssertionError("still failing after 5 receives")


def rollups(pd: EmulatorServer, routing_key: str = OPS_KEY) -> dict[str, str]:
    return {k: s for k, s in by_key(pd, routing_key).items() if k.startswith("pdrelay-rollup:")}


def storm(configure: Any, cap: int = 1, update: int = 0) -> None:
    configure(ops_doc(ops_storm={"max_new_per_minute": cap, "rollup_update_seconds": update}))


# -- min_resend_seconds: updates suppressed --------------------------------------------------------


def test_updates_within_min_resend_seconds_are_suppressed_and_counted(
    aws: Aws, pagerduty: EmulatorServer, ingest: Handler, configure: Any
) -> None:
    doc = shop_doc()
    doc["routes"]["ops"]["storm"] = {"min_resend_seconds": 300}
    configure(doc)
    fp = unique("fp")
    for summary in ("queue depth 100", "queue depth 200", "queue depth 300"):
        post(ingest, "/v1/alerts/alertmanager?route=ops", alertmanager(fingerprint=fp, summary=summary))
        dispatch_all(aws)
    assert [e["payload"]["summary"] for e in pagerduty.state.events] == ["queue depth 100"]
    store = DedupStore(aws.dynamodb, aws.table_name)
    (row,) = queue_status(aws.sqs, aws.queue_url, aws.dlq_url, store).routes
    assert (row.open, row.suppressed) == (1, 2)
    # The resolve is never held back.
    post(ingest, "/v1/alerts/alertmanager?route=ops", alertmanager("resolved", fingerprint=fp))
    dispatch_all(aws)
    assert incidents(pagerduty, OPS_KEY)[0]["status"] == "resolved"


def test_a_suppressed_update_delivered_again_is_a_duplicate_and_the_resolve_passes(
    aws: Aws, pagerduty: EmulatorServer, configure: Any
) -> None:
    configure(ops_doc(ops_storm={"min_resend_seconds": 600}))
    fp = unique("busy")
    run(message(fp, summary="depth 100"))
    update = message(fp, summary="depth 200")
    assert run(update).result == "suppressed"
    assert run(update).result == "skipped"
    assert run(message(fp, "resolve", at=T0 + timedelta(minutes=5))).result == "delivered"
    assert [e["event_action"] for e in pagerduty.state.events] == ["trigger", "resolve"]


# -- max_new_per_minute: roll-ups ------------------------------------------------------------------


def test_above_the_per_minute_cap_new_alerts_roll_up_into_one_incident_resolved_when_they_are(
    aws: Aws, pagerduty: EmulatorServer, ingest: Handler, configure: Any
) -> None:
    doc = shop_doc()
    doc["routes"]["ops"]["storm"] = {"max_new_per_minute": 2, "rollup_update_seconds": 0}
    configure(doc)
    fingerprints = [unique("fp") for _ in range(5)]
    for i, fp in enumerate(fingerprints):
        post(ingest, "/v1/alerts/alertmanager?route=ops", alertmanager(fingerprint=fp, summary=f"node {i} down"))
        dispatch_all(aws)
    opened = incidents(pagerduty, OPS_KEY)
    assert len(opened) == 3  # two alerts of their own, one roll-up
    rollup = next(i for i in opened if i["dedup_key"].startswith("pdrelay-rollup:ops:"))
    assert rollup["summary"] == "Alert storm on route ops: new alerts above the per-minute cap are rolled up here"
    last = [e for e in pagerduty.state.events if e["dedup_key"] == rollup["dedup_key"]][-1]
    assert sorted(last["payload"]["custom_details"]["alerts"].values()) == ["node 2 down", "node 3 down", "node 4 down"]
    store = DedupStore(aws.dynamodb, aws.table_name)
    (row,) = queue_status(aws.sqs, aws.queue_url, aws.dlq_url, store).routes
    assert (row.open, row.rolled_up) == (2, 3)

    for fp in fingerprints[2:4]:
        post(ingest, "/v1/alerts/alertmanager?route=ops", alertmanager("resolved", fingerprint=fp))
        dispatch_all(aws)
    assert (
        next(i for i in incidents(pagerduty, OPS_KEY) if i["dedup_key"] == rollup["dedup_key"])["status"] == "triggered"
    )
    post(ingest, "/v1/alerts/alertmanager?route=ops", alertmanager("resolved", fingerprint=fingerprints[4]))
    dispatch_all(aws)
    statuses = {i["dedup_key"]: i["status"] for i in incidents(pagerduty, OPS_KEY)}
    assert statuses[rollup["dedup_key"]] == "resolved"
    assert sorted(statuses.values()) == ["resolved", "triggered", "triggered"]
    # No event was ever sent for the rolled-up alerts' own dedup keys.
    own = {e["dedup_key"] for e in pagerduty.state.events} - {rollup["dedup_key"]}
    assert len(own) == 2


def test_the_rollup_resolves_when_its_last_members_resolve_meets_a_503_first(
    aws: Aws, pagerduty: EmulatorServer, configure: Any
) -> None:
    storm(configure)
    first, member = unique("own"), unique("rolled")
    assert run(message(first)).result == "delivered"
    assert run(message(member)).result == "rolled-up"
    (rollup_key,) = rollups(pagerduty)
    fail_next(pagerduty)
    run_retrying(message(member, "resolve", at=T0 + timedelta(minutes=5)))
    assert rollups(pagerduty) == {rollup_key: "resolved"}


def test_a_503_on_the_first_rollup_trigger_is_retried_and_opens_one_rollup_and_no_own_incident(
    aws: Aws, pagerduty: EmulatorServer, configure: Any
) -> None:
    storm(configure)
    first, member = unique("own"), unique("rolled")
    run(message(first))
    fail_next(pagerduty)
    assert run_retrying(message(member)).result == "rolled-up"
    # The same message delivered once more (SQS at-least-once) changes nothing.
    assert run(message(member)).result == "skipped"
    keys = by_key(pagerduty, OPS_KEY)
    assert len(rollups(pagerduty)) == 1 and member not in " ".join(keys)
    assert sorted(keys.values()) == ["triggered", "triggered"]
    run(message(member, "resolve", at=T0 + timedelta(minutes=5)))
    assert list(rollups(pagerduty).values()) == ["resolved"]
    assert not any(e["dedup_key"].endswith(member) for e in pagerduty.state.events)


def test_an_alert_joining_while_the_last_member_leaves_is_not_lost(
    aws: Aws, pagerduty: EmulatorServer, configure: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    storm(configure, update=60)
    first, leaving, joining = unique("own"), unique("leaving"), unique("joining")
    run(message(first))
    run(message(leaving))
    d = get_dispatcher()
    real_send = d.events.send
    joined: list[Any] = []

    def send(event: dict[str, Any], **kwargs: Any) -> Any:
        if event["dedup_key"].startswith("pdrelay-rollup:") and event["event_action"] == "resolve" and not joined:
            joined.append(d.process(message(joining).to_json()))  # another dispatcher, at the same moment
        return real_send(event, **kwargs)

    monkeypatch.setattr(d.events, "send", send)
    d.process(message(leaving, "resolve", at=T0 + timedelta(minutes=5)).to_json())
    assert joined[0].result == "rolled-up"
    # The joining alert is firing: some incident on PagerDuty must stand for it.
    store = DedupStore(aws.dynamodb, aws.table_name)
    record = store.get(item_key(OPS_KEY, message(joining).dedup_key))
    assert record is not None
    assert by_key(pagerduty, OPS_KEY).get(record.rollup) == "triggered"


def test_a_rolled_up_alert_acknowledged_and_updated_never_opens_its_own_incident(
    aws: Aws, pagerduty: EmulatorServer, configure: Any
) -> None:
    storm(configure)
    first, member = unique("own"), unique("rolled")
    run(message(first))
    run(message(member))
    assert run(message(member, "acknowledge", at=T0 + timedelta(minutes=1))).result == "skipped"
    assert run(message(member, summary="node down, now worse", at=T0 + timedelta(minutes=2))).result == "skipped"
    assert not any(e["dedup_key"].endswith(member) for e in pagerduty.state.events)
    run(message(member, "resolve", at=T0 + timedelta(minutes=5)))
    assert list(rollups(pagerduty).values()) == ["resolved"]


def test_storm_control_turned_off_between_trigger_and_resolve_still_resolves_the_rollup(
    aws: Aws, pagerduty: EmulatorServer, configure: Any
) -> None:
    storm(configure)
    first, member = unique("own"), unique("rolled")
    run(message(first))
    run(message(member))
    configure(ops_doc())  # storm control removed
    run(message(member, "resolve", at=T0 + timedelta(minutes=5)))
    assert list(rollups(pagerduty).values()) == ["resolved"]
    assert not any(e["dedup_key"].endswith(member) for e in pagerduty.state.events)


def test_a_reopen_after_a_rollup_opens_its_own_incident_once_the_minute_has_room(
    aws: Aws, pagerduty: EmulatorServer, configure: Any
) -> None:
    storm(configure, cap=3)
    member = unique("rolled")
    store = DedupStore(aws.dynamodb, aws.table_name)
    now = datetime.now(UTC).timestamp()
    store.put_doc(storm_key("ops", OPS_KEY), {"tokens": 0, "updated": now}, 0)  # no slot left
    assert run(message(member)).result == "rolled-up"
    run(message(member, "resolve", at=T0 + timedelta(minutes=5)))
    store.put_doc(storm_key("ops", OPS_KEY), {"tokens": 3, "updated": now}, 1)  # room again
    assert run(message(member, at=T0 + timedelta(minutes=10))).result == "delivered"
    assert by_key(pagerduty, OPS_KEY)[message(member).dedup_key] == "triggered"


def test_a_burst_within_rollup_update_seconds_is_listed_in_full_by_the_next_sweep(
    aws: Aws, pagerduty: EmulatorServer, configure: Any
) -> None:
    """The first join sends the roll-up; the others within rollup_update_seconds are not sent when
    they come, and a burst may have no later join to carry them: the sweep sends the full list once
    the update time has passed, and not again while nothing changes."""
    from pdrelay.delivery.dispatcher import config_reader
    from pdrelay.delivery.events_api import EventsClient
    from pdrelay.ops.sweeper import refresh_rollups
    from pdrelay.policy.judge import Policy
    from pdrelay.settings import get_settings

    storm(configure, cap=1, update=60)
    results = [run(message(unique("burst"))).result for _ in range(5)]
    assert results == ["delivered", "rolled-up", "rolled-up", "rolled-up", "rolled-up"]

    def rolled_up() -> list[int]:
        return [
            e["payload"]["custom_details"]["alerts_rolled_up"]
            for e in pagerduty.state.events
            if e["dedup_key"].startswith("pdrelay-rollup:")
        ]

    assert rolled_up() == [1]  # the list PagerDuty shows: the first member only
    store = DedupStore(aws.dynamodb, aws.table_name)
    events = EventsClient(pagerduty.url)
    now = [datetime.now(UTC).timestamp()]
    sweep_policy = Policy(store, config_reader(get_settings()), lambda: now[0])
    assert refresh_rollups(sweep_policy, events) == 0  # the update time has not passed
    now[0] += 61
    assert refresh_rollups(sweep_policy, events) == 1
    assert rolled_up() == [1, 4]
    now[0] += 61
    assert refresh_rollups(sweep_policy, events) == 0  # nothing changed since
