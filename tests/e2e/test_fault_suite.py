"""The fault suite: alerts through the local stack while PagerDuty (the emulator) misbehaves and
dispatchers are killed mid-batch. For every alert answered 202: exactly one incident with the right
final state, or the alert in the DLQ with its reason; after a redrive, all delivered; above the
per-key limit, no 429 lost and the send rate under the limit. Prints a summary table."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from pdrelay.local.stack import LocalStack, StackOptions
from pdrelay.ops import redrive
from pdrelay.ops.resources import Resources, run_redrive
from tests.conftest import ROOT, load_event, unique

pytestmark = pytest.mark.e2e

TOKEN = "fault-suite-token-000000001"
KEYS = {
    "payments": "PAYMENTSR0UT1NGKEY00000000000001",
    "search": "SEARCHR0UT1NGKEY0000000000000002",
    "storage": "ST0RAGER0UT1NGKEY000000000000003",
}
RATE_LIMIT, RATE_WINDOW = 20, 2.0


@dataclass
class Ledger:
    """Every alert answered 202, and what its final state must be."""

    expected: dict[str, str] = field(default_factory=dict)  # dedup key → triggered | resolved
    routes: dict[str, str] = field(default_factory=dict)
    docs: dict[str, dict[str, Any]] = field(default_factory=dict)
    accepted: int = 0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    config = tmp_path_factory.mktemp("faults") / "pdrelay.json"
    config.write_text(
        json.dumps(
            {
                "default_route": "payments",
                "callers": [{"name": "suite", "token": TOKEN}],
                "routes": {name: {"routing_key": key} for name, key in KEYS.items()},
            }
        )
    )
    options = StackOptions(
        template=ROOT / "template.yaml",
        port=0,
        emulator_port=0,
        config=str(config),
        retry_base_seconds=1,
        env={
            "PDRELAY_READ_TIMEOUT": "1",
            "PDRELAY_CONNECT_TIMEOUT": "1",
            "PDRELAY_RETRY_MAX_SECONDS": "3",
            "PDRELAY_THROTTLE_PAUSE_SECONDS": "2",
            "PDRELAY_BREAKER_THRESHOLD": "4",
            "PDRELAY_BREAKER_COOLDOWN_SECONDS": "2",
            "PDRELAY_BREAKER_MAX_COOLDOWN_SECONDS": "4",
            "PDRELAY_RATE_LIMIT": str(RATE_LIMIT),
            "PDRELAY_RATE_WINDOW_SECONDS": str(RATE_WINDOW),
        },
        # Lambda would wait the template's 180 s before redelivering a crashed batch; the suite can't.
        queue_overrides={"AlertQueue": {"VisibilityTimeout": "3"}},
        crash_rate=0.15,
    )
    with LocalStack(options) as running:
        yield running


@pytest.fixture(scope="module")
def ledger() -> Ledger:
    return Ledger()


def post(
    stack: LocalStack, ledger: Ledger, route: str, doc: dict[str, Any] | None = None, expect: str = "triggered"
) -> str:
    if doc is None:
        doc = load_event("formats/alertmanager/firing.json")
        doc["alerts"][0]["fingerprint"] = unique(route)
        doc["alerts"][0]["annotations"]["summary"] = f"{route} alert {doc['alerts'][0]['fingerprint']}"
    answer = requests.post(
        f"{stack.url}/v1/alerts/alertmanager?route={route}",
        json=doc,
        timeout=10,
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert answer.status_code == 202, answer.text
    key = answer.json()["alerts"][0]["dedup_key"]
    ledger.accepted += 1
    ledger.expected[key] = expect
    ledger.routes[key] = route
    ledger.docs[key] = doc
    return key


def resolve(stack: LocalStack, ledger: Ledger, key: str) -> None:
    doc = json.loads(json.dumps(ledger.docs[key]))
    doc["status"] = "resolved"
    doc["alerts"][0].update(status="resolved", endsAt="2026-11-24T09:30:00Z")
    post(stack, ledger, ledger.routes[key], doc, expect="resolved")


def incidents(stack: LocalStack) -> dict[str, list[dict[str, Any]]]:
    assert stack.emulator is not None
    found: dict[str, list[dict[str, Any]]] = {}
    for incident in stack.emulator.state.snapshot():
        found.setdefault(incident["dedup_key"], []).append(incident)
    return found


def dead_letters(stack: LocalStack) -> dict[str, str]:
    inspection = redrive.inspect(stack.sqs, stack.queue_urls["DeadLetterQueue"], keep=10_000)
    return {m["dedup_key"]: m["reason"] for m in inspection.messages}


class Settled:
    def __init__(self, stack: LocalStack, keys: list[str], ledger: Ledger) -> None:
        self.stack, self.keys, self.ledger = stack, keys, ledger

    def unsettled(self) -> dict[str, list[str]]:
        seen = incidents(self.stack)
        return {
            k: [i["status"] for i in seen.get(k, [])]
            for k in self.keys
            if [i["status"] for i in seen.get(k, [])] != [self.ledger.expected[k]]
        }

    def __call__(self) -> bool:
        return not self.unsettled()

    def __str__(self) -> str:
        left = self.unsettled()
        return (
            f"{len(left)} alert(s) not in their final state: {dict(list(left.items())[:5])}; "
            f"queues {self.stack.queue_depths()}; DLQ {dead_letters(self.stack)}"
        )


def settled(stack: LocalStack, keys: list[str], ledger: Ledger) -> Settled:
    return Settled(stack, keys, ledger)


def wait_until(predicate: Callable[[], bool], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    raise AssertionError(f"the relay did not settle in time: {predicate}")


def test_1_mixed_faults_and_crashes_still_give_one_incident_per_alert(stack: LocalStack, ledger: Ledger) -> None:
    assert stack.emulator is not None
    stack.emulator.state.set_faults(
        [
            {"mode": "rate_limit", "limit": RATE_LIMIT, "window": RATE_WINDOW},
            {"mode": "status", "status": 500, "count": 3},
            {"mode": "slow", "delay": 2, "count": 2},
            {"mode": "drop", "count": 2, "apply": False},
            {"mode": "status", "status": 502, "count": 2},
            {"mode": "drop", "count": 2, "apply": True},
            {"mode": "status", "status": 429, "count": 3, "retry_after": 1},
        ]
    )
    keys = [post(stack, ledger, route) for route in KEYS for _ in range(10)]
    wait_until(settled(stack, keys, ledger))
    for key in keys[::2]:
        resolve(stack, ledger, key)
    wait_until(settled(stack, keys, ledger))


def test_2_rejected_events_wait_in_the_dlq_with_the_reason_then_redrive_delivers(
    stack: LocalStack, ledger: Ledger
) -> None:
    assert stack.emulator is not None
    stack.emulator.state.set_faults([{"mode": "status", "status": 400, "count": 3}])
    keys = [post(stack, ledger, "search") for _ in range(3)]
    wait_until(lambda: set(keys) <= set(dead_letters(stack)))
    reasons = dead_letters(stack)
    assert all("PagerDuty rejected the event" in reasons[k] for k in keys)
    stack.emulator.state.set_faults([])
    resources = Resources(
        stack.queue_urls["AlertQueue"],
        stack.queue_urls["DeadLetterQueue"],
        stack.table_names["DedupTable"],
        stack.moto_url,
        endpoint_urls=stack.aws_endpoints,
    )
    assert run_redrive({"action": "redrive", "route": "search"}, resources)["moved"] == 3
    wait_until(settled(stack, keys, ledger))


def test_3_a_full_outage_holds_alerts_in_the_queue_instead_of_draining_them_to_the_dlq(
    stack: LocalStack, ledger: Ledger
) -> None:
    assert stack.emulator is not None
    stack.emulator.state.set_faults([{"mode": "outage", "status": 503}])
    before = stack.emulator.state.answers[503]
    keys = [post(stack, ledger, "storage") for _ in range(10)]
    time.sleep(6)
    calls_during_outage = stack.emulator.state.answers[503] - before
    assert calls_during_outage < 10 * 3  # the breaker stopped spending attempts
    assert not set(keys) & set(dead_letters(stack))
    stack.emulator.state.set_faults([{"mode": "rate_limit", "limit": RATE_LIMIT, "window": RATE_WINDOW}])
    wait_until(settled(stack, keys, ledger))


def test_4_above_the_per_key_limit_nothing_is_lost_and_the_rate_stays_under_it(
    stack: LocalStack, ledger: Ledger
) -> None:
    keys = [post(stack, ledger, "payments") for _ in range(50)]
    wait_until(settled(stack, keys, ledger), timeout=150)


def test_5_summary(stack: LocalStack, ledger: Ledger, capsys: pytest.CaptureFixture[str]) -> None:
    assert stack.emulator is not None
    seen = incidents(stack)
    dlq = dead_letters(stack)
    right = [k for k, state in ledger.expected.items() if [i["status"] for i in seen.get(k, [])] == [state]]
    duplicates = [k for k in ledger.expected if len(seen.get(k, [])) > 1]
    rates = stack.emulator.state.max_rate(RATE_WINDOW)
    crashes = sum(p.crashes for p in stack.pollers)
    answers = stack.emulator.state.answers
    server_errors = sum(n for status, n in answers.items() if status >= 500)
    rows = [
        ("alerts answered 202 (firing + resolved)", ledger.accepted),
        ("distinct alerts", len(ledger.expected)),
        ("delivered, right final state", len(right)),
        ("in the DLQ (after the redrive)", len(dlq)),
        ("duplicate incidents", len(duplicates)),
        (f"max events per key in any {RATE_WINDOW:g} s (limit {RATE_LIMIT})", max(rates.values())),
        ("PagerDuty answers 429 / 5xx / 400", f"{answers[429]} / {server_errors} / {answers[400]}"),
        ("dispatchers killed mid-batch", crashes),
    ]
    with capsys.disabled():
        print("\n\nfault suite summary")
        for label, value in rows:
            print(f"  {label:<48} {value}")
    assert len(right) == len(ledger.expected)
    assert duplicates == [] and dlq == {}
    assert max(rates.values()) <= RATE_LIMIT
