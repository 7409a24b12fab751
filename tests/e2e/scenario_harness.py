"""A clock-driven relay for delivery scenarios (used by ``test_delivery_scenarios.py``).

Real parts only: moto in process holds template.yaml's queues and table (``create_resources``); the
ingest and dispatch handlers are the functions' own ``app.lambda_handler``, loaded from their CodeUri
as Lambda loads them; the dispatch handler is fed by the local stack's SQS event source
(:class:`~pdrelay.local.poller.SqsPoller`: receive up to 10 visible messages, build the SQS event,
invoke, delete what is not in ``batchItemFailures``); events go over real HTTP to the PagerDuty
emulator on 127.0.0.1.

Time is driven, not waited for. time-machine stops the wall clock (``tick=False``) and the driver
moves it in steps of :attr:`Relay.tick` seconds, polling the queue at every step until nothing is
visible (as Lambda's pollers would, several batches at once). What reads the wall clock follows:
moto's delays and visibility timeouts (so a message the dispatcher put back with a delay, or failed
with a back-off, comes back when the driven clock gets there), ingest's receipt times, the
dispatcher's clock, and the emulator's timestamps, so an incident's log says when PagerDuty applied
each event, in driven time. Two readings of the monotonic clock, which time-machine leaves alone,
are given the driven time: the dispatcher's (:class:`DrivenClock`, through ``set_clock``; its
``sleep``, a wait for a send due within a second, moves driven time as the invocation would take
that long) and the emulator's rate-limit windows (:class:`_EmulatorTime`), which would otherwise
count real seconds and never empty while a minute of driven time passes in a second.

Where it differs from Lambda: one execution environment handles every batch (Lambda runs up to the
template's 5, each with its own dispatcher), batches are not held back to fill up
(``MaximumBatchingWindowInSeconds``), and a handler's work takes no driven time except its waits.

What a scenario reads back (:meth:`Relay.row`): per alert and routing key, the events PagerDuty was
expected to apply (the ledger, written when ingest answered 202) against the incidents' logs;
deferrals per queue message (each copy put back on the queue is a new SQS message with the same
body; a back-off redelivers the same message); Events API calls (every valid event the emulator
received, answered or not).
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
import time_machine
from moto import mock_aws

from pdrelay.local import emulator as emulator_module
from pdrelay.local.apigw import api_gateway_event
from pdrelay.local.emulator import EmulatorServer
from pdrelay.local.poller import SqsPoller
from pdrelay.local.runtime import FakeLambdaContext
from pdrelay.local.stack import create_resources, queue_arn
from pdrelay.local.template import read_spec
from pdrelay.observability import copy_lines_to
from pdrelay.ops.status import queue_counts
from tests.conftest import ROOT, TOKEN, reset_pdrelay_caches

SPEC = read_spec(ROOT / "template.yaml")

# Routing keys: 32 characters, and distinct in their last four (the emulator shows only those).
PAYMENTS_KEY = "PAYMENTSR0UT1NGKEY000000000000P1"
TEAM_KEY = "TEAMR0UT1NGKEY0000000000000000T2"
PLATFORM_KEY = "PLATF0RMR0UT1NGKEY000000000000L3"
ROTATED_KEY = "R0TATEDTEAMKEY0000000000000000R4"

MAX_BATCHES_PER_STEP = 25  # invocations within one step: the template's 5 pollers, each a few batches
SETTLE_CHECK_SECONDS = 2.0  # how often (driven time) settling reads the queue's counts (slow on moto)


def config_doc(shop: dict[str, str] | None = None) -> dict[str, Any]:
    """Route 'payments' (one key) and route 'shop' with the ``shop`` destinations (name → key)."""
    shop = shop if shop is not None else {"team": TEAM_KEY, "platform": PLATFORM_KEY}
    return {
        "default_route": "payments",
        "callers": [{"name": "scenarios", "token": TOKEN}],
        "routes": {
            "payments": {"routing_key": PAYMENTS_KEY},
            "shop": {"destinations": {name: {"routing_key": key} for name, key in shop.items()}},
        },
    }


class DrivenClock:
    """The dispatcher's clock: wall and monotonic readings both move only when time is moved; a
    dispatcher that waits (``sleep``) moves it, as its invocation would take that long."""

    def __init__(self, traveller: Any) -> None:
        self.traveller = traveller

    def time(self) -> float:
        return time.time()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        self.traveller.shift(max(0.0, seconds))


class _EmulatorTime:
    """What the emulator module sees as ``time``: its monotonic reading (rate-limit windows) is the
    driven wall clock; ``sleep`` stays real."""

    @staticmethod
    def time() -> float:
        return time.time()

    @staticmethod
    def monotonic() -> float:
        return time.time()

    @staticmethod
    def sleep(seconds: float) -> None:
        time.sleep(seconds)


class _LogReasons:
    """Counts the dispatcher's log lines by message and reason (e.g. ``deferred: paced``), from the
    JSON lines pdrelay's logger writes (a copy of each, :func:`pdrelay.observability.copy_lines_to`)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def __call__(self, line: str) -> None:
        doc = json.loads(line)
        if doc.get("function") != "DispatchFunction" or doc.get("level") == "DEBUG":
            return
        reason, message = doc.get("reason"), doc.get("message", "")
        self.counts[f"{message}: {reason}" if reason else message] += 1


