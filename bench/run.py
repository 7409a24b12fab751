"""pdrelay benchmark: prints figures, asserts nothing. Run with `make bench` (ARGS="--events 500").

1. Dispatch throughput: the real Dispatcher (dedup table in moto, in process) sending to the
   PagerDuty emulator on 127.0.0.1, next to a bare ``requests.Session`` loop posting the same events.
2. Cold start (bench/coldstart.py): each handler module (``pdrelay.handlers.<name>``) imported in a
   fresh interpreter, next to ``import boto3`` alone, with the interpreter's peak RSS (``imports``);
   the first invocation's extra time, memory and boto3 Sessions over the second's (``coldstart``).
3. Format parsing: every fixture under events/formats parsed (detection with ``auto``, then the
   format's parse and the Events API body), per format, next to ``json.loads`` of the same bodies.
4. Ingest: the ingest handler over moto, with and without the per-caller rate limit.
5. Dispatch cost: DynamoDB and SQS requests and billed units per alert (bench/aws_meter.py counts
   them through botocore's event hooks) for the dispatcher Lambda builds, per delivery scenario:
   new trigger, repeat, update, resolve, resolve of an unknown alert, a 500 or a 429 then success.
6. End to end (bench/pipeline.py, ``pipeline``): dollars per million alerts per scenario through
   the real ingest and dispatch handlers, every AWS service counted, at bench/prices.py's prices.
7. The local stack (bench/local_stack.py, ``local``): ``pdrelay dev`` as users run it, under 5 and
   50 Alertmanager alerts a second: POST and end-to-end latency, CPU per alert.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import textwrap
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import coldstart
from aws_meter import WRITES, AwsMeter, Call, moto_item_reader

if TYPE_CHECKING:
    from pdrelay.models import QueueMessage

ROOT = Path(__file__).resolve().parents[1]
ROUTING_KEY = "BENCHR0UT1NGKEY00000000000000001"


def _messages(count: int) -> list:
    from pdrelay.formats import ParseContext, alertmanager
    from pdrelay.models import make_message

    now = datetime.now(UTC)
    doc_alerts = [
        {
            "status": "firing",
            "labels": {"alertname": "Bench", "instance": f"host-{i}", "severity": "warning"},
            "annotations": {"summary": f"bench alert {i}"},
            "startsAt": "2026-11-24T09:00:00Z",
            "fingerprint": f"bench{i:08d}",
        }
        for i in range(count)
    ]
    doc = {"version": "4", "receiver": "bench", "groupKey": "{}:{}", "status": "firing", "alerts": doc_alerts}
    parsed = alertmanager.parse(doc, ParseContext(received_at=now))
    alerts = parsed if isinstance(parsed, list) else parsed.alerts
    return [
        make_message(a, route="default", routing_key=ROUTING_KEY, received_at=now, request_id="bench") for a in alerts
    ]


class MemoryStore:
    """The dedup store's interface over a dict: isolates pdrelay's own cost from DynamoDB's."""

    def __init__(self) -> None:
        self.items: dict = {}

    def get(self, pk: str):
        return self.items.get(pk)

    def write(self, record, previous_version) -> None:
        self.items[record.pk] = record

    def mark_delivered(self, pk: str, version: int, **_changes: object) -> bool:
        from dataclasses import replace

        self.items[pk] = replace(self.items[pk], delivered=True, lease_until=0)
        return True

    def get_doc(self, pk: str, **_options: object):
        return self.items.get(("doc", pk), ({}, 0))

    def put_doc(self, pk: str, doc: dict, previous_version: int, expires: bool = True) -> int:
        self.items[("doc", pk)] = (doc, previous_version + 1)
        return previous_version + 1

    def release(self, pk: str, version: int) -> None:
        pass

    def get_breaker(self):
        return None

    def put_breaker(self, breaker, previous_version: int) -> None:
        pass


