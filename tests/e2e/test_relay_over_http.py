"""Alertmanager → pdrelay (local stack over HTTP) → PagerDuty emulator: one incident per problem."""

from __future__ import annotations

from typing import Any

import pytest

from pdrelay import cli
from tests.conftest import load_event, unique
from tests.e2e.conftest import Relay

pytestmark = pytest.mark.e2e


def alertmanager(name: str, fingerprint: str) -> dict[str, Any]:
    doc = load_event(name)
    for alert in doc["alerts"]:
        alert["fingerprint"] = f"{fingerprint}-{alert['fingerprint']}"
    return doc


def test_firing_then_resolved_is_one_incident_that_ends_resolved(relay: Relay) -> None:
    fp = unique()
    answer = relay.post("/v1/alerts/alertmanager", alertmanager("formats/alertmanager/firing.json", fp))
    assert answer.status_code == 202, answer.text
    key = answer.json()["alerts"][0]["dedup_key"]
    relay.wait_until(lambda: [i["status"] for i in relay.incidents(key)] == ["triggered"])
    resolved = alertmanager("formats/alertmanager/resolved.json", fp)
    assert relay.post("/v1/alerts/alertmanager", resolved).status_code == 202
    relay.wait_until(lambda: [i["status"] for i in relay.incidents(key)] == ["resolved"])
    (incident,) = relay.incidents(key)
    assert incident["severity"] == "critical"


def test_a_repeated_firing_makes_no_second_incident_and_no_second_call(relay: Relay) -> None:
    doc = alertmanager("formats/alertmanager/firing.json", unique())
    key = relay.post("/v1/alerts/alertmanager", doc).json()["alerts"][0]["dedup_key"]
    relay.wait_until(lambda: len(relay.incidents(key)) == 1)
    for minute in range(3):
        # Alertmanager's repeat notifications move endsAt forward each time: not byte-identical.
        doc["alerts"][0]["endsAt"] = f"2026-11-24T09:1{minute}:00Z"
        answer = relay.post("/v1/alerts/alertmanager", doc)
        assert answer.status_code == 202 and "replayed" not in answer.json()
    relay.settle()
    assert len(relay.incidents(key)) == 1
    assert len(relay.events_for(key)) == 1


def test_a_late_duplicate_firing_after_the_resolve_does_not_reopen(relay: Relay) -> None:
    fp = unique()
    firing = alertmanager("formats/alertmanager/firing.json", fp)
    key = relay.post("/v1/alerts/alertmanager", firing).json()["alerts"][0]["dedup_key"]
    relay.wait_until(lambda: len(relay.incidents(key)) == 1)
    relay.post("/v1/alerts/alertmanager", alertmanager("formats/alertmanager/resolved.json", fp))
    relay.wait_until(lambda: [i["status"] for i in relay.incidents(key)] == ["resolved"])
    firing["alerts"][0]["endsAt"] = "2026-11-24T09:45:00Z"  # a repeat of the old firing, delivered late
    answer = relay.post("/v1/alerts/alertmanager", firing)
    assert answer.status_code == 202 and "replayed" not in answer.json()
    relay.settle()
    assert [i["status"] for i in relay.incidents(key)] == ["resolved"]
    assert [e["event_action"] for e in relay.events_for(key)] == ["trigger", "resolve"]


def test_a_group_with_one_firing_and_one_resolved_alert_does_each_right(relay: Relay) -> None:
    answer = relay.post("/v1/alerts/auto", alertmanager("formats/alertmanager/mixed.json", unique()))
    assert answer.status_code == 202
    firing, resolved = answer.json()["alerts"]
    assert (firing["action"], resolved["action"]) == ("trigger", "resolve")
    relay.wait_until(lambda: len(relay.incidents(firing["dedup_key"])) == 1)
    relay.settle()
    # A resolve of an alert the table does not know is forwarded once (PagerDuty may have it open
    # after lost state); PagerDuty has nothing open here, so it opens nothing.
    assert relay.incidents(resolved["dedup_key"]) == []
    assert [e["event_action"] for e in relay.events_for(resolved["dedup_key"])] == ["resolve"]


@pytest.mark.parametrize(
    ("body", "token", "status"),
    [
        ("{not json", "example-token-change-me-000001", 400),
        ({"alerts": []}, "example-token-change-me-000001", 400),
        ("alertmanager", None, 401),
        ("alertmanager", "wrong-token-0000000000", 401),
    ],
)
def test_malformed_and_unauthenticated_requests_queue_nothing(
    relay: Relay, body: Any, token: str | None, status: int
) -> None:
    relay.settle()
    before = len(relay.pd.state.events)
    payload = alertmanager("formats/alertmanager/firing.json", unique()) if body == "alertmanager" else body
    answer = relay.post("/v1/alerts/alertmanager", payload, token=token)
    assert answer.status_code == status
    assert answer.json()["message"]
    assert not any(relay.stack.queue_depths()["AlertQueue"].values())
    assert len(relay.pd.state.events) == before


def test_pdrelay_send_goes_through_the_relay_like_pd_send(relay: Relay, capsys: pytest.CaptureFixture[str]) -> None:
    key = unique("disk")
    common = ["--url", relay.url, "--token", "example-token-change-me-000001", "-k", "default", "-i", key]
    assert (
        cli.main(
            ["send", *common, "-t", "trigger", "-d", "Disk full on db-1", "-f", "mount=/data", "--severity", "warning"]
        )
        == 0
    )
    assert '"dedup_key": "' + key in capsys.readouterr().out
    relay.wait_until(lambda: [i["status"] for i in relay.incidents(key)] == ["triggered"])
    assert cli.main(["send", *common, "-t", "resolve"]) == 0
    relay.wait_until(lambda: [i["status"] for i in relay.incidents(key)] == ["resolved"])
    (trigger, resolve) = relay.events_for(key)
    assert trigger["payload"]["custom_details"] == {"mount": "/data"}
    assert resolve["payload"]["summary"] == "Disk full on db-1"  # resolves carry the full payload


def test_health_over_http(relay: Relay) -> None:
    import requests

    answer = requests.get(relay.url + "/health", timeout=5)
    assert answer.status_code == 200
    assert answer.json()["status"] == "ok"
