"""Review of issue 6 (routing and alert policy): attempts to break windows, storm control, roll-ups,
probes, change events and the configuration commands, driven through the real dispatcher against
moto and the PagerDuty emulator.

Tests marked ``xfail(strict=True)`` are bugs found by the review: each states the promise it
breaks in its reason and fails today. The others are promises checked and found to hold.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pdrelay.delivery.dispatcher import config_reader, get_dispatcher
from pdrelay.errors import RetryableDelivery
from pdrelay.local.apigw import api_gateway_event
from pdrelay.local.emulator import EmulatorServer
from pdrelay.models import Alert, QueueMessage, make_message
from pdrelay.ops.sweeper import release_held
from pdrelay.policy import judge
from pdrelay.settings import get_settings
from pdrelay.table import DedupStore, item_key, storm_key
from pdrelay.timeutil import ManualClock
from tests.conftest import TOKEN, unique
from tests.integration.conftest import Aws, ConfigWriter, Handler

OPS_KEY = "0PSREV1EWKEY00000000000000000001"
TEAM_KEY = "TEAMREV1EWKEY0000000000000000002"
PLATFORM_KEY = "PLATREV1EWKEY0000000000000000003"
T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


# -- harness -------------------------------------------------------------------------------------------
def config_doc(
    ops_storm: dict[str, Any] | None = None,
    maintenance: list[dict[str, Any]] | None = None,
    shop_destinations: tuple[str, ...] = ("team", "platform"),
) -> dict[str, Any]:
    keys = {"team": TEAM_KEY, "platform": PLATFORM_KEY}
    return {
        "default_route": "ops",
        "callers": [{"name": "tests", "token": TOKEN}],
        "routes": {
            "ops": {"routing_key": OPS_KEY, "storm": ops_storm or {}},
            "shop": {"destinations": {d: {"routing_key": keys[d]} for d in shop_destinations}},
        },
        "maintenance": maintenance or [],
    }


@pytest.fixture
def configure(write_config: ConfigWriter) -> ConfigWriter:
    write_config(config_doc())
    return write_config


def window(name: str, minutes_ago: int = 5, minutes_ahead: int = 60, **extra: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "name": name,
        "start": (now - timedelta(minutes=minutes_ago)).isoformat(),
        "end": (now + timedelta(minutes=minutes_ahead)).isoformat(),
        **extra,
    }


def message(
    identity: str,
    action: str = "trigger",
    *,
    summary: str = "node down",
    at: datetime = T0,
    route: str = "ops",
    routing_key: str = OPS_KEY,
    destination: str | None = "default",
    details: dict[str, Any] | None = None,
) -> QueueMessage:
    alert = Alert.model_validate(
        {
            "format": "review",
            "identity": identity,
            "action": action,
            "occurred_at": at,
            "summary": summary,
            "source": "review-host",
            "severity": "critical",
            "custom_details": details or {},
        }
    )
    return make_message(
        alert,
        route=route,
        routing_key=routing_key,
        received_at=datetime.now(UTC),
        request_id=unique("req"),
        destination=destination,
    )


def run(m: QueueMessage, receive_count: int = 1) -> Any:
    return get_dispatcher().process(m.to_json(), receive_count=receive_count)


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


def by_key(pd: EmulatorServer, routing_key: str) -> dict[str, str]:
    return {i["dedup_key"]: i["status"] for i in pd.state.snapshot(routing_key)}


def rollups(pd: EmulatorServer, routing_key: str = OPS_KEY) -> dict[str, str]:
    return {k: s for k, s in by_key(pd, routing_key).items() if k.startswith("pdrelay-rollup:")}


def storm(configure: Any, cap: int = 1, update: int = 0) -> None:
    configure(config_doc(ops_storm={"max_new_per_minute": cap, "rollup_update_seconds": update}))


def post(ingest: Handler, path: str, body: Any) -> tuple[int, dict[str, Any]]:
    answer = ingest(
        api_gateway_event(
            "POST",
            path,
            {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"},
            json.dumps(body).encode(),
        )
    )
    return answer["statusCode"], json.loads(answer["body"])


# -- roll-ups --------------------------------------------------------------------------------------------
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
    configure(config_doc())  # storm control removed
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


# -- maintenance windows -----------------------------------------------------------------------------------
def end_windows_and_release(aws: Aws, configure: Any, **doc: Any) -> list[dict[str, Any]]:
    """The window ends (the configuration no longer has it); one sweeper pass; what it put back."""
    configure(config_doc(**doc))
    store = DedupStore(aws.dynamodb, aws.table_name)
    release_held(store, judge.Policy(store, config_reader(get_settings())), aws.sqs, aws.queue_url)
    return aws.drain()


def dispatch_released(released: list[dict[str, Any]]) -> list[Any]:
    d = get_dispatcher()
    return [d.process(m["Body"], message_attributes=m["MessageAttributes"]) for m in released]


def test_an_alert_acknowledged_while_held_still_reaches_pagerduty_when_the_window_ends(
    aws: Aws, pagerduty: EmulatorServer, configure: Any
) -> None:
    configure(config_doc(maintenance=[window("patching", routes=["ops"])]))
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
    configure(config_doc(maintenance=[window("patching", routes=["ops"])]))
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
    configure(config_doc(maintenance=[window("patching", routes=["ops"])]))
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
    configure(config_doc(maintenance=[window("patching", routes=["ops"])]))
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


def test_a_window_holds_up_to_but_not_at_its_end() -> None:
    from pdrelay.policy.windows import Window

    end = T0 + timedelta(hours=1)
    w = Window.model_validate({"name": "w", "start": T0.isoformat(), "end": end.isoformat()})
    p = judge.Policy(store=None, config=lambda: None)  # type: ignore[arg-type]
    m = message("x")
    assert p.holding(m, T0, [w]) is w
    assert p.holding(m, end - timedelta(microseconds=1), [w]) is w
    assert p.holding(m, end, [w]) is None


def test_alerts_whose_window_ended_are_released_even_behind_many_still_held(
    aws: Aws, pagerduty: EmulatorServer, configure: Any, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pdrelay import table as dedup

    long_window = window("freeze", minutes_ago=120, minutes_ahead=600, routes=["shop"])
    configure(config_doc(maintenance=[long_window, window("patching", routes=["ops"])]))
    clock.advance(-3600)  # held an hour ago: first in the index, which is ordered by update time
    assert run(message(unique("frozen"), route="shop", routing_key=TEAM_KEY, destination="team")).result == "held"
    clock.advance(3600)
    assert run(message(unique("ended"))).result == "held"
    configure(config_doc(maintenance=[long_window]))
    store = DedupStore(aws.dynamodb, aws.table_name, clock=clock)
    monkeypatch.setattr(dedup, "PENDING_PAGE", 1)  # one item per page stands for DynamoDB's 1 MB pages
    result = release_held(store, judge.Policy(store, config_reader(get_settings())), aws.sqs, aws.queue_url)
    assert (result.held, result.still_held, result.released) == (2, 1, 1)


# -- destinations changed between trigger and resolve -------------------------------------------------------
@pytest.mark.xfail(
    strict=True,
    reason="known gap, in docs/configuration.md: a resolve fans out to the route's destinations "
    "as configured now: an incident opened on a destination removed since stays "
    "open",
)
def test_an_incident_on_a_destination_removed_since_its_trigger_still_resolves(
    aws: Aws, pagerduty: EmulatorServer, configure: Any, ingest: Handler
) -> None:
    key = unique("k")
    event = {
        "routing_key": "shop",
        "event_action": "trigger",
        "dedup_key": key,
        "payload": {"summary": "disk full", "source": "db-1", "severity": "critical"},
    }
    assert post(ingest, "/v2/enqueue", event)[0] == 202
    assert [o.result for o in dispatch_released(aws.drain())] == ["delivered", "delivered"]
    configure(config_doc(shop_destinations=("team",)))
    post(ingest, "/v2/enqueue", {**event, "event_action": "resolve"})
    dispatch_released(aws.drain())
    assert by_key(pagerduty, TEAM_KEY)[key] == "resolved"
    assert by_key(pagerduty, PLATFORM_KEY)[key] == "resolved"


def test_a_destination_added_between_trigger_and_resolve_costs_no_call(
    aws: Aws, pagerduty: EmulatorServer, configure: Any, ingest: Handler
) -> None:
    configure(config_doc(shop_destinations=("team",)))
    event = {
        "routing_key": "shop",
        "event_action": "trigger",
        "dedup_key": unique("k"),
        "payload": {"summary": "disk full", "source": "db-1", "severity": "critical"},
    }
    post(ingest, "/v2/enqueue", event)
    dispatch_released(aws.drain())
    configure(config_doc())
    post(ingest, "/v2/enqueue", {**event, "event_action": "resolve"})
    assert sorted(o.reason for o in dispatch_released(aws.drain())) == ["resolve", "unknown"]
    assert [e["event_action"] for e in pagerduty.state.events] == ["trigger", "resolve"]


# -- storm control: min_resend_seconds -----------------------------------------------------------------------
def test_a_suppressed_update_delivered_again_is_a_duplicate_and_the_resolve_passes(
    aws: Aws, pagerduty: EmulatorServer, configure: Any
) -> None:
    configure(config_doc(ops_storm={"min_resend_seconds": 600}))
    fp = unique("busy")
    run(message(fp, summary="depth 100"))
    update = message(fp, summary="depth 200")
    assert run(update).result == "suppressed"
    assert run(update).result == "skipped"
    assert run(message(fp, "resolve", at=T0 + timedelta(minutes=5))).result == "delivered"
    assert [e["event_action"] for e in pagerduty.state.events] == ["trigger", "resolve"]


# -- test probes and change events with odd input ---------------------------------------------------------
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


# -- pdrelay config validate / explain on hostile files --------------------------------------------------------
def cli(*argv: str) -> int:
    from pdrelay.cli import main

    return main(list(argv))


def test_config_validate_survives_a_yaml_alias_bomb_and_reports_the_places(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x"]']
    lines += [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 8)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join([*lines, "default_route: *a7"]))
    assert cli("config", "validate", str(path)) == 2
    assert "default_route: Input should be a valid string" in capsys.readouterr().err


def test_config_validate_on_a_file_that_is_not_utf8_is_an_error_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("default_route: caf\u00e9\n".encode("latin-1"))
    assert cli("config", "validate", str(path)) == 2
    assert "UTF-8" in capsys.readouterr().err


def test_config_explain_with_a_bad_at_is_an_error_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, payload = tmp_path / "c.json", tmp_path / "p.json"
    config.write_text(json.dumps(config_doc()))
    payload.write_text(
        json.dumps(
            {
                "routing_key": OPS_KEY,
                "event_action": "trigger",
                "payload": {"summary": "s", "source": "h", "severity": "error"},
            }
        )
    )
    assert cli("config", "explain", str(config), "--payload", str(payload), "--at", "tomorrow 9am") == 2
    assert "--at" in capsys.readouterr().err