def bench_dispatch(count: int) -> None:
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
    import boto3
    import requests
    from moto import mock_aws

    from pdrelay.delivery.dispatcher import Dispatcher
    from pdrelay.delivery.events_api import EventsClient, build_event
    from pdrelay.local.emulator import EmulatorServer
    from pdrelay.local.stack import create_resources
    from pdrelay.local.template import read_spec
    from pdrelay.settings import Settings
    from pdrelay.table import DedupStore

    messages = _messages(count)
    emulator = EmulatorServer().start()
    try:
        # Bare loop: the same events, one pooled session, no dedup, no decisions.
        events = [build_event(m, "trigger") for m in messages]
        session = requests.Session()
        start = time.perf_counter()
        for event in events:
            session.post(emulator.url + "/v2/enqueue", json=event, timeout=5).raise_for_status()
        bare = time.perf_counter() - start
        emulator.state.reset()

        with mock_aws():
            spec = read_spec(ROOT / "template.yaml")
            sqs, ddb = boto3.client("sqs"), boto3.client("dynamodb")
            queues, tables = create_resources(spec, sqs, ddb)
            # Pacing off (one routing key, far above 120/min): this measures pdrelay's own overhead.
            settings = Settings.from_env(
                {
                    "PDRELAY_EVENTS_URL": emulator.url,
                    "PDRELAY_RATE_LIMIT": "100000000",
                    "PDRELAY_DLQ_URL": queues["DeadLetterQueue"],
                    "PDRELAY_QUEUE_URL": queues["AlertQueue"],
                }
            )
            dispatcher = Dispatcher(settings, DedupStore(ddb, tables["DedupTable"]), EventsClient(emulator.url), sqs)
            bodies = [m.to_json() for m in messages]
            start = time.perf_counter()
            outcomes = [dispatcher.process(b).result for b in bodies]
            full = time.perf_counter() - start
            assert outcomes.count("delivered") == count, outcomes[:5]
            start = time.perf_counter()
            repeats = [dispatcher.process(b).result for b in bodies]
            skipped = time.perf_counter() - start
            assert repeats.count("skipped") == count

            # The same alerts on a route with storm control (a cap high enough never to roll up):
            # each new incident also reads and writes the route's per-minute counter.
            from pdrelay.config import RelayConfig

            storm = RelayConfig.model_validate(
                {
                    "default_route": "default",
                    "callers": [{"name": "b", "token": "bench-token-0000000000"}],
                    "routes": {
                        "default": {
                            "routing_key": ROUTING_KEY,
                            "storm": {"max_new_per_minute": 10000, "min_resend_seconds": 60},
                        }
                    },
                }
            )
            ddb.delete_table(TableName=tables["DedupTable"])
            _queues, tables = create_resources(spec, sqs, ddb)
            emulator.state.reset()
            policed = Dispatcher(
                settings, DedupStore(ddb, tables["DedupTable"]), EventsClient(emulator.url), sqs, config=lambda: storm
            )
            start = time.perf_counter()
            outcomes = [policed.process(b).result for b in bodies]
            with_storm = time.perf_counter() - start
            assert outcomes.count("delivered") == count, outcomes[:5]
        emulator.state.reset()
        memory = Dispatcher(settings, MemoryStore(), EventsClient(emulator.url), None)  # type: ignore[arg-type]
        start = time.perf_counter()
        outcomes = [memory.process(b).result for b in bodies]
        in_memory = time.perf_counter() - start
        assert outcomes.count("delivered") == count
    finally:
        emulator.stop()
    print(f"dispatch throughput ({count} alerts, emulator on 127.0.0.1, moto DynamoDB in process)")
    print(f"  bare requests.Session loop : {count / bare:8.1f} events/s")
    print(
        f"  pdrelay Dispatcher (new)   : {count / full:8.1f} events/s   ratio {full / bare:5.2f}x the bare loop's time"
    )
    print(
        f"  Dispatcher, in-memory store: {count / in_memory:8.1f} events/s   ratio {in_memory / bare:5.2f}x"
        "   (pdrelay's own cost without DynamoDB)"
    )
    print(f"  pdrelay Dispatcher (repeat): {count / skipped:8.1f} events/s   (skipped, no PagerDuty call)")
    print(
        f"  with storm control on      : {count / with_storm:8.1f} events/s   ratio {with_storm / bare:5.2f}x"
        "   (per-minute counter read and written per new incident)"
    )
    print(f"  per alert: bare {bare / count * 1000:.2f} ms, dispatcher {full / count * 1000:.2f} ms")


