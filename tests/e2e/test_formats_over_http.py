"""Every monitor format over HTTP through the local stack: its firing, then its recovery, is one
incident in the PagerDuty emulator that ends resolved (triggered, for monitors without recovery)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from pdrelay.formats import cloudwatch
from pdrelay.local.stack import LocalStack, StackOptions
from tests.conftest import ROOT, TOKEN
from tests.e2e.conftest import Relay
from tests.formats_harness import Case, format_names, lifecycle_pairs, load_case

pytestmark = pytest.mark.e2e
V1_PATH = "/generic/2010-04-15/create_event.json"


def routing_key(name: str) -> str:
    return ("E2E" + "".join(c for c in name if c.isalnum())).ljust(32, "0")[:32]


FIRST_PAIRS = {fmt: lifecycle_pairs(fmt)[0] for fmt in format_names() if lifecycle_pairs(fmt)}


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Relay]:
    """A stack with one route per format, carrying the options its fixtures were written for."""
    routes: dict[str, Any] = {"default": {"routing_key": routing_key("default")}}
    for fmt, (firing, _) in FIRST_PAIRS.items():
        options = load_case(fmt, firing).options
        routes[fmt] = {"routing_key": routing_key(fmt), **({"formats": {fmt: options}} if options else {})}
    config = {"default_route": "default", "callers": [{"name": "e2e", "token": TOKEN}], "routes": routes}
    path: Path = tmp_path_factory.mktemp("formats") / "pdrelay.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    options = StackOptions(
        template=ROOT / "template.yaml", port=0, emulator_port=0, config=str(path), retry_base_seconds=1
    )
    with LocalStack(options) as running:
        yield Relay(running)


def send(relay: Relay, case: Case) -> requests.Response:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json", **case.headers}
    for name in headers:
        if name.lower() == "sentry-hook-timestamp":  # sent now, as Sentry would (checked within 5 minutes)
            headers[name] = str(int(time.time()))
    if case.format == "events_v2":
        path = "/v2/enqueue"
    elif case.format == "events_v1":
        path = V1_PATH
    else:
        path = f"/v1/alerts/{'auto' if case.detect else case.format}?route={case.format}"
    return requests.post(relay.url + path, data=case.body, headers=headers, timeout=10)


def dedup_keys(answer: requests.Response) -> set[str]:
    body = answer.json()
    if "alerts" in body:
        return {a["dedup_key"] for a in body["alerts"]}
    return {body.get("dedup_key") or body["incident_key"]}


def statuses(relay: Relay, keys: set[str]) -> list[str]:
    return sorted(i["status"] for key in keys for i in relay.incidents(key))


@pytest.mark.parametrize("fmt", sorted(FIRST_PAIRS))
def test_firing_then_recovery_is_one_incident_that_ends_resolved(
    relay: Relay, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cloudwatch, "fetch_certificate", lambda _url: pytest.fail("fixtures are not signed"))
    firing, recovery = FIRST_PAIRS[fmt]
    answer = send(relay, load_case(fmt, firing))
    assert answer.status_code in (200, 202), answer.text
    assert answer.json().get("format", fmt) == fmt
    keys = dedup_keys(answer)
    relay.wait_until(lambda: statuses(relay, keys) == ["triggered"] * len(keys))
    if recovery is None:
        return
    answer = send(relay, load_case(fmt, recovery))
    assert answer.status_code in (200, 202), answer.text
    assert dedup_keys(answer) == keys
    relay.wait_until(lambda: statuses(relay, keys) == ["resolved"] * len(keys))
    relay.settle()
    actions = [e["event_action"] for key in keys for e in relay.events_for(key)]
    assert actions.count("trigger") == len(keys) and actions.count("resolve") == len(keys)
