"""Heartbeats as pure logic, on a clock the tests move: when a route counts as silent (just under and
just over ``every``, counted from its first sighting when it never had contact), that a silence
queues one trigger however many sweeps see it, that contact queues the resolve, and that ingest
records contact at most once per write interval per process, only moving forward. Through the real
handlers, moto and the PagerDuty emulator: tests/integration/test_heartbeats.py."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pdrelay.config import RelayConfig, parse_config
from pdrelay.errors import ConfigError, StoreError
from pdrelay.models import Alert
from pdrelay.policy import heartbeats
from pdrelay.policy.heartbeats import Heartbeat
from pdrelay.table import HeartbeatItem
from pdrelay.timeutil import ManualClock

KEY = "HEARTBEATR0UT1NGKEY0000000000001"
T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


class FakeStore:
    """The heartbeat methods of :class:`pdrelay.table.DedupStore`, in memory, counting writes."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.items: dict[str, HeartbeatItem] = {}
        self.writes: list[tuple[str, str]] = []
        self.docs: dict[str, tuple[dict[str, Any], int]] = {}
        self.fail = False

    def get_heartbeat(self, route: str) -> HeartbeatItem | None:
        return self.items.get(route)

    def start_heartbeat(self, route: str, at: float) -> bool:
        item = self.items.get(route) or HeartbeatItem(route)
        if item.first_seen is not None:
            return False
        self.items[route] = replace(item, first_seen=at)
        self.writes.append(("start", route))
        return True

    def touch_heartbeat(self, route: str, at: float, last_sent: dict[str, str]) -> bool:
        if self.fail:
            raise StoreError("throttled")
        item = self.items.get(route) or HeartbeatItem(route)
        self.writes.append(("touch", route))
        if item.last_contact is not None and item.last_contact >= at:
            return False
        self.items[route] = replace(item, last_contact=at, last_sent=last_sent)
        return True

    def get_doc(self, pk: str, **_options: object) -> tuple[dict[str, Any], int]:
        return self.docs.get(pk, ({}, 0))

    def put_doc(self, pk: str, doc: dict[str, Any], previous_version: int, *, expires: bool = True) -> int:
        self.docs[pk] = (doc, previous_version + 1)
        self.writes.append(("doc", pk))
        return previous_version + 1

    def set_heartbeat_state(self, route: str, version: int, state: str, silent_since: float | None) -> int | None:
        item = self.items[route]
        if item.version != version:
            return None
        self.items[route] = replace(item, state=state, silent_since=silent_since, version=version + 1)
        self.writes.append((state, route))
        return version + 1


class FakeSqs:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.sent.extend(json.loads(e["MessageBody"]) for e in Entries)
        return {"Successful": [{"Id": e["Id"]} for e in Entries]}


def config(**heartbeat: Any) -> RelayConfig:
    return RelayConfig.model_validate(
        {
            "default_route": "watchdog",
            "callers": [{"name": "am", "token": "t" * 32}],
            "routes": {
                "watchdog": {"routing_key": KEY, "heartbeat": {"every": "5m", **heartbeat}},
                "quiet": {"routing_key": KEY},
            },
        }
    )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock.at(T0)


@pytest.fixture
def store(clock: ManualClock) -> FakeStore:
    return FakeStore(clock)


def sweep(store: FakeStore, sqs: FakeSqs, cfg: RelayConfig | None = None) -> heartbeats.HeartbeatResult:
    return heartbeats.check(store, cfg or config(), sqs, "queue", store.clock.now())


def alert(summary: str = "Watchdog", **labels: str) -> Alert:
    return Alert.model_validate(
        {
            "format": "alertmanager",
            "identity": "fp1",
            "action": "trigger",
            "occurred_at": T0,
            "summary": summary,
            "source": "prometheus",
            "custom_details": {"labels": labels},
        }
    )


# -- the configuration -----------------------------------------------------------------------------------
def test_every_is_a_duration_between_a_second_and_a_week_and_reads_back_as_written() -> None:
    assert config().routes["watchdog"].heartbeat == Heartbeat(every=timedelta(minutes=5))
    assert config().routes["watchdog"].model_dump(mode="json")["heartbeat"]["every"] == "5m"
    for bad in ("0s", "8d", "soon", 300):
        with pytest.raises(ConfigError, match=r"routes\.watchdog\.heartbeat\.every: "):
            doc = config().model_dump(mode="json", exclude_none=True)
            doc["routes"]["watchdog"]["heartbeat"]["every"] = bad
            parse_config(json.dumps(doc))


def test_contact_is_every_alert_or_only_those_matching_when() -> None:
    anything = Heartbeat(every=timedelta(minutes=5))
    watchdog = Heartbeat.model_validate({"every": "5m", "when": {"labels.alertname": "Watchdog"}})
    assert anything.counts([alert()]) and anything.counts([])
    assert watchdog.counts([alert(alertname="Other"), alert(alertname="Watchdog")])
    assert not watchdog.counts([alert(alertname="Other")]) and not watchdog.counts([])


def test_contact_is_written_at_most_once_per_a_tenth_of_every_between_1_and_60_seconds() -> None:
    assert Heartbeat.model_validate({"every": "5m"}).write_interval == 30
    assert Heartbeat.model_validate({"every": "2s"}).write_interval == 1
    assert Heartbeat.model_validate({"every": "1d"}).write_interval == 60