# -- dispatch cost: AWS requests and billed units per alert ---------------------------------------
COST_TOKEN = "bench-token-0000000002"
GOAL_REQUESTS, GOAL_WRU = 3, 3  # per alert in dispatch on the common path
# Alerts meeting a fault come further apart: past the 429 window (pauses double only while 429s go
# on) and the breaker's memory, so each one meets a single transient fault, not an outage.
FAULT_SPACING = 120.0
READS = ("GetItem", "BatchGetItem", "TransactGetItems")
QUERIES = ("Query", "Scan")


@dataclass(frozen=True)
class CostScenario:
    name: str
    event: str  # the event measured: "firing", "changed" (the same alert, another summary), "resolved"
    fresh: bool = True  # new alerts; False: the alerts of the scenario above, as it left them
    fault: int | None = None  # PagerDuty's answer to its first send (the next one succeeds)
    common: bool = False  # on the common path: the cost goal applies


COST_SCENARIOS = (
    CostScenario("new trigger", "firing", common=True),
    CostScenario("repeat trigger, same content", "firing", fresh=False),
    CostScenario("trigger, changed content", "changed", fresh=False, common=True),
    CostScenario("resolve of an open alert", "resolved", fresh=False, common=True),
    CostScenario("resolve the table never saw", "resolved"),
    CostScenario("new trigger, 500 then retry", "firing", fault=500),
    CostScenario("new trigger, 429 then retry", "firing", fault=429),
)


@dataclass
class AlertCost:
    dedup_key: str
    result: str  # the outcome of each processing, "retry→delivered"
    calls: list[Call]
    pagerduty: list[float]  # when each Events API call arrived (emulator's time.time())


def _sample_alert(fingerprint: str, kind: str, started: datetime, now: datetime) -> QueueMessage:
    """The Alertmanager sample in events/ for one alert, queued as ingest queues it."""
    from pdrelay.formats import ParseContext, alertmanager
    from pdrelay.models import make_message

    name = "resolved" if kind == "resolved" else "firing"
    doc = json.loads((ROOT / "events" / "formats" / "alertmanager" / f"{name}.json").read_text())
    alert = doc["alerts"][0]
    alert.update(fingerprint=fingerprint, startsAt=started.strftime("%Y-%m-%dT%H:%M:%SZ"))
    if kind == "resolved":
        alert["endsAt"] = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    if kind == "changed":
        alert["annotations"]["summary"] += " (now 12 %)"
    (parsed,) = alertmanager.parse(doc, ParseContext(received_at=now)).alerts
    return make_message(parsed, route="default", routing_key=ROUTING_KEY, received_at=now, request_id="bench-cost")


