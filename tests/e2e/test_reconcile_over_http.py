"""An incident resolved by hand at PagerDuty while the monitor still fires, through the local stack:
the identical repeat stays unchanged until `pdrelay reconcile --fix` (a process of its own, over
HTTP to the stack's AWS emulator and the PagerDuty emulator's REST API) marks the alert; then the
repeat opens a new incident, once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from pdrelay.local.emulator import EMULATOR_API_KEY
from tests.conftest import load_event, unique
from tests.e2e.conftest import Relay

pytestmark = pytest.mark.e2e


def reconcile(relay: Relay, state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    stack = relay.stack
    state = {
        "url": stack.url,
        "events_url": stack.events_url,
        "aws_endpoint": stack.moto_url,
        "aws_endpoints": stack.aws_endpoints,
        "queue_url": stack.queue_urls["AlertQueue"],
        "dlq_url": stack.queue_urls["DeadLetterQueue"],
        "table_name": stack.table_names["DedupTable"],
        "pagerduty_api_url": relay.pd.rest_url,
        "pagerduty_api_key": relay.pd.api_key,
        "log_file": str(state_dir / "dev.log"),
    }
    (state_dir / "dev.json").write_text(json.dumps(state))  # as `pdrelay dev` writes it
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PDRELAY_", "AWS_"))}
    env["PDRELAY_STATE_DIR"] = str(state_dir)
    return subprocess.run(
        [sys.executable, "-m", "pdrelay.cli", "reconcile", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_after_a_resolve_by_hand_the_repeat_pages_again_only_once_reconcile_fixed_it(
    relay: Relay, tmp_path: Path
) -> None:
    # Given an alert paged through the relay
    doc: dict[str, Any] = load_event("formats/alertmanager/firing.json")
    doc["alerts"] = doc["alerts"][:1]
    doc["alerts"][0]["fingerprint"] = unique()
    key = relay.post("/v1/alerts/alertmanager", doc).json()["alerts"][0]["dedup_key"]
    relay.wait_until(lambda: [i["status"] for i in relay.incidents(key)] == ["triggered"])

    # When a person resolves it at PagerDuty while the monitor still fires
    (incident,) = relay.incidents(key)
    answer = requests.put(
        f"{relay.pd.rest_url}/incidents/{incident['id']}",
        json={"incident": {"type": "incident_reference", "status": "resolved"}},
        headers={"Authorization": f"Token token={EMULATOR_API_KEY}", "From": "oncall@example.com"},
        timeout=10,
    )
    assert answer.status_code == 200

    # Then the monitor's repeat (Alertmanager moves endsAt on) stays unchanged: nothing pages
    doc["alerts"][0]["endsAt"] = "2026-11-24T09:10:00Z"
    assert relay.post("/v1/alerts/alertmanager", doc).status_code == 202
    relay.settle()
    assert [i["status"] for i in relay.incidents(key)] == ["resolved"]
    assert len(relay.events_for(key)) == 1

    # A dry run says what differs and changes nothing
    dry = reconcile(relay, tmp_path, "--json", "--grace", "0")
    assert dry.returncode == 1, dry.stderr
    differences = json.loads(dry.stdout)["differences"]
    assert [(d["kind"], d["dedup_key"], d["done"]) for d in differences] == [("resolved-at-pagerduty", key, False)]

    # When reconcile fixes it, the next repeat opens a new incident
    fixed = reconcile(relay, tmp_path, "--fix", "--grace", "0")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "resolved-at-pagerduty" in fixed.stdout and EMULATOR_API_KEY not in fixed.stdout
    # what it did is in the stack's log file, where `pdrelay trace` finds it
    logged = [json.loads(line) for line in (tmp_path / "dev.log").read_text().splitlines()]
    assert [(d["message"], d["kind"], d["dedup_key"], d["function"]) for d in logged] == [
        ("reconcile: drift fixed", "resolved-at-pagerduty", key, "pdrelay reconcile")
    ]
    doc["alerts"][0]["endsAt"] = "2026-11-24T09:15:00Z"
    assert relay.post("/v1/alerts/alertmanager", doc).status_code == 202
    relay.wait_until(lambda: [i["status"] for i in relay.incidents(key)] == ["resolved", "triggered"])

    # ...and only that one: the next repeat is unchanged again
    doc["alerts"][0]["endsAt"] = "2026-11-24T09:20:00Z"
    assert relay.post("/v1/alerts/alertmanager", doc).status_code == 202
    relay.settle()
    assert [i["status"] for i in relay.incidents(key)] == ["resolved", "triggered"]
    assert len(relay.events_for(key)) == 2
