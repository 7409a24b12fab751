"""``GET /v1/alerts/{dedup_key}`` through the real ingest and dispatch handlers against moto and the
PagerDuty emulator: an alert's state per destination from the table, never a routing key; 404 for
one pdrelay does not know; 401 without credentials; a caller limited to some routes sees only those."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest

from pdrelay.local.apigw import api_gateway_event
from pdrelay.local.emulator import EmulatorServer
from tests.conftest import TOKEN, unique
from tests.integration.conftest import Aws, ConfigWriter, Handler
from tests.integration.policy_harness import OPS_KEY, PLATFORM_KEY, TEAM_KEY, alertmanager, dispatch_all, post

OPS_ONLY_TOKEN = "ops-only-token-0000000000000001"
SENDER_TOKEN = "sender-only-token-00000000000001"


def doc() -> dict[str, Any]:
    """Route 'shop' pages team and platform (critical alerts), route 'ops' one key; a second caller
    may read 'ops' only; a third only sends."""
    return {
        "default_route": "shop",
        "callers": [
            {"name": "tests", "token": TOKEN, "read_alerts": True},
            {
                "name": "ops-team",
                "token": OPS_ONLY_TOKEN,
                "routes": ["ops"],
                "default_route": "ops",
                "read_alerts": True,
            },
            {"name": "monitor", "token": SENDER_TOKEN},
        ],
        "routes": {
            "shop": {
                "destinations": {"team": {"routing_key": TEAM_KEY}, "platform": {"routing_key": PLATFORM_KEY}},
                "rules": [
                    {
                        "name": "critical-to-both",
                        "when": {"labels.severity": "critical"},
                        "send_to": ["team", "platform"],
                    }
                ],
            },
            "ops": {"routing_key": OPS_KEY},
        },
    }


@pytest.fixture
def configure(write_config: ConfigWriter) -> ConfigWriter:
    write_config(doc())
    return write_config


def look_up(ingest: Handler, dedup_key: str, token: str | None = TOKEN, query: str = "") -> tuple[int, dict[str, Any]]:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    path = f"/v1/alerts/{quote(dedup_key, safe='')}" + (f"?{query}" if query else "")
    answer = ingest(api_gateway_event("GET", path, headers, b""))
    return answer["statusCode"], json.loads(answer["body"])


def test_a_delivered_alert_shows_its_state_per_destination_without_routing_keys(
    aws: Aws, pagerduty: EmulatorServer, ingest: Handler, configure: Any
) -> None:
    status, accepted = post(ingest, "/v1/alerts/alertmanager", alertmanager(severity="critical"))
    assert status == 202
    key = accepted["alerts"][0]["dedup_key"]
    dispatch_all(aws)

    status, found = look_up(ingest, key)

    assert status == 200, found
    assert found["dedup_key"] == key
    rows = {row["destination"]: row for row in found["destinations"]}
    assert set(rows) == {"team", "platform"}
    for row in rows.values():
        assert (row["route"], row["state"], row["last_action"]) == ("shop", "triggered", "trigger")
        assert row["delivered"] is True and row["paged"] is True and row["sends"] == 1
        assert row["episode_started_at"].endswith("Z")
    assert rows["team"]["routing_key"] == "…" + TEAM_KEY[-4:]
    assert TEAM_KEY not in json.dumps(found) and PLATFORM_KEY not in json.dumps(found)

    # resolved: the same items say so
    resolved = alertmanager(status="resolved", fingerprint=accepted["alerts"][0]["identity"])
    assert post(ingest, "/v1/alerts/alertmanager", resolved)[0] == 202
    dispatch_all(aws)
    status, found = look_up(ingest, key, query="route=shop")
    assert status == 200
    assert {(r["state"], r["last_action"], r["delivered"]) for r in found["destinations"]} == {
        ("resolved", "resolve", True)
    }


def test_an_alert_pdrelay_does_not_know_is_404_with_the_reason(
    aws: Aws, pagerduty: EmulatorServer, ingest: Handler, configure: Any
) -> None:
    status, body = look_up(ingest, unique("alertmanager:nobody"))
    assert status == 404
    assert body["message"] == "unknown alert" and "shop, ops" in body["errors"][0]


def test_without_or_with_wrong_credentials_nothing_is_read(
    aws: Aws, pagerduty: EmulatorServer, ingest: Handler, configure: Any
) -> None:
    assert look_up(ingest, "alertmanager:x", token=None)[0] == 401
    assert look_up(ingest, "alertmanager:x", token="wrong-token-00000000000000")[0] == 401


def test_a_caller_without_read_alerts_reads_nothing_even_of_its_own_alerts(
    aws: Aws, pagerduty: EmulatorServer, ingest: Handler, configure: Any
) -> None:
    status, accepted = post(ingest, "/v1/alerts/alertmanager", alertmanager(), token=SENDER_TOKEN)
    assert status == 202
    key = accepted["alerts"][0]["dedup_key"]
    dispatch_all(aws)

    status, body = look_up(ingest, key, token=SENDER_TOKEN)
    assert status == 403
    assert body["message"] == "caller 'monitor' may not read alerts" and "read_alerts: true" in body["errors"][0]
    assert look_up(ingest, key)[0] == 200  # a caller allowed to read sees it


def test_a_caller_limited_to_some_routes_sees_only_those(
    aws: Aws, pagerduty: EmulatorServer, ingest: Handler, configure: Any
) -> None:
    status, accepted = post(ingest, "/v1/alerts/alertmanager", alertmanager(severity="critical"))
    key = accepted["alerts"][0]["dedup_key"]
    dispatch_all(aws)

    assert look_up(ingest, key)[0] == 200  # the unrestricted caller
    status, body = look_up(ingest, key, token=OPS_ONLY_TOKEN)
    assert status == 404 and "on route(s) ops:" in body["errors"][0]  # not told it exists elsewhere
    status, body = look_up(ingest, key, token=OPS_ONLY_TOKEN, query="route=shop")
    assert status == 403
    assert look_up(ingest, key, query="route=nowhere")[0] == 400
