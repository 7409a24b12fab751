"""pdrelay benchmark: prints figures, asserts nothing. Run with `make bench` (ARGS="--events 500").

1. Dispatch throughput: the real Dispatcher (dedup table in moto, in process) sending to the
   PagerDuty emulator on 127.0.0.1, next to a bare ``requests.Session`` loop posting the same events.
2. Cold import: each handler module loaded in a fresh interpreter, next to ``import boto3`` alone,
   with the interpreter's peak RSS.
3. Format parsing: every fixture under events/formats parsed (detection with ``auto``, then the
   format's parse and the Events API body), per format, next to ``json.loads`` of the same bodies.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

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

    def get_doc(self, pk: str):
        return self.items.get(("doc", pk), ({}, 0))

    def put_doc(self, pk: str, doc: dict, previous_version: int, expires: bool = True) -> int:
        self.items[("doc", pk)] = (doc, previous_version + 1)
        return previous_version + 1

    def release(self, pk: str, version: int) -> None:
        pass

    def get_bucket(self, routing_key: str):
        return self.items.get(("bucket", routing_key))

    def put_bucket(self, routing_key: str, bucket, previous_version: int) -> None:
        self.items[("bucket", routing_key)] = bucket

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


# Peak RSS from VmHWM: ru_maxrss would include the forked parent's memory from before exec.
IMPORT_SNIPPET = """
import sys, time, importlib.util
t = time.perf_counter()
{body}
elapsed = time.perf_counter() - t
hwm = [line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM")][0]
print(elapsed, hwm)
"""

HANDLER_BODY = """
spec = importlib.util.spec_from_file_location("handler", {path!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
"""


def _cold(body: str, runs: int) -> tuple[float, float]:
    times, rss = [], []
    env = {**os.environ, "POWERTOOLS_SERVICE_NAME": "pdrelay", "AWS_DEFAULT_REGION": "us-east-1"}
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", IMPORT_SNIPPET.format(body=body)],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        ).stdout.split()
        times.append(float(out[0]))
        rss.append(int(out[1]) / 1024)
    return statistics.median(times), statistics.median(rss)


def bench_imports(runs: int) -> None:
    bare, bare_rss = _cold("pass", runs)
    baseline, base_rss = _cold("import boto3", runs)
    print(f"\ncold import (median of {runs} fresh interpreters)")
    print(f"  empty interpreter          : {bare * 1000:7.1f} ms   peak RSS {bare_rss:6.1f} MiB")
    print(f"  import boto3 alone         : {baseline * 1000:7.1f} ms   peak RSS {base_rss:6.1f} MiB")
    for name in ("ingest", "dispatch"):
        path = str(ROOT / "functions" / name / "app.py")
        elapsed, rss = _cold(HANDLER_BODY.format(path=path), runs)
        print(
            f"  functions/{name}/app.py{' ' * (9 - len(name))}: {elapsed * 1000:7.1f} ms   peak RSS {rss:6.1f} MiB"
            f"   ratio {elapsed / baseline:4.2f}x boto3"
        )


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", choices=["dispatch", "imports", "formats", "ingest"])
    args = parser.parse_args()
    if args.only in (None, "dispatch"):
        bench_dispatch(args.events)
    if args.only in (None, "imports"):
        bench_imports(args.runs)
    if args.only in (None, "formats"):
        bench_formats()
    if args.only in (None, "ingest"):
        bench_ingest(args.events)


if __name__ == "__main__":
    main()
