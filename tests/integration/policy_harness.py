"""Configurations, requests and queue messages for the alert policy tests (routing rules, maintenance
windows, storm control, destinations, probes and change events, the configuration commands), which
drive the real ingest and dispatch handlers against moto and the PagerDuty emulator.

Two configurations: ``shop_doc`` (default route 'shop': destinations 'team' and 'platform', rules;
route 'ops' with one key) and ``ops_doc`` (default route 'ops' with storm control options; route
'shop' with destinations and no rules; maintenance windows). A module's ``configure`` fixture writes
the one its tests start from (``configure = configured_with(shop_doc)``).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pdrelay.delivery.dispatcher import get_dispatcher
from pdrelay.local.apigw import api_gateway_event
from pdrelay.local.emulator import EmulatorServer
from pdrelay.models import Alert, QueueMessage, make_message
from tests.conftest import TOKEN, load_event, unique
from tests.integration.conftest import Aws, ConfigWriter, Handler

TEAM_KEY = "TEAMR0UT1NGKEY000000000000000001"
PLATFORM_KEY = "PLATF0RMR0UT1NGKEY00000000000002"
OPS_KEY = "0PSR0UT1NGKEY0000000000000000003"
T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


# -- configurations ------------------------------------------------------------------------------------
def shop_doc(**route: Any) -> dict[str, Any]:
    """Default route 'shop' (``route`` changes it): info alerts page no one, critical ones page both
    destinations, the rest the team; route 'ops' has a key of its own."""
    shop = {
        "destinations": {"team": {"routing_key": TEAM_KEY}, "platform": {"routing_key": PLATFORM_KEY}},
        "default_destinations": ["team"],
        "rules": [
            {"name": "quiet-info", "when": {"severity": "info"}, "page": False},
            {
                "name": "critical-to-both",
                "when": {"labels.severity": "critical"},
                "send_to": ["team", "platform"],
                "severity": {"critical": "critical", "error": "critical"},
                "custom_details": {"escalation": "team then platform"},
            },
        ],
    }
    shop.update(route)
    return {
        "default_route": "shop",
        "callers": [{"name": "tests", "token": TOKEN}],
        "routes": {"shop": shop, "ops": {"routing_key": OPS_KEY}},
    }


def ops_doc(
    ops_storm: dict[str, Any] | None = None,
    maintenance: list[dict[str, Any]] | None = None,
    shop_destinations: tuple[str, ...] = ("team", "platform"),
) -> dict[str, Any]:
    """Default route 'ops' with ``ops_storm`` as its storm control; route 'shop' sends everything to
    ``shop_destinations``; ``maintenance`` windows."""
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


def configured_with(doc: Callable[[], dict[str, Any]]) -> Any:
    """A ``configure`` fixture for a module whose tests start from ``doc()``:
    ``configure = configured_with(shop_doc)``. It overrides the passthrough one in conftest."""

    @pytest.fixture
    def configure(write_config: ConfigWriter) -> ConfigWriter:
        write_config(doc())
        return write_config

    return configure


def window(name: str, minutes_ago: int = 5, minutes_ahead: int = 60, **extra: Any) -> dict[str, Any]:
    """A one-off maintenance window that started ``minutes_ago`` and ends ``minutes_ahead``."""
    now = datetime.now(UTC)
    return {
        "name": name,
        "start": (now - timedelta(minutes=minutes_ago)).isoformat(),
        "end": (now + timedelta(minutes=minutes_ahead)).isoformat(),
        **extra,
    }


# -- through the ingest handler ----------------------------------------------------------------------------
def post(ingest: Handler, path: str, body: Any, token: str = TOKEN) -> tuple[int, dict[str, Any]]:
    answer = ingest(
        api_gateway_event(
            "POST",
            path,
            {"authorization": f"Bearer {token}", "content-type": "application/json"},
            json.dumps(body).encode(),
        )
    )
    return answer["statusCode"], json.loads(answer["body"])


def alertmanager(
    status: str = "firing", severity: str = "critical", fingerprint: str | None = None, summary: str | None = None
) -> dict[str, Any]:
    doc = copy.deepcopy(load_event("formats/alertmanager/firing.json"))
    alert = doc["alerts"][0]
    alert["fingerprint"] = fingerprint or unique("fp")
    alert["labels"]["severity"] = severity
    alert["status"] = doc["status"] = status
    if summary:
        alert["annotations"]["summary"] = summary
    if status == "resolved":
        alert["endsAt"] = "2026-11-24T09:30:00Z"
    return doc


# -- through the dispatcher ----------------------------------------------------------------------------------
def dispatch_all(aws: Aws) -> list[Any]:
    """Every queued message through the dispatcher, as Lambda would (repeating until the queue is empty)."""
    outcomes = []
    for _round in range(5):
        batch = aws.drain()
        if not batch:
            break
        d = get_dispatcher()
        outcomes.extend(d.process(m["Body"], receipt_handle="", receive_count=1) for m in batch)
    return outcomes


def dispatch_released(released: list[dict[str, Any]]) -> list[Any]:
    """These queue messages (drained or put back by the sweeper) through the dispatcher, in order."""
    d = get_dispatcher()
    return [d.process(m["Body"], message_attributes=m["MessageAttributes"]) for m in released]


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
    """A queue message as ingest would write it, for an alert of identity ``identity``."""
    alert = Alert.model_validate(
        {
            "format": "policy-tests",
            "identity": identity,
            "action": action,
            "occurred_at": at,
            "summary": summary,
            "source": "test-host",
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


# -- what PagerDuty holds -------------------------------------------------------------------------------------
def incidents(pd: EmulatorServer, key: str) -> list[dict[str, Any]]:
    return pd.state.snapshot(key)


def by_key(pd: EmulatorServer, routing_key: str) -> dict[str, str]:
    """Each incident's status on ``routing_key``, by dedup key."""
    return {i["dedup_key"]: i["status"] for i in pd.state.snapshot(routing_key)}