class CostRun:
    """The dispatcher Lambda would build (``get_dispatcher()``) on moto and the PagerDuty emulator,
    fed from the alert queue with real receipt handles; a manual clock moves between alerts and
    through retry delays, so nothing waits. The meter sees the dispatcher's AWS clients."""

    def __init__(self, dispatcher: Any, meter: AwsMeter, sqs: Any, queue_url: str, emulator: Any, clock: Any) -> None:
        self.dispatcher, self.meter, self.sqs, self.queue_url = dispatcher, meter, sqs, queue_url
        self.emulator, self.clock = emulator, clock
        self.handled: list[str] = []  # receipt handles of messages processed

    def _receive(self, bodies: list[str]) -> list[tuple[str, dict[str, Any]]]:
        """The messages as Lambda hands them over: receipt handle, attributes in SendMessage's shape."""
        wanted = {body: i for i, body in enumerate(bodies)}
        received: list[tuple[str, dict[str, Any]]] = [("", {})] * len(bodies)
        for _attempt in range(10 * len(bodies) + 10):
            if not wanted:
                return received
            got = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0, MessageAttributeNames=["All"]
            )
            for m in got.get("Messages", []):
                if m["Body"] in wanted:
                    attributes = m.get("MessageAttributes", {}).items()
                    received[wanted.pop(m["Body"])] = (
                        m["ReceiptHandle"],
                        {k: {"DataType": v["DataType"], "StringValue": v["StringValue"]} for k, v in attributes},
                    )
        raise RuntimeError("messages put on the alert queue did not come back")

    def feed(self, messages: list[QueueMessage]) -> list[tuple[str, dict[str, Any]]]:
        """Queue ``messages`` as ingest does (un-metered: not dispatch) and receive them."""
        from pdrelay.ingest.enqueue import enqueue

        enqueue(messages, self.sqs, self.queue_url)
        return self._receive([m.to_json() for m in messages])

    def deliver(self, message: QueueMessage, handle: str, attributes: dict[str, Any], fault: int | None) -> AlertCost:
        """Process ``message`` as Lambda would, and again as SQS hands it back (after a failure, or
        the copy put back after a deferral), moving the clock by the delay the dispatcher asked for."""
        from pdrelay.errors import RetryableDelivery

        body, receives = message.to_json(), 1
        start, requests = len(self.meter.calls), len(self.emulator.state.requests)
        if fault is not None:
            self.emulator.state.set_faults([{"mode": "status", "status": fault, "count": 1}])
        results = []
        for _attempt in range(5):
            mark = len(self.meter.calls)
            self.handled.append(handle)
            try:
                outcome = self.dispatcher.process(
                    body, receipt_handle=handle, receive_count=receives, message_attributes=attributes
                )
            except RetryableDelivery:
                results.append("retry")
                delays = [c.params.get("VisibilityTimeout", 0) for c in self.meter.calls[mark:]]
                self.clock.advance(max([0, *delays]))
                receives += 1
                continue
            results.append(outcome.result)
            copies = [
                c.params
                for c in self.meter.calls[mark:]
                if c.operation == "SendMessage" and c.params.get("QueueUrl") == self.queue_url
            ]
            if outcome.result != "deferred" or not copies:
                break
            copy = copies[-1]  # put back with a delay: sent again here without one, once the clock has moved
            self.clock.advance(copy.get("DelaySeconds", 0))
            body, receives = copy["MessageBody"], 1
            self.sqs.send_message(
                QueueUrl=self.queue_url, MessageBody=body, MessageAttributes=copy.get("MessageAttributes", {})
            )
            ((handle, attributes),) = self._receive([body])
        self.emulator.state.set_faults([])
        pagerduty = [t for t, _key in self.emulator.state.requests[requests:]]
        return AlertCost(message.dedup_key, "→".join(results), self.meter.calls[start:], pagerduty)

    def delete_handled(self) -> None:
        """Lambda deletes the messages of a batch it handled (this also keeps moto's receives quick)."""
        handles = list(dict.fromkeys(self.handled))  # a retried message keeps its handle
        for i in range(0, len(handles), 10):
            entries = [{"Id": str(n), "ReceiptHandle": h} for n, h in enumerate(handles[i : i + 10])]
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
        self.handled.clear()


def _label(call: Call, dedup_keys: set[str]) -> str:
    """What a DynamoDB call is about: an alert item, a control item (by its key's prefix) or an index."""
    if call.key.startswith("index ") or call.key == "table":
        return call.key
    if any(k in call.key for k in dedup_keys):
        return "alert"
    return call.key.split("#")[0] if "#" in call.key else call.key[:16]


def _alert_item_size(calls: list[Call], dedup_keys: set[str]) -> str:
    """The average size in bytes of the alert items as last written ("-" when none was)."""
    last = {c.key: c.size for c in calls if c.operation in WRITES and not c.error and _label(c, dedup_keys) == "alert"}
    return f"{sum(last.values()) / len(last):.0f}" if last else "-"


def _sequence(cost: AlertCost, dedup_keys: set[str]) -> str:
    steps = [(t, "PagerDuty") for t in cost.pagerduty]
    for call in cost.calls:
        if call.service == "dynamodb":
            units = f"{call.wru:g} WRU" if call.operation in WRITES else f"{call.rru:g} RRU"
            failed = " (condition failed)" if call.error == "ConditionalCheckFailedException" else ""
            failed = failed or (f" ({call.error})" if call.error else "")
            steps.append((call.at, f"{call.operation} {_label(call, dedup_keys)} {units}{failed}"))
        else:
            steps.append((call.at, f"{call.service.upper()} {call.operation}"))
    return " → ".join(text for _t, text in sorted(steps))