@dataclass
class Expected:
    """One event PagerDuty must apply to the incident of (routing key, dedup key)."""

    action: str
    accepted_at: float  # driven seconds since the scenario started
    applied_at: float | None = None


@dataclass
class Row:
    scenario: str
    accepted: int
    in_order: int
    lost: int
    duplicates: int
    left_open: int  # incidents that should have resolved and did not
    dead_lettered: int
    max_deferrals: int
    mean_deferrals: float
    retries: int  # redeliveries of the same message after a failure (back-off)
    after_fault: float | None  # seconds from the fault's end to the last delivery
    max_delay: float  # the longest time from ingest's 202 to PagerDuty applying the event
    calls: int
    settled: bool
    latency: dict[str, list[float]] = field(default_factory=dict)  # action → seconds accepted → applied
    applied_times: list[float] = field(default_factory=list)  # driven times of PagerDuty's applications
    reasons: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        after = "-" if self.after_fault is None else f"{self.after_fault:.1f} s"
        return (
            f"{self.scenario}: accepted {self.accepted}, in order {self.in_order}, lost {self.lost}, "
            f"duplicates {self.duplicates}, left open {self.left_open}, DLQ {self.dead_lettered}, "
            f"deferrals max {self.max_deferrals} mean {self.mean_deferrals:.1f}, after the fault {after}, "
            f"longest delay {self.max_delay:.1f} s, calls {self.calls}, settled {self.settled}; "
            f"{'; '.join(self.notes)}; log: {dict(self.reasons.most_common(6))}"
        )


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


