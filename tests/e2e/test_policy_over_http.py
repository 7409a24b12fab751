"""Routing and alert policy through the local stack over HTTP, driven as operators drive it: monitors
post, `pdrelay maintenance`, `pdrelay test`, `pdrelay change` and `pdrelay queue status` run as
commands, the scheduled sweep runs on its own, and PagerDuty is the emulator."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pdrelay import cli
from pdrelay.local.stack import LocalStack, StackOptions
from tests.conftest import ROOT, TOKEN, load_event, unique
from tests.e2e.conftest import Relay

pytestmark = pytest.mark.e2e

TEAM_KEY = "TEAMR0UT1NGKEY0000000000000000e1"
PLATFORM_KEY = "PLATF0RMR0UT1NGKEY000000000000e2"
OPS_KEY = "0PSR0UT1NGKEY00000000000000000e3"
STORM_KEY = "ST0RMR0UT1NGKEY0000000000000e004"
BEAT_KEY = "BEATR0UT1NGKEY00000000000000e005"

CONFIG = {
    "default_route": "shop",
    "callers": [{"name": "tests", "token": TOKEN}],
    "routes": {
        "shop": {
            "destinations": {"team": {"routing_key": TEAM_KEY}, "platform": {"routing_key": PLATFORM_KEY}},
            "default_destinations": ["team"],
            "rules": [
                {"name": "critical-to-both", "when": {"labels.severity": "critical"}, "send_to": ["team", "platform"]}
            ],
        },
        "ops": {"routing_key": OPS_KEY},
        "storm": {"routing_key": STORM_KEY, "storm": {"max_new_per_minute": 2, "rollup_update_seconds": 0}},
        "beat": {"routing_key": BEAT_KEY, "heartbeat": {"every": "2s"}},  # silent from the start: pages
    },
}


@pytest.fixture(scope="module")
def policy_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    path = tmp_path_factory.mktemp("policy") / "pdrelay.json"
    path.write_text(json.dumps(CONFIG))
    options = StackOptions(
        template=ROOT / "template.yaml",
        port=0,
        emulator_port=0,
        config=str(path),
        retry_base_seconds=1,
        sweep_seconds=0.5,
        env={"PDRELAY_WINDOWS_MAX_AGE": "0", "PDRELAY_CONFIG_MAX_AGE": "0"},
    )
    with LocalStack(options) as running:
        yield running


@pytest.fixture
def relay(policy_stack: LocalStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Relay:
    """A relay, and a state folder whose `dev.json` points the commands at it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PDRELAY_STATE_DIR", str(tmp_path))
    (tmp_path / "dev.json").write_text(
        json.dumps(
            {
                "url": policy_stack.url,
                "events_url": policy_stack.events_url,
                "token": TOKEN,
                "aws_endpoint": policy_stack.moto_url,
                "aws_endpoints": policy_stack.aws_endpoints,
                "queue_url": policy_stack.queue_urls["AlertQueue"],
                "dlq_url": policy_stack.queue_urls["DeadLetterQueue"],
                "table_name": policy_stack.table_names["DedupTable"],
            }
        )
    )
    return Relay(policy_stack)


def alertmanager(
    status: str = "firing", severity: str = "critical", fingerprint: str = "", summary: str = ""
) -> dict[str, Any]:
    doc = copy.deepcopy(load_event("formats/alertmanager/firing.json"))
    alert = doc["alerts"][0]
    alert["fingerprint"] = fingerprint or unique("fp")
    alert["labels"]["severity"] = severity
    alert["status"] = doc["status"] = status
    if summary:
        alert["annotations"]["summary"] = summary
    return doc


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli.main(argv)
    return code, capsys.readouterr().out


def by_key(relay: Relay, routing_key: str) -> list[dict[str, Any]]:
    return relay.pd.state.snapshot(routing_key)


def test_one_critical_alert_is_an_incident_on_each_destination_and_one_resolve_closes_both(relay: Relay) -> None:
    fp = unique("fp")
    answer = relay.post("/v1/alerts/alertmanager", alertmanager(fingerprint=fp))
    assert answer.status_code == 202 and answer.json()["accepted"] == 2
    relay.wait_until(lambda: len(by_key(relay, TEAM_KEY) + by_key(relay, PLATFORM_KEY)) == 2)
    relay.post("/v1/alerts/alertmanager", alertmanager("resolved", fingerprint=fp))
    relay.wait_until(
        lambda: [i["status"] for i in by_key(relay, TEAM_KEY) + by_key(relay, PLATFORM_KEY)] == ["resolved", "resolved"]
    )


