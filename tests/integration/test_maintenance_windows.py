"""Maintenance windows at dispatch and their release by the sweep, through the real handlers against
moto and the PagerDuty emulator: a window holds triggers and lets resolves pass; when it ends, what
still fires is sent once (a silence with ``send_held_at_end: false`` drops it); an alert
acknowledged while held still reaches PagerDuty; overlapping sweeps, late held triggers and v1
queue messages page once or not at all; ended windows are released behind many still held; and a
window holds up to, not at, its end. When a window is active and what it applies to, as pure
functions: tests/unit/policy/test_windows.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pdrelay.delivery.dispatcher import config_reader, get_dispatcher
from pdrelay.local.emulator import EmulatorServer
from pdrelay.ops.status import queue_status
from pdrelay.ops.sweeper import release_held
from pdrelay.policy import judge
from pdrelay.settings import get_settings
from pdrelay.table import DedupStore
from pdrelay.timeutil import ManualClock
from tests.conftest import unique
from tests.integration.conftest import Aws, Handler
from tests.integration.policy_harness import (
    OPS_KEY,
    T0,
    TEAM_KEY,
    alertmanager,
    by_key,
    configured_with,
    dispatch_all,
    dispatch_released,
    incidents,
    message,
    ops_doc,
    post,
    run,
    shop_doc,
    window,
)

configure = configured_with(shop_doc)


# -- held at dispatch, released by the sweep -------------------------------------------------------


def test_a_window_holds_triggers_lets_resolves_pass_and_sends_what_still_fires_when_it_ends(
    aws: Aws, pagerduty: EmulatorServer, ingest: Handler, configure: Any
) -> None:
    store = DedupStore(aws.dynamodb, aws.table_name)
    judge.save_windows(store, lambda ws: [*ws, window("db-patching", routes=["ops"])])
    get_dispatcher()._policy = None  # no cached windows
    still, gone = unique("fp"), unique("fp")
    post(ingest, "/v1/alerts/alertmanager?route=ops", alertmanager(fingerprint=still))
    post(ingest, "/v1/alerts/alertmanager?route=ops", alertmanager(fingerprint=gone))
    assert {o.result for o in dispatch_all(aws)} == {"held"}
    assert pagerduty.state.events == []
    status = queue_status(aws.sqs, aws.queue_url, aws.dlq_url, store)
    assert [(r.route, r.held, r.open) for r in status.routes] == [("ops", 2, 0)]

    # One recovers during the window: recorded, nothing sent (PagerDuty never heard of it).
    post(ingest, "/v1/alerts/alertmanager?route=ops", alertmanager("resolved", fingerprint=gone))
    (outcome,) = dispatch_all(aws)
    assert (outcome.result, outcome.reason) == ("skipped", "never paged: resolve recorded only")
    # A repeat of the other during the window is held again.
    post(ingest, "/v1/alerts/alertmanager?route=ops", alertmanager(fingerprint=still, summary="still broken"))
    assert [o.result for o in dispatch_all(aws)] == ["held"]

    # While the window runs the sweep keeps it; once it ends, what still fires goes out, once.
    sweep_policy = judge.Policy(store, lambda: None)
    assert release_held(store, sweep_policy, aws.sqs, aws.queue_url).as_dict() == {
        "held": 1,
        "released": 0,
        "dropped": 0,
        "still_held": 1,
    }
    judge.save_windows(store, lambda ws: [])
    sweep_policy = judge.Policy(store, lambda: None)
    assert release_held(store, sweep_policy, aws.sqs, aws.queue_url).released == 1
    get_dispatcher()._policy = None
    (released,) = aws.drain()
    # The hold limit counts from the release, not from when the monitor sent it hours ago.
    assert int(released["MessageAttributes"]["redriven_at"]["StringValue"]) >= datetime.now(UTC).timestamp() - 60
    outcome = get_dispatcher().process(released["Body"], message_attributes=released["MessageAttributes"])
    assert (outcome.result, outcome.reason) == ("delivered", "release")
    (incident,) = incidents(pagerduty, OPS_KEY)
    assert (incident["status"], incident["summary"]) == ("triggered", "still broken")
    assert release_held(store, sweep_policy, aws.sqs, aws.queue_url).held == 0
    post(ingest, "/v1/alerts/alertmanager?route=ops", alertmanager("resolved", fingerprint=still))
    dispatch_all(aws)
    assert incidents(pagerduty, OPS_KEY)[0]["status"] == "resolved"


def test_a_window_from_the_configuration_with_a_matcher_is_a_silence_and_drop_held_lets_go(
    aws: Aws, pagerduty: EmulatorServer, ingest: Handler, configure: Any
) -> None:
    doc = shop_doc()
    doc["maintenance"] = [window("silence-checkout", when={"labels.job": "checkout"}, send_held_at_end=False)]
    configure(doc)
    fp = unique("fp")
    post(ingest, "/v1/alerts/alertmanager?route=ops", alertmanager(fingerprint=fp))
    other = alertmanager()
    other["alerts"][0]["labels"]["job"] = "payments"
    post(ingest, "/v1/alerts/alertmanager?route=ops", other)
    assert sorted(o.result for o in dispatch_all(aws)) == ["delivered", "held"]
    doc["maintenance"] = [
        window(
            "silence-checkout",
            minutes_ago=120,
            minutes_ahead=-60,
            when={"labels.job": "checkout"},
            send_held_at_end=False,
        )
    ]
    configure(doc)
    from pdrelay.delivery.dispatcher import config_reader

    store = DedupStore(aws.dynamodb, aws.table_name)
    result = release_held(store, judge.Policy(store, config_reader(get_settings())), aws.sqs, aws.queue_url)
    assert (result.released, result.dropped) == (0, 1)
    assert aws.drain() == [] and len(incidents(pagerduty, OPS_KEY)) == 1


@pytest.mark.parametrize("how", ["pdrelay maintenance end", "taken out of the configuration"])
def test_a_drop_held_window_that_is_removed_still_drops_what_it_held(
    aws: Aws, pagerduty: EmulatorServer, ingest: Handler, configure: Any, how: str
) -> None:
    """Ending a `--drop-held` window early, or deleting it from the configuration, must not page
    the alerts it was holding: the setting in force when they were held decides."""
    store = DedupStore(aws.dynamodb, aws.table_name)
    drop_held = window("quiet-deploy", routes=["ops"], send_held_at_end=False)
    if how == "pdrelay maintenance end":
        judge.save_windows(store, lambda ws: [*ws, drop_held])
    else:
        configure({**shop_doc(), "maintenance": [drop_held]})
    get_dispatcher()._policy = None  # no cached windows
    post(ingest, "/v1/alerts/alertmanager?route=ops", alertmanager(fingerprint=unique("fp")))
    assert [o.result for o in dispatch_all(aws)] == ["held"]
    if how == "pdrelay maintenance end":
        judge.save_windows(store, lambda ws: [w for w in ws if w["name"] != "quiet-deploy"])
    else:
        configure(shop_doc())
    result = release_held(store, judge.Policy(store, config_reader(get_settings())), aws.sqs, aws.queue_url)
    assert (result.released, result.dropped) == (0, 1)
    assert aws.drain() == [] and pagerduty.state.events == []


def test_an_incident_open_before_a_window_still_resolves_when_an_update_was_held_in_it(
    aws: Aws, pagerduty: EmulatorServer, ingest: Handler, configure: Any
) -> None:
    fp = unique("fp")
    post(ingest, "/v1/alerts/alertmanager?route=ops", alertmanager(fingerprint=fp, summary="disk 91%"))
    assert [o.result for o in dispatch_all(aws)] == ["delivered"]
    doc = shop_doc()
    doc["maintenance"] = [window("late-window", routes=["ops"])]
    configure(doc)
    post(ingest, "/v1/alerts/alertmanager?route=ops", alertmanager(fingerprint=fp, summary="disk 95%"))
    assert [o.result for o in dispatch_all(aws)] == ["held"]
    post(ingest, "/v1/alerts/alertmanager?route=ops", alertmanager("resolved", fingerprint=fp))
    assert [o.result for o in dispatch_all(aws)] == ["delivered"]
    assert incidents(pagerduty, OPS_KEY)[0]["status"] == "resolved"


# -- held alerts meeting acknowledges, resolves, repeats and old messages --------------------------


def end_windows_and_release(aws: Aws, configure: Any, **doc: Any) -> list[dict[str, Any]]:
    """The window ends (the configuration no longer has it); one sweeper pass; what it put back."""
    configure(ops_doc(**doc))
    store = DedupStore(aws.dynamodb, aws.table_name)
    release_held(store, judge.Policy(store, config_reader(get_settings())), aws.sqs, aws.queue_url)
    return aws.drain()


def test_an_alert_acknowledged_while_held_still_reaches_pagerduty_when_the_window_ends(
    aws: Aws, pagerduty: EmulatorServer, configure: Any
) -> None:
    configure(ops_doc(maintenance=[window("patching", routes=["ops"])]))
    fp = unique("held")
    assert run(message(fp)).result == "held"
    assert run(message(fp, "acknowledge", at=T0 + timedelta(minutes=1))).result == "skipped"
    dispatch_released(end_windows_and_release(aws, configure))
    assert message(fp).dedup_key in by_key(pagerduty, OPS_KEY)
    store = DedupStore(aws.dynamodb, aws.table_name)
    assert [r for r in store.held() if r.dedup_key == message(fp).dedup_key] == []


def test_a_held_alert_released_twice_by_overlapping_sweeps_pages_once(
    aws: Aws, pagerduty: EmulatorServer, configure: Any
) -> None:
    configure(ops_doc(maintenance=[window("patching", routes=["ops"])]))
    fp = unique("held")
    assert run(message(fp)).result == "held"
    first = end_windows_and_release(aws, configure)
    second = end_windows_and_release(aws, configure)  # the next pass ran before the dispatcher
    assert len(first) == len(second) == 1
    outcomes = dispatch_released(first + second + first)
    assert [o.result for o in outcomes] == ["delivered", "skipped", "skipped"]
    assert [e["event_action"] for e in pagerduty.state.events] == ["trigger"]


def test_a_resolve_is_never_held_and_a_held_trigger_released_after_it_stays_stale(
    aws: Aws, pagerduty: EmulatorServer, configure: Any
) -> None:
    configure(ops_doc(maintenance=[window("patching", routes=["ops"])]))
    fp = unique("held")
    run(message(fp))
    store = DedupStore(aws.dynamodb, aws.table_name)
    (held,) = [r for r in store.held() if r.dedup_key == message(fp).dedup_key]
    assert run(message(fp, "resolve", at=T0 + timedelta(minutes=3))).result == "skipped"
    # The sweeper had already read the held message before the resolve landed; it comes back late.
    outcome = get_dispatcher().process(held.message)
    assert (outcome.result, outcome.reason) == ("skipped", "stale")
    assert pagerduty.state.events == []


def test_a_v1_queue_message_is_held_released_and_sent_once(aws: Aws, pagerduty: EmulatorServer, configure: Any) -> None:
    configure(ops_doc(maintenance=[window("patching", routes=["ops"])]))
    m = message(unique("v1"))
    v1 = json.dumps(
        {
            "v": 1,
            "alert": m.alert.model_dump(mode="json", by_alias=True),
            "route": "ops",
            "routing_key": OPS_KEY,
            "dedup_key": m.dedup_key,
            "received_at": m.received_at.isoformat(),
        }
    )
    assert get_dispatcher().process(v1).result == "held"
    released = end_windows_and_release(aws, configure)
    assert [o.result for o in dispatch_released(released * 2)] == ["delivered", "skipped"]
    assert by_key(pagerduty, OPS_KEY) == {m.dedup_key: "triggered"}


def test_alerts_whose_window_ended_are_released_even_behind_many_still_held(
    aws: Aws, pagerduty: EmulatorServer, configure: Any, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pdrelay import table as dedup

    long_window = window("freeze", minutes_ago=120, minutes_ahead=600, routes=["shop"])
    configure(ops_doc(maintenance=[long_window, window("patching", routes=["ops"])]))
    clock.advance(-3600)  # held an hour ago: first in the index, which is ordered by update time
    assert run(message(unique("frozen"), route="shop", routing_key=TEAM_KEY, destination="team")).result == "held"
    clock.advance(3600)
    assert run(message(unique("ended"))).result == "held"
    configure(ops_doc(maintenance=[long_window]))
    store = DedupStore(aws.dynamodb, aws.table_name, clock=clock)
    monkeypatch.setattr(dedup, "PENDING_PAGE", 1)  # one item per page stands for DynamoDB's 1 MB pages
    result = release_held(store, judge.Policy(store, config_reader(get_settings())), aws.sqs, aws.queue_url)
    assert (result.held, result.still_held, result.released) == (2, 1, 1)


# -- the end of a window ---------------------------------------------------------------------------


def test_a_window_holds_up_to_but_not_at_its_end() -> None:
    from pdrelay.policy.windows import Window

    end = T0 + timedelta(hours=1)
    w = Window.model_validate({"name": "w", "start": T0.isoformat(), "end": end.isoformat()})
    p = judge.Policy(store=None, config=lambda: None)  # type: ignore[arg-type]
    m = message("x")
    assert p.holding(m, T0, [w]) is w
    assert p.holding(m, end - timedelta(microseconds=1), [w]) is w
    assert p.holding(m, end, [w]) is None