def bench_costs(count: int, spacing: float) -> None:
    """What dispatch costs in DynamoDB and SQS requests and billed units, per alert and scenario."""
    env = {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "PDRELAY_CONFIG": "",  # the one-route configuration: route "default" to ROUTING_KEY
        "PDRELAY_TOKEN": COST_TOKEN,
        "PDRELAY_ROUTING_KEY": ROUTING_KEY,
    }
    from pdrelay.local.stack import environment

    with environment(env):
        import boto3
        from moto import mock_aws

        from pdrelay import aws
        from pdrelay.delivery.dispatcher import get_dispatcher, reset_dispatcher, set_clock
        from pdrelay.local.emulator import EmulatorServer
        from pdrelay.local.stack import create_resources
        from pdrelay.local.template import read_spec
        from pdrelay.observability import logger
        from pdrelay.settings import get_settings
        from pdrelay.timeutil import ManualClock

        level = logger.log_level
        logger.setLevel("ERROR")  # the 500 and 429 scenarios log warnings by design
        random.seed(0)  # the dispatcher's jitter (retry and deferral delays): the same run every time
        emulator = EmulatorServer().start()
        try:
            with mock_aws():
                ddb, sqs = boto3.client("dynamodb"), boto3.client("sqs")  # un-metered: set-up and images
                queues, tables = create_resources(read_spec(ROOT / "template.yaml"), sqs, ddb)
                resources = {
                    "PDRELAY_QUEUE_URL": queues["AlertQueue"],
                    "PDRELAY_DLQ_URL": queues["DeadLetterQueue"],
                    "PDRELAY_TABLE_NAME": tables["DedupTable"],
                    "PDRELAY_EVENTS_URL": emulator.url,
                }
                with environment(resources):
                    get_settings.cache_clear()
                    aws.clear_clients()
                    reset_dispatcher()
                    clock = ManualClock()
                    set_clock(clock)
                    meter = AwsMeter(ddb, moto_item_reader(ddb))
                    run = CostRun(get_dispatcher(), meter, sqs, queues["AlertQueue"], emulator, clock)
                    meter.attach(aws.client("dynamodb"))  # the clients get_dispatcher() built on
                    meter.attach(aws.client("sqs"))
                    measured = _measure(run, count, spacing)
        finally:
            emulator.stop()
            set_clock(None)
            reset_dispatcher()
            aws.clear_clients()
            get_settings.cache_clear()
            logger.setLevel(level)
    _print_costs(measured, count, spacing)


def _measure(run: CostRun, count: int, spacing: float) -> list[tuple[CostScenario, list[AlertCost]]]:
    """Each scenario's event for ``count`` alerts received ``spacing`` seconds apart, each
    processed once the clock reaches its receipt."""
    measured = []
    fingerprints: list[str] = []
    started = run.clock.now()
    for number, scenario in enumerate(COST_SCENARIOS):
        if scenario.fresh:
            fingerprints = [f"cost{number}x{i:04d}" for i in range(count)]
            started = run.clock.now() - timedelta(minutes=10)
        gap = max(spacing, FAULT_SPACING) if scenario.fault else spacing
        first = run.clock.now() + timedelta(seconds=gap)
        messages = [
            _sample_alert(fp, scenario.event, started, first + timedelta(seconds=i * gap))
            for i, fp in enumerate(fingerprints)
        ]
        run.meter.reset()
        costs = []
        for message, (handle, attributes) in zip(messages, run.feed(messages), strict=True):
            run.clock.advance(max(0.0, (message.received_at - run.clock.now()).total_seconds()))
            costs.append(run.deliver(message, handle, attributes, scenario.fault))
        run.delete_handled()
        if not any(c.service == "dynamodb" for cost in costs for c in cost.calls):
            raise RuntimeError("no DynamoDB call seen: does get_dispatcher() still use pdrelay.aws.client()?")
        measured.append((scenario, costs))
    return measured