class Relay:
    """The relay with a driven clock. Post through :meth:`post`, move time with :meth:`run_until`
    and :meth:`settle`, read the outcome with :meth:`row`."""

    def __init__(
        self,
        *,
        sqs: Any,
        dynamodb: Any,
        queue_urls: dict[str, str],
        table_name: str,
        pd: EmulatorServer,
        traveller: Any,
        ingest: Callable[[dict[str, Any], Any], Any],
        dispatch: Callable[[dict[str, Any], Any], Any],
        write_config: Callable[[dict[str, Any]], None],
        reasons: _LogReasons,
        tick: float,
    ) -> None:
        self.sqs, self.dynamodb, self.table_name = sqs, dynamodb, table_name
        self.queue_url, self.dlq_url = queue_urls["AlertQueue"], queue_urls["DeadLetterQueue"]
        self.pd, self.traveller, self.tick = pd, traveller, tick
        self.ingest = ingest
        self.write_config = write_config
        self.reasons = reasons
        self.routes: dict[str, list[str]] = {}
        self.start = time.time()
        self.ledger: dict[tuple[str, str], list[Expected]] = defaultdict(list)
        self.copies: dict[str, set[str]] = defaultdict(set)  # body digest → SQS message ids that carried it
        self.receives: Counter[str] = Counter()  # body digest → receives
        self.measured_from = 0.0
        self.calls_before = 0
        self.fault_end: float | None = None
        self._counted_fault = False
        function = SPEC.functions["DispatchFunction"]
        self.poller = SqsPoller(
            sqs, self.queue_url, queue_arn("AlertQueue"), function, self._recording(dispatch), workers=1
        )
        self.configure(config_doc())

    # -- input ------------------------------------------------------------------------------------
    def configure(self, doc: dict[str, Any]) -> None:
        """The configuration the handlers read from now on (as after a push that was picked up)."""
        self.write_config(doc)
        self.routes = {
            name: [route["routing_key"]]
            if "routing_key" in route
            else [d["routing_key"] for d in route["destinations"].values()]
            for name, route in doc["routes"].items()
        }

    def post(self, route: str, action: str, dedup_key: str, *, expect_on: list[str] | None = None) -> str:
        """One Events API v2 event to ingest's ``/v2/enqueue`` (``routing_key`` names the route); PagerDuty
        must then apply it on ``expect_on`` (default: the route's routing keys)."""
        event: dict[str, Any] = {"routing_key": route, "event_action": action, "dedup_key": dedup_key}
        if action == "trigger":
            event["payload"] = {"summary": f"{dedup_key} is failing", "source": "scenario", "severity": "critical"}
        headers = {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
        answer = self.ingest(
            api_gateway_event("POST", "/v2/enqueue", headers, json.dumps(event).encode()),
            FakeLambdaContext("IngestFunction"),
        )
        assert answer["statusCode"] == 202, answer["body"]
        dedup: str = json.loads(answer["body"])["dedup_key"]
        for routing_key in expect_on if expect_on is not None else self.routes[route]:
            self.ledger[(routing_key, dedup)].append(Expected(action, self.now))
        return dedup

    def faults(self, *rules: dict[str, Any]) -> None:
        """PagerDuty misbehaves from now on. Counted rules end by themselves: the fault's end is the
        moment the last use is spent; others end with :meth:`end_faults` (or :meth:`fault_ended`)."""
        self.pd.state.set_faults(list(rules))
        self._counted_fault = all("count" in rule for rule in rules)
        self.fault_end = None

    def end_faults(self) -> None:
        self.pd.state.set_faults([])
        self.fault_ended()

    def fault_ended(self) -> None:
        self.fault_end = self.now

    def forget_alert(self, dedup_key: str) -> int:
        """Delete the table's items for this alert (every routing key), as a restore or a TTL would."""
        key_names = [k["AttributeName"] for k in SPEC.tables["DedupTable"].key_schema]
        pages = self.dynamodb.get_paginator("scan").paginate(
            TableName=self.table_name,
            FilterExpression="dedup_key = :d",
            ExpressionAttributeValues={":d": {"S": dedup_key}},
        )
        deleted = 0
        for page in pages:
            for item in page["Items"]:
                self.dynamodb.delete_item(TableName=self.table_name, Key={k: item[k] for k in key_names})
                deleted += 1
        return deleted

    def measure_from_now(self) -> None:
        """The row's acceptance, latency, deferral and call figures count from here (after a warm-up)."""
        self.measured_from = self.now
        self.copies.clear()
        self.receives.clear()
        self.reasons.counts.clear()
        with self.pd.state.lock:
            self.calls_before = len(self.pd.state.requests)

    # -- driving time -------------------------------------------------------------------------------
    @property
    def now(self) -> float:
        return time.time() - self.start

    def _recording(
        self, dispatch: Callable[[dict[str, Any], Any], Any]
    ) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
        def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
            for record in event["Records"]:
                digest = hashlib.sha256(record["body"].encode()).hexdigest()
                self.copies[digest].add(record["messageId"])
                self.receives[digest] += 1
            answer: dict[str, Any] = dispatch(event, context)
            return answer

        return handler

    def poll(self) -> None:
        """Invoke the dispatch handler until nothing is visible (time stands still meanwhile)."""
        for _batch in range(MAX_BATCHES_PER_STEP):
            if self.poller.poll_once(wait_seconds=0) == 0:
                break
            if self._counted_fault and self.fault_end is None and self._faults_spent():
                self.fault_ended()

    def _faults_spent(self) -> bool:
        with self.pd.state.lock:
            return all(rule.get("count", 0) <= 0 for rule in self.pd.state.faults)

    def run_until(self, moment: float) -> None:
        """Poll and move time in steps until driven time reaches ``moment`` (seconds since start)."""
        while self.now < moment - 1e-9:
            self.poll()
            self.traveller.shift(min(self.tick, moment - self.now))

    def queue_empty(self) -> bool:
        return not any(queue_counts(self.sqs, self.queue_url).values())

    def settle(self, limit: float = 1800.0) -> bool:
        """Run until the alert queue is empty (nothing visible, in flight or delayed), at most ``limit`` s.

        The queue's counts are read every few driven seconds (moto computes them from every message,
        slowly): the run may go on a little after the last delivery, which changes no figure."""
        deadline, next_check = self.now + limit, self.now
        while self.now < deadline:
            self.poll()
            if self.now >= next_check:
                if self.queue_empty():
                    return True
                next_check = self.now + SETTLE_CHECK_SECONDS
            self.traveller.shift(self.tick)
        return False

    # -- outcome --------------------------------------------------------------------------------------
    def _incidents(self, routing_key: str) -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for incident in sorted(self.pd.state.snapshot(routing_key), key=lambda i: int(i["number"])):
            found[incident["dedup_key"]].append(incident)
        return found

    def row(self, scenario: str, settled: bool) -> Row:
        lost = duplicates = left_open = in_order = accepted = 0
        latency: dict[str, list[float]] = defaultdict(list)
        applied_times: list[float] = []
        keys = {rk for rk, _ in self.ledger} | {k for keys in self.routes.values() for k in keys}
        incidents = {rk: self._incidents(rk) for rk in sorted(keys)}
        for routing_key, by_dedup in incidents.items():
            for dedup, found in by_dedup.items():
                applied_times.extend(_seconds(e["at"]) - self.start for i in found for e in i["log"])
                if (routing_key, dedup) not in self.ledger:
                    duplicates += len(found)  # an incident nobody asked for
        for (routing_key, dedup), expected in self.ledger.items():
            found = incidents[routing_key].get(dedup, [])
            log = [(e["action"], _seconds(e["at"]) - self.start) for i in found for e in i["log"]]
            actions, wanted = [a for a, _ in log], [e.action for e in expected]
            prefix = 0
            while prefix < min(len(actions), len(wanted)) and actions[prefix] == wanted[prefix]:
                expected[prefix].applied_at = log[prefix][1]
                prefix += 1
            lost += sum(max(0, wanted.count(a) - actions.count(a)) for a in set(wanted))
            duplicates += max(0, len(found) - 1) + sum(max(0, actions.count(a) - wanted.count(a)) for a in set(actions))
            if wanted[-1] == "resolve" and (not found or found[-1]["status"] != "resolved"):
                left_open += 1
            for item in expected:
                if item.accepted_at < self.measured_from:
                    continue
                accepted += 1
                if item.applied_at is not None:
                    in_order += 1
                    latency[item.action].append(max(0.0, item.applied_at - item.accepted_at))
        applied_times = [t for t in applied_times if t >= self.measured_from - 0.001]  # stamps are in ms
        deferrals = [len(ids) - 1 for ids in self.copies.values()]
        retries = sum(self.receives[d] - len(ids) for d, ids in self.copies.items())
        dlq = queue_counts(self.sqs, self.dlq_url)
        with self.pd.state.lock:
            calls = len(self.pd.state.requests) - self.calls_before
        last = max(applied_times, default=None)
        return Row(
            scenario=scenario,
            accepted=accepted,
            in_order=in_order,
            lost=lost,
            duplicates=duplicates,
            left_open=left_open,
            dead_lettered=sum(dlq.values()),
            max_deferrals=max(deferrals, default=0),
            mean_deferrals=mean([float(d) for d in deferrals]),
            retries=retries,
            after_fault=None if last is None or self.fault_end is None else max(0.0, last - self.fault_end),
            max_delay=max((d for delays in latency.values() for d in delays), default=0.0),
            calls=calls,
            settled=settled,
            latency=dict(latency),
            applied_times=sorted(applied_times),
            reasons=Counter(self.reasons.counts),
        )


@contextmanager
def driven_relay(
    pd: EmulatorServer, workdir: Path, monkeypatch: pytest.MonkeyPatch, tick: float = 0.25, **env: str
) -> Iterator[Relay]:
    """A fresh relay (new queues and table, the emulator reset) on a stopped clock; ``env`` adds
    PDRELAY_* settings to the defaults."""
    from pdrelay import config
    from pdrelay.delivery.dispatcher import set_clock

    config_path = workdir / "pdrelay.json"
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "pdrelay",
        "POWERTOOLS_METRICS_NAMESPACE": "pdrelay",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "PDRELAY_EVENTS_URL": pd.url,
        "PDRELAY_CONFIG": str(config_path),
        "PDRELAY_CONFIG_MAX_AGE": "0",
        "PDRELAY_INGEST_CONCURRENCY": "1",  # one process takes every request: the callers' bursts are all its own
        **env,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS", "AWS_PROFILE", "PDRELAY_ROUTING_KEY", "PDRELAY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(emulator_module, "time", _EmulatorTime)
    pd.state.reset()

    def write_config(doc: dict[str, Any]) -> None:
        config_path.write_text(json.dumps(doc))
        config.clear_cache()

    reasons = _LogReasons()
    stop_counting = copy_lines_to(reasons)
    saved_random = random.getstate()
    random.seed(0)  # the dispatcher's jitter: the same figures on every run of the same code
    traveller = time_machine.travel(datetime.now(UTC), tick=False)
    try:
        with mock_aws():
            moved = traveller.start()
            sqs, dynamodb = boto3.client("sqs"), boto3.client("dynamodb")
            queues, tables = create_resources(SPEC, sqs, dynamodb)
            monkeypatch.setenv("PDRELAY_QUEUE_URL", queues["AlertQueue"])
            monkeypatch.setenv("PDRELAY_DLQ_URL", queues["DeadLetterQueue"])
            monkeypatch.setenv("PDRELAY_TABLE_NAME", tables["DedupTable"])
            reset_pdrelay_caches()
            set_clock(DrivenClock(moved))
            yield Relay(
                sqs=sqs,
                dynamodb=dynamodb,
                queue_urls=queues,
                table_name=tables["DedupTable"],
                pd=pd,
                traveller=moved,
                ingest=SPEC.functions["IngestFunction"].load_handler(),
                dispatch=SPEC.functions["DispatchFunction"].load_handler(),
                write_config=write_config,
                reasons=reasons,
                tick=tick,
            )
    finally:
        random.setstate(saved_random)
        traveller.stop()
        stop_counting()
        pd.state.set_faults([])
        set_clock(None)
        reset_pdrelay_caches()