def test_a_maintenance_window_holds_then_ending_it_pages_what_still_fires(
    relay: Relay, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(
        ["maintenance", "add", "ops-patching", "--route", "ops", "--for", "2h", "--comment", "CHG-1"], capsys
    )
    assert code == 0 and "ops-patching" in out and "active" in out
    code, out = run(["maintenance", "list"], capsys)
    assert "ops-patching" in out and "active" in out
    held, recovered = unique("fp"), unique("fp")
    relay.post("/v1/alerts/alertmanager?route=ops", alertmanager(fingerprint=held))
    relay.post("/v1/alerts/alertmanager?route=ops", alertmanager(fingerprint=recovered))
    relay.settle()
    code, out = run(["queue", "status", "--json"], capsys)
    (row,) = [r for r in json.loads(out)["routes"] if r["route"] == "ops"]
    assert (row["held"], row["open"]) == (2, 0)
    relay.post("/v1/alerts/alertmanager?route=ops", alertmanager("resolved", fingerprint=recovered))
    relay.settle()
    assert by_key(relay, OPS_KEY) == []

    code, out = run(["maintenance", "end", "ops-patching"], capsys)
    assert code == 0
    relay.wait_until(lambda: len(by_key(relay, OPS_KEY)) == 1, timeout=30)
    (incident,) = by_key(relay, OPS_KEY)
    assert incident["dedup_key"].endswith(held) and incident["status"] == "triggered"
    relay.settle()
    assert len(by_key(relay, OPS_KEY)) == 1  # the sweep puts it back once, the recovered one never


def test_a_storm_rolls_up_above_the_cap_and_the_roll_up_resolves_with_its_last_alert(relay: Relay) -> None:
    fingerprints = [unique("fp") for _ in range(4)]
    for i, fp in enumerate(fingerprints):
        relay.post("/v1/alerts/alertmanager?route=storm", alertmanager(fingerprint=fp, summary=f"node {i} down"))
    relay.settle()
    relay.wait_until(lambda: len(by_key(relay, STORM_KEY)) == 3)
    rollups = [i for i in by_key(relay, STORM_KEY) if i["dedup_key"].startswith("pdrelay-rollup:storm:")]
    assert len(rollups) == 1
    for fp in fingerprints:
        relay.post("/v1/alerts/alertmanager?route=storm", alertmanager("resolved", fingerprint=fp))
    relay.wait_until(lambda: all(i["status"] == "resolved" for i in by_key(relay, STORM_KEY)))
    assert len(by_key(relay, STORM_KEY)) == 3


def test_a_silent_route_pages_once_and_resolves_when_traffic_returns(
    relay: Relay, capsys: pytest.CaptureFixture[str]
) -> None:
    # Route 'beat' expects contact every 2 s and has had none since the stack's sweep first saw it.
    relay.wait_until(lambda: len(relay.events_for("heartbeat:beat")) == 1, timeout=30)
    (incident,) = by_key(relay, BEAT_KEY)
    assert incident["status"] == "triggered" and "Heartbeat missed: route beat silent for" in incident["summary"]
    before = time.monotonic()
    relay.wait_until(lambda: time.monotonic() - before > 2)  # four more sweeps see the same silence
    assert [e["event_action"] for e in relay.events_for("heartbeat:beat")] == ["trigger"]

    assert relay.post("/v1/heartbeat/beat", None).json() == {"status": "accepted", "route": "beat", "every": "2s"}
    relay.wait_until(lambda: len(relay.events_for("heartbeat:beat")) == 2)
    assert [e["event_action"] for e in relay.events_for("heartbeat:beat")] == ["trigger", "resolve"]
    code, out = run(["queue", "status", "--json"], capsys)
    assert code == 0
    (row,) = [h for h in json.loads(out)["heartbeats"] if h["route"] == "beat"]
    assert row["last_sent"] == {"caller": "tests", "format": "ping"} and row["last_contact"]


def test_pdrelay_test_reports_each_destination_and_gives_advice_when_one_refuses(
    relay: Relay, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(["test", "--route", "shop", "--timeout", "30"], capsys)
    assert code == 0, out
    assert "all destinations accepted the test" in out
    assert out.count("ok: PagerDuty accepted the event") == 4  # trigger and resolve, two destinations
    tests = [i for i in relay.pd.state.snapshot() if i["dedup_key"].startswith("pdrelay-test:shop:")]
    assert len(tests) == 2 and all(i["status"] == "resolved" and i["summary"].startswith("[TEST]") for i in tests)

    # PagerDuty's answer for a key that is no Events API v2 integration, on one destination only.
    relay.pd.state.set_faults(
        [{"mode": "status", "status": 400, "routing_key": PLATFORM_KEY, "errors": ["Invalid routing key"]}]
    )
    code, out = run(["test", "--route", "shop", "--timeout", "30", "--no-resolve"], capsys)
    relay.pd.state.set_faults([])
    assert code == 1
    (team,) = [line for line in out.splitlines() if line.strip().startswith("team ")]
    (platform,) = [line for line in out.splitlines() if line.strip().startswith("platform ")]
    assert "HTTP 202: ok" in team
    assert (
        "HTTP 400: the routing key is not an Events API v2 integration key: check the service's integration" in platform
    )


def test_pdrelay_change_sends_a_deploy_marker_to_every_destination_of_the_route(
    relay: Relay, capsys: pytest.CaptureFixture[str]
) -> None:
    before = len(relay.pd.state.change_events)
    code, out = run(
        [
            "change",
            "-k",
            "shop",
            "-d",
            "Deployed shop 2.4.1",
            "--source",
            "ci",
            "-f",
            "commit=abc123",
            "-l",
            "https://ci.example.com/builds/42 Build 42",
        ],
        capsys,
    )
    assert code == 0 and out.startswith("202 ")
    relay.wait_until(lambda: len(relay.pd.state.change_events) == before + 2)
    latest = relay.pd.state.change_events[before:]
    assert {e["payload"]["summary"] for e in latest} == {"Deployed shop 2.4.1"}
    assert latest[0]["links"] == [{"href": "https://ci.example.com/builds/42", "text": "Build 42"}]