def _print_costs(measured: list[tuple[CostScenario, list[AlertCost]]], count: int, spacing: float) -> None:
    print(
        f"\ndispatch cost per alert ({count} alerts per scenario on one routing key, one every {spacing:g} s"
        f" ({max(spacing, FAULT_SPACING):g} s with a fault); moto in process, PagerDuty emulator on 127.0.0.1)"
    )
    print(
        f"  {'scenario':<30} {'DDB req':>7} {'get':>5} {'write':>5} {'query':>5} {'WRU':>6} {'in GSI':>6}"
        f" {'RRU':>5} {'SQS':>5} {'PD':>5} {'item B':>6}  {'goal':<4}  outcome"
    )
    sequences = []
    for scenario, costs in measured:
        calls = [c for cost in costs for c in cost.calls]
        ddb = [c for c in calls if c.service == "dynamodb"]
        dedup_keys = {cost.dedup_key for cost in costs}
        per = len(costs)
        reads = sum(c.operation in READS for c in ddb) / per
        queries = sum(c.operation in QUERIES for c in ddb) / per
        writes = sum(c.operation in WRITES for c in ddb) / per
        wru, index_wru = sum(c.wru for c in ddb) / per, sum(c.index_wru for c in ddb) / per
        rru = sum(c.rru for c in ddb) / per
        sqs = sum(c.service == "sqs" for c in calls) / per
        pagerduty = sum(len(cost.pagerduty) for cost in costs) / per
        goal = ("ok" if len(ddb) / per <= GOAL_REQUESTS and wru <= GOAL_WRU else "over") if scenario.common else ""
        outcomes = Counter(cost.result for cost in costs)
        outcome = ", ".join(f"{n} {result}" for result, n in outcomes.most_common())
        print(
            f"  {scenario.name:<30} {len(ddb) / per:>7.2f} {reads:>5.2f} {writes:>5.2f} {queries:>5.2f}"
            f" {wru:>6.2f} {index_wru:>6.2f} {rru:>5.2f} {sqs:>5.2f} {pagerduty:>5.2f}"
            f" {_alert_item_size(ddb, dedup_keys):>6}  {goal:<4}  {outcome}"
        )
        sequences.append((scenario.name, _sequence(costs[per // 2], dedup_keys)))
    print(
        f"  goal on the common path (no faults): at most {GOAL_REQUESTS} DynamoDB requests and {GOAL_WRU} WRU"
        " per alert; no read where a conditional write alone decides"
    )
    print(
        "  per alert: DDB req = get + write + query; WRU (in GSI: of which written to secondary indexes) and"
        " RRU as billed on demand;\n  SQS requests; PD: Events API calls; item B: the alert items' average size"
        " as written (AWS's item size rule, approximate)"
    )
    print("\n  calls for one alert (the middle one), in order:")
    for name, sequence in sequences:
        print(textwrap.fill(sequence, 116, initial_indent=f"  {name}: ", subsequent_indent="      "))


def bench_formats(rounds: int = 200) -> None:
    sys.path[:0] = [str(ROOT), str(ROOT / "layers" / "pdrelay")]
    from pdrelay import formats
    from pdrelay.delivery.events_api import build_event
    from pdrelay.ingest.body import decode_json
    from pdrelay.models import make_message
    from tests.formats_harness import RECEIVED, cases

    by_format: dict[str, list] = {}
    for case in cases():
        by_format.setdefault(case.format, []).append(case)
    print(f"\nformat parsing (all fixtures of a format, {rounds} rounds; µs per payload)")
    print(f"  {'format':<14} {'payloads':>8} {'json.loads':>11} {'detect+parse+event':>19} {'ratio':>6}")
    for name, group in sorted(by_format.items()):
        fmt = formats.get(name)
        contexts = [
            formats.ParseContext(
                received_at=RECEIVED, headers=c.headers, body=c.body, options=fmt.options_for(c.options)
            )
            for c in group
        ]
        start = time.perf_counter()
        for _ in range(rounds):
            for case in group:
                decode_json(case.body)
        loads = (time.perf_counter() - start) / (rounds * len(group))
        start = time.perf_counter()
        for _ in range(rounds):
            for case, context in zip(group, contexts, strict=True):
                doc = decode_json(case.body)
                chosen = formats.detect(doc, case.headers) if case.detect else fmt
                for alert in chosen.run(doc, context).alerts:
                    build_event(
                        make_message(alert, route="b", routing_key=ROUTING_KEY, received_at=RECEIVED, request_id="b"),
                        alert.action,
                    )
        full = (time.perf_counter() - start) / (rounds * len(group))
        print(f"  {name:<14} {len(group):>8} {loads * 1e6:>11.1f} {full * 1e6:>19.1f} {full / loads:>6.1f}x")


def bench_ingest(count: int) -> None:
    """The ingest handler over moto in process: what the per-caller rate limit costs per request."""
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        POWERTOOLS_METRICS_DISABLED="true",
        POWERTOOLS_LOG_LEVEL="WARNING",
        PDRELAY_TOKEN="bench-token-0000000001",
        PDRELAY_REPLAY_WINDOW_SECONDS="0",
    )
    import boto3
    from moto import mock_aws

    from pdrelay.aws import clear_clients
    from pdrelay.local.apigw import api_gateway_event
    from pdrelay.local.runtime import FakeLambdaContext
    from pdrelay.local.stack import create_resources
    from pdrelay.local.template import read_spec
    from pdrelay.settings import get_settings

    spec = read_spec(ROOT / "template.yaml")
    doc = json.loads((ROOT / "events/formats/alertmanager/firing.json").read_text())
    headers = {"authorization": "Bearer bench-token-0000000001", "content-type": "application/json"}
    print(f"ingest handler ({count} Alertmanager requests, one alert each, moto in process)")
    for label, limit in (("rate limit off", "0"), ("rate limit on ", "1000000")):
        with mock_aws():
            queues, tables = create_resources(spec, boto3.client("sqs"), boto3.client("dynamodb"))
            os.environ.update(
                PDRELAY_QUEUE_URL=queues["AlertQueue"],
                PDRELAY_DLQ_URL=queues["DeadLetterQueue"],
                PDRELAY_TABLE_NAME=tables["DedupTable"],
                PDRELAY_CALLER_RATE_LIMIT=limit,
            )
            get_settings.cache_clear()
            clear_clients()
            handler = spec.functions["IngestFunction"].load_handler()
            events = []
            for i in range(count):
                doc["alerts"][0]["fingerprint"] = f"bench{i:08d}"
                events.append(api_gateway_event("POST", "/v1/alerts/alertmanager", headers, json.dumps(doc).encode()))
            start = time.perf_counter()
            for event in events:
                assert handler(event, FakeLambdaContext("IngestFunction"))["statusCode"] == 202
            elapsed = time.perf_counter() - start
        print(f"  {label}: {count / elapsed:7.1f} requests/s   {elapsed / count * 1000:5.2f} ms per request")


def bench_pipeline(alerts: int, spacing: float) -> None:
    """bench/pipeline.py in a fresh interpreter: the handlers must import with the template's environment
    (log level, metrics on), which the other benchmarks here change for themselves."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "PDRELAY_"))}
    command = [sys.executable, str(ROOT / "bench" / "pipeline.py"), "--alerts", str(alerts), "--spacing", str(spacing)]
    subprocess.run(command, check=True, env=env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cost-alerts", type=int, default=10, help="alerts per dispatch cost scenario")
    parser.add_argument(
        "--cost-spacing", type=float, default=60.0, help="seconds between alerts of one routing key (cost scenarios)"
    )
    parser.add_argument("--pipeline-alerts", type=int, default=20, help="alerts per end-to-end cost scenario")
    parser.add_argument("--local-seconds", type=float, default=20, help="seconds of load per rate (local stack)")
    parser.add_argument(
        "--only",
        choices=["dispatch", "cost", "pipeline", "imports", "coldstart", "formats", "ingest", "local", "layer"],
    )
    args = parser.parse_args()
    if args.only in (None, "pipeline"):
        bench_pipeline(args.pipeline_alerts, args.cost_spacing)
    if args.only in (None, "dispatch"):
        bench_dispatch(args.events)
    if args.only in (None, "cost"):
        bench_costs(args.cost_alerts, args.cost_spacing)
    if args.only in (None, "imports"):
        coldstart.bench_imports(args.runs)
    if args.only in (None, "layer"):
        import layer

        layer.bench_layer(args.runs)
    if args.only in (None, "formats"):
        bench_formats()
    if args.only in (None, "ingest"):
        bench_ingest(args.events)
    # Last: its imports create pdrelay's logger at the default level, which the benchmarks above set
    # (quieter) before they import pdrelay.
    if args.only in (None, "coldstart"):
        coldstart.bench_first_invocation(max(1, (args.runs + 1) // 2))
    if args.only in (None, "local"):  # `pdrelay dev` in processes of its own, at 5 and 50 alerts a second
        import local_stack

        print()
        local_stack.bench_local((5, 50), args.local_seconds, drain_seconds=60)


if __name__ == "__main__":
    main()