# -- when a heartbeat is silent -------------------------------------------------------------------------
def test_silence_counts_from_the_first_sighting_not_the_epoch_and_pages_just_after_every(
    store: FakeStore, clock: ManualClock
) -> None:
    sqs = FakeSqs()
    grace = 30  # the write interval of a 5m heartbeat: a contact may be that much newer than recorded
    assert sweep(store, sqs).triggered == 0  # deployed: first seen now, nothing queued
    assert store.items["watchdog"].first_seen == clock.time() and "quiet" not in store.items
    clock.advance(300 + grace)
    assert sweep(store, sqs).as_dict() == {"checked": 1, "silent": 0, "triggered": 0, "resolved": 0, "failed": 0}
    clock.advance(1)
    assert sweep(store, sqs).triggered == 1
    (message,) = sqs.sent
    assert message["dedup_key"] == "heartbeat:watchdog" and message["routing_key"] == KEY
    assert message["alert"]["action"] == "trigger" and message["alert"]["format"] == "heartbeat"
    assert message["alert"]["severity"] == "critical"
    assert "route watchdog silent for 5m31s" in message["alert"]["summary"]
    assert "no contact since 2026-12-07T09:00:00.000Z" in message["alert"]["summary"]
    assert message["alert"]["custom_details"]["last_contact"] == "never"


def test_a_silence_queues_one_trigger_however_many_sweeps_see_it_and_contact_queues_the_resolve(
    store: FakeStore, clock: ManualClock
) -> None:
    sqs = FakeSqs()
    sweep(store, sqs)
    hb = config().routes["watchdog"].heartbeat
    assert hb is not None
    clock.advance(10)
    assert heartbeats.record_contact(
        store, "watchdog", hb, clock.now(), heartbeats.last_sent("am", "alertmanager", [alert()])
    )
    contact = clock.time()
    clock.advance(330)
    assert sweep(store, sqs).triggered == 0  # 5m30s after the contact, not after the sighting
    clock.advance(1)
    assert sweep(store, sqs).triggered == 1
    writes = len(store.writes)
    for _ in range(5):
        clock.advance(60)
        assert sweep(store, sqs).as_dict() == {"checked": 1, "silent": 1, "triggered": 0, "resolved": 0, "failed": 0}
    assert len(sqs.sent) == 1 and len(store.writes) == writes  # later sweeps write nothing, queue nothing
    summary = sqs.sent[0]["alert"]["summary"]
    assert "last contact from am (alertmanager) at 2026-12-07T09:00:10.000Z" in summary
    assert sqs.sent[0]["alert"]["custom_details"]["last_sent"]["summary"] == "Watchdog"
    assert store.items["watchdog"].silent_since == contact

    heartbeats.forget_contacts()  # another process
    assert heartbeats.record_contact(store, "watchdog", hb, clock.now(), {"caller": "am", "format": "ping"})
    assert sweep(store, sqs).resolved == 1
    resolve = sqs.sent[-1]
    assert (resolve["alert"]["action"], resolve["dedup_key"]) == ("resolve", "heartbeat:watchdog")
    assert "route watchdog heard from am (ping)" in resolve["alert"]["summary"]
    assert sweep(store, sqs).resolved == 0 and len(sqs.sent) == 2
    # Silent again later: a new trigger for the same dedup key (a new incident once the last resolved).
    clock.advance(332)
    assert sweep(store, sqs).triggered == 1 and len(sqs.sent) == 3


def test_a_trigger_that_could_not_be_queued_is_tried_again_by_the_next_sweep(
    store: FakeStore, clock: ManualClock
) -> None:
    class Refusing(FakeSqs):
        def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
            from botocore.exceptions import EndpointConnectionError

            raise EndpointConnectionError(endpoint_url="sqs")

    sweep(store, FakeSqs())
    clock.advance(400)
    assert sweep(store, Refusing()).as_dict()["failed"] == 1
    assert store.items["watchdog"].state == "ok"
    sqs = FakeSqs()
    assert sweep(store, sqs).triggered == 1 and len(sqs.sent) == 1


def test_the_trigger_goes_to_the_default_destinations_and_the_resolve_to_every_destination(
    store: FakeStore, clock: ManualClock
) -> None:
    other = "0THERR0UT1NGKEY00000000000000002"
    cfg = RelayConfig.model_validate(
        {
            "default_route": "w",
            "callers": [{"name": "am", "token": "t" * 32}],
            "routes": {
                "w": {
                    "destinations": {"team": {"routing_key": KEY}, "platform": {"routing_key": other}},
                    "default_destinations": ["team"],
                    "heartbeat": {"every": "1m", "severity": "warning"},
                }
            },
        }
    )
    sqs = FakeSqs()
    sweep(store, sqs, cfg)
    clock.advance(67)
    sweep(store, sqs, cfg)
    assert [(m["destination"], m["alert"]["severity"]) for m in sqs.sent] == [("team", "warning")]
    store.touch_heartbeat("w", clock.time(), {})
    sweep(store, sqs, cfg)
    assert sorted(m["destination"] for m in sqs.sent[1:]) == ["platform", "team"]


# -- recording contact ----------------------------------------------------------------------------------
def test_a_process_records_contact_once_per_write_interval_and_retries_a_failed_write(
    store: FakeStore, clock: ManualClock
) -> None:
    hb = Heartbeat.model_validate({"every": "5m"})

    def contact() -> bool:
        return heartbeats.record_contact(store, "watchdog", hb, clock.now(), {})

    assert contact()
    clock.advance(29)
    assert not contact() and len(store.writes) == 1
    clock.advance(1)
    assert contact() and len(store.writes) == 2
    store.fail = True
    clock.advance(30)
    assert not contact()  # logged; the request is answered as accepted
    store.fail = False
    clock.advance(0.5)
    assert contact() and store.items["watchdog"].last_contact == clock.time()
