"""`pdrelay trace` on the local stack: alerts sent over HTTP while the PagerDuty emulator misbehaves,
then traced from the stack's log file and its table, as an on-call engineer would ask "what
happened to this alert?"."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from pdrelay.cli import main
from pdrelay.local.stack import LocalStack, StackOptions
from pdrelay.local.state import STATE_DIR_ENV
from pdrelay.ops import redrive
from tests.conftest import ROOT, TOKEN, load_event, unique

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("trace-state")


@pytest.fixture(scope="module")
def stack(state_dir: Path) -> Iterator[LocalStack]:
    options = StackOptions(
        template=ROOT / "template.yaml",
        port=0,
        emulator_port=0,
        token=TOKEN,
        retry_base_seconds=1,
        log_file=state_dir / "dev.log",
    )
    with LocalStack(options) as running:
        # what `pdrelay dev` writes down for the other commands
        (state_dir / "dev.json").write_text(
            json.dumps(
                {
                    "url": running.url,
                    "events_url": running.events_url,
                    "aws_endpoint": running.moto_url,
                    "aws_endpoints": running.aws_endpoints,
                    "queue_url": running.queue_urls["AlertQueue"],
                    "dlq_url": running.queue_urls["DeadLetterQueue"],
                    "table_name": running.table_names["DedupTable"],
                    "log_file": str(options.log_file),
                    "max_receives": running.max_receives,
                }
            )
        )
        yield running


@pytest.fixture
def pdrelay(
    stack: LocalStack, state_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., str]:
    """Run a `pdrelay` command against the stack; its standard output."""
    monkeypatch.setenv(STATE_DIR_ENV, str(state_dir))

    def run(*argv: str) -> str:
        capsys.readouterr()
        code = main(list(argv))
        out = capsys.readouterr().out
        assert code == 0, out
        return out

    return run


def wait_until(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def post(stack: LocalStack, path: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = requests.post(stack.url + path, json=body, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert answer.status_code == 202, answer.text
    return dict(answer.json())


def delivered_logged(state_dir: Path, dedup_key: str) -> bool:
    """The dispatcher's "delivered" line is in dev.log: written after PagerDuty's answer and the
    table's update, so a moment after the emulator shows the incident."""
    lines = (state_dir / "dev.log").read_text(encoding="utf-8").splitlines()
    return any(f'"dedup_key":"{dedup_key}"' in line and '"message":"delivered"' in line for line in lines)


def incident_status(stack: LocalStack, dedup_key: str) -> list[str]:
    assert stack.emulator is not None
    return [i["status"] for i in stack.emulator.state.snapshot() if i["dedup_key"] == dedup_key]


def test_a_trigger_that_met_a_500_then_a_429_then_went_through(
    stack: LocalStack, pdrelay: Callable[..., str], state_dir: Path
) -> None:
    assert stack.emulator is not None
    stack.emulator.state.set_faults(
        [{"mode": "status", "status": 500, "count": 1}, {"mode": "status", "status": 429, "count": 1, "retry_after": 1}]
    )
    doc = load_event("formats/alertmanager/firing.json")
    doc["alerts"][0]["fingerprint"] = unique("fp")
    accepted = post(stack, "/v1/alerts/alertmanager", doc)
    key = accepted["alerts"][0]["dedup_key"]
    wait_until(lambda: incident_status(stack, key) == ["triggered"] and delivered_logged(state_dir, key))

    traced = json.loads(pdrelay("trace", key, "--json"))

    assert (traced["taken_as"], traced["dedup_keys"]) == ("dedup key", [key])
    steps = [s for s in traced["timeline"] if s["kind"] != "note"]
    assert [s["kind"] for s in steps] == ["accepted", "failed", "deferred", "sent"]
    accepted_step, failed, deferred, sent = steps
    assert accepted_step["text"].startswith("trigger from default (alertmanager), route default")
    assert accepted_step["request_id"] == failed["request_id"] == sent["request_id"]
    assert failed["fields"]["status"] == 500 and "attempt 1: PagerDuty 500" in failed["text"]
    assert (deferred["fields"]["reason"], deferred["fields"]["status"]) == ("throttled", 429)
    assert sent["fields"]["status"] == 202 and sent["text"].startswith("trigger (retry): PagerDuty 202")
    assert [s["at"] for s in steps] == sorted(s["at"] for s in steps)
    (state,) = traced["state"]
    assert (state["route"], state["state"], state["delivered"], state["paged"], state["sends"]) == (
        "default",
        "triggered",
        True,
        True,
        1,
    )
    # the identity the 202 showed finds the same alert; the human timeline says the same
    by_identity = pdrelay("trace", accepted["alerts"][0]["identity"])
    assert f"identity → {key}" in by_identity
    assert "failed" in by_identity and "PagerDuty 500" in by_identity and "state now (dedup table):" in by_identity


def test_an_alert_refused_into_the_dlq_then_redriven(
    stack: LocalStack, pdrelay: Callable[..., str], state_dir: Path
) -> None:
    assert stack.emulator is not None
    stack.emulator.state.set_faults(
        [{"mode": "status", "status": 400, "count": 1, "errors": ["payload.summary is too dull"]}]
    )
    key = unique("disk-full")
    event = {
        "routing_key": "default",
        "event_action": "trigger",
        "dedup_key": key,
        "payload": {"summary": "Disk full on db-1", "source": "db-1", "severity": "critical"},
    }
    post(stack, "/v2/enqueue", event)
    dlq = stack.queue_urls["DeadLetterQueue"]
    wait_until(lambda: key in {m["dedup_key"] for m in redrive.inspect(stack.sqs, dlq).messages})
    assert "moved 1 message(s)" in pdrelay("redrive")
    wait_until(lambda: incident_status(stack, key) == ["triggered"] and delivered_logged(state_dir, key))

    traced = json.loads(pdrelay("trace", key, "--json"))

    steps = [s for s in traced["timeline"] if s["kind"] != "note"]
    assert [s["kind"] for s in steps] == ["accepted", "dead-lettered", "redriven", "sent"]
    assert steps[0]["text"] == "trigger from default (events_v2), route default → default"
    assert steps[1]["text"] == (
        "in the DLQ: PagerDuty rejected the event: Event object is invalid; payload.summary is too dull (HTTP 400)"
    )
    assert steps[2]["text"] == "back from the DLQ (redrive 1): received again"
    assert steps[3]["fields"]["status"] == 202
    (state,) = traced["state"]
    assert (state["state"], state["delivered"], state["paged"]) == ("triggered", True, True)
    assert "hold" not in state  # no longer marked as dead-lettered
    rendered = pdrelay("trace", key)
    assert "dead-lettered" in rendered and "redriven" in rendered
