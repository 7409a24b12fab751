"""Cold start: what a new execution environment costs before and during its first invocation.

1. Import: each handler module (``pdrelay.handlers.<name>``) in a fresh interpreter, next to
   ``import boto3`` alone, in rounds side by side: CPU time, and the interpreter's peak RSS; pdrelay
   with its bytecode, as Lambda's layer ships it (:func:`with_bytecode`).
2. First invocation: in a fresh interpreter that looks like Lambda (``AWS_LAMBDA_FUNCTION_NAME``
   set, so the handler prepares its clients and configuration at import: INIT), import a handler,
   then invoke it twice against a moto
   server in this process (``AWS_ENDPOINT_URL``, which boto3 honours) and the PagerDuty emulator;
   the first invocation's wall time and RSS growth over the second's is what a cold start adds after
   the import. The child counts the boto3 Sessions and botocore clients created and the AWS requests
   sent (by patching ``boto3.session.Session.__init__`` and ``botocore.session.Session.create_client``
   before importing the handler).
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HANDLERS = ("ingest", "dispatch", "redrive", "sweep")
GOAL_IMPORT_RATIO = 1.5  # handler import vs import boto3
GOAL_FIRST_EXTRA_MS = 100.0
GOAL_SESSIONS = 1  # boto3 Sessions per process

# Peak RSS from VmHWM: ru_maxrss would include the forked parent's memory from before exec.
IMPORT_SNIPPET = """
import sys, time, importlib
t = time.process_time()
{body}
elapsed = time.process_time() - t
hwm = [line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM")][0]
print(elapsed, hwm)
"""

# The child of the first-invocation benchmark: argv[1] the handler's name, argv[2] a JSON file of
# two events (read before anything is imported), argv[3] where to write the figures.
INVOKE_SNIPPET = """
import json, sys, time
events = json.load(open(sys.argv[2]))

def rss_kib():
    return int([line.split()[1] for line in open("/proc/self/status") if line.startswith("VmRSS")][0])

class Context:
    def __init__(self, name):
        self.function_name = name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 256
        self.aws_request_id = "00000000-0000-4000-8000-%012d" % len(events)
        self.invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:" + name
        self.log_group_name = "/aws/lambda/" + name
        self.log_stream_name = "2026/12/07/[$LATEST]0"
    def get_remaining_time_in_millis(self):
        return 60000

import boto3
import botocore.session
counts = {"sessions": 0, "clients": 0, "requests": 0}
session_init = boto3.session.Session.__init__
create_client = botocore.session.Session.create_client

def counting_init(self, *args, **kwargs):
    counts["sessions"] += 1
    session_init(self, *args, **kwargs)

def counting_create_client(self, *args, **kwargs):
    counts["clients"] += 1
    client = create_client(self, *args, **kwargs)
    client.meta.events.register("before-send", lambda **_: counts.__setitem__("requests", counts["requests"] + 1))
    return client

boto3.session.Session.__init__ = counting_init
botocore.session.Session.create_client = counting_create_client

start = time.perf_counter()
import importlib
module = importlib.import_module("pdrelay.handlers." + sys.argv[1])
figures = {"import_s": time.perf_counter() - start, "after_import": dict(counts), "invocations": []}
for event in events:
    before, rss = dict(counts), rss_kib()
    start = time.perf_counter()
    answer = module.lambda_handler(event, Context("pdrelay-" + sys.argv[1]))
    seconds = time.perf_counter() - start
    figures["invocations"].append({
        "seconds": seconds,
        "rss_kib": rss_kib() - rss,
        "answer": str(answer)[:200],
        **{k: counts[k] - before[k] for k in counts},
    })
json.dump(figures, open(sys.argv[3], "w"))
"""


def _child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The template's Globals (metrics on, its log level) and nothing the parent set for itself."""
    from pipeline import read_template

    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "PDRELAY_", "AWS_"))}
    env.update(read_template().environment)
    env.setdefault("POWERTOOLS_LOG_LEVEL", "INFO")
    env.update(AWS_DEFAULT_REGION="us-east-1", AWS_REGION="us-east-1")
    env.update(extra or {})
    return env


def _cold_once(body: str) -> tuple[float, float]:
    """One fresh interpreter running ``body``: seconds, peak RSS in MiB."""
    out = subprocess.run(
        [sys.executable, "-c", IMPORT_SNIPPET.format(body=body)],
        capture_output=True,
        text=True,
        check=True,
        env=_child_env(),
    ).stdout.split()
    return float(out[-2]), int(out[-1]) / 1024


def _cold(bodies: list[str], runs: int) -> list[tuple[float, float, float]]:
    """Each body's median seconds, median peak RSS and median ratio to the first body, measured in
    rounds (every body once per round, side by side) so that the machine's load falls on all alike."""
    seen: list[list[tuple[float, float]]] = [[] for _ in bodies]
    for _ in range(runs):
        for i, body in enumerate(bodies):
            seen[i].append(_cold_once(body))
    base = [t for t, _ in seen[0]]
    return [
        (
            statistics.median(t for t, _ in got),
            statistics.median(r for _, r in got),
            statistics.median(t / b for (t, _), b in zip(got, base, strict=True)),
        )
        for got in seen
    ]


def with_bytecode() -> None:
    """Write pdrelay's bytecode next to its modules before timing imports, as Lambda's layer ships it
    (``layers/pdrelay/Makefile``). An editable install has none, and where ``PYTHONDONTWRITEBYTECODE``
    is set (the machines this project is developed on set it) none is ever written: every import would compile
    pdrelay from source, which no cold start in Lambda does, while boto3's bytecode, written by pip,
    is there. Timestamp-checked, as Python writes it, so an edited module is compiled again."""
    import compileall

    import pdrelay

    compileall.compile_dir(str(Path(pdrelay.__file__).parent), quiet=1)


def bench_imports(runs: int) -> None:
    with_bytecode()
    # What the validation library costs before any handler code: pydantic itself, then its internals
    # that load with the first model (pdrelay's queue-message models), then the configuration's models.
    references = [
        ("boto3 + pydantic's BaseModel", "import boto3; from pydantic import BaseModel"),
        ("boto3 + pdrelay.models", "import boto3, pdrelay.models"),
        ("boto3 + pdrelay.config", "import boto3, pdrelay.config"),
    ]
    handlers = [(name, f"importlib.import_module('pdrelay.handlers.{name}')") for name in HANDLERS]
    bodies = ["import boto3", "pass"] + [b for _, b in references] + [b for _, b in handlers]
    (baseline, base_rss, _), (bare, bare_rss, _), *rest = _cold(bodies, runs)
    print(
        f"\ncold import (median of {runs} rounds of fresh interpreters, every import once per round;"
        f" goal: a handler <= {GOAL_IMPORT_RATIO:g}x boto3)"
    )
    print(f"  empty interpreter                : {bare * 1000:7.1f} ms   peak RSS {bare_rss:6.1f} MiB")
    print(f"  import boto3 alone               : {baseline * 1000:7.1f} ms   peak RSS {base_rss:6.1f} MiB")
    for (label, _), (elapsed, rss, ratio) in zip(references, rest, strict=False):
        print(f"  {label:<33}: {elapsed * 1000:7.1f} ms   peak RSS {rss:6.1f} MiB   ratio {ratio:4.2f}x boto3")
    for (name, _), (elapsed, rss, ratio) in zip(handlers, rest[len(references) :], strict=True):
        print(
            f"  import pdrelay.handlers.{name:<9}: {elapsed * 1000:7.1f} ms   peak RSS {rss:6.1f} MiB"
            f"   ratio {ratio:4.2f}x boto3  {'ok' if ratio <= GOAL_IMPORT_RATIO else 'over'}"
        )
    print(
        "  CPU time of the import (what Lambda's CPU share stretches; wall time here also counts the"
        " host's other guests);\n  ratio: the median of each round's ratio to that round's `import boto3`;"
        " pdrelay with its bytecode"
    )


# -- first invocation ----------------------------------------------------------------------------
TOKEN = "bench-token-coldstart-00001"
ROUTING_KEY = "BENCHR0UT1NGKEY00000000000000003"


def _invoke_child(name: str, events: list[dict[str, Any]], env: dict[str, str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        events_path, out_path = Path(tmp) / "events.json", Path(tmp) / "figures.json"
        events_path.write_text(json.dumps(events))
        done = subprocess.run(
            [sys.executable, "-c", INVOKE_SNIPPET, name, str(events_path), str(out_path)],
            capture_output=True,
            text=True,
            env={**env, "AWS_LAMBDA_FUNCTION_NAME": f"pdrelay-{name}"},  # as in Lambda: INIT work runs
            timeout=120,
        )
        if done.returncode != 0 or not out_path.exists():
            raise RuntimeError(f"the {name} child failed: {done.stderr[-2000:]}")
        figures: dict[str, Any] = json.loads(out_path.read_text())
        return figures


SCHEDULED_EVENT = {"version": "0", "detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}


def _ingest_events(runs: int) -> list[list[dict[str, Any]]]:
    from pipeline import alertmanager_body

    from pdrelay.local.apigw import api_gateway_event

    now = datetime.now(UTC)
    headers = {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
    return [
        [
            api_gateway_event(
                "POST", "/v1/alerts/alertmanager", headers, alertmanager_body(run * 2 + i, "firing", now, now)
            )
            for i in range(2)
        ]
        for run in range(runs)
    ]


def bench_first_invocation(runs: int) -> None:
    with_bytecode()
    import boto3
    import requests
    from moto.server import ThreadedMotoServer
    from pipeline import sqs_event

    from pdrelay.local.emulator import EmulatorServer
    from pdrelay.local.stack import create_resources, free_port
    from pdrelay.local.template import read_spec

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the moto server's request lines
    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    emulator = EmulatorServer().start()
    endpoint = f"http://127.0.0.1:{port}"
    results: dict[str, list[dict[str, Any]]] = {"ingest": [], "dispatch": [], "sweep": []}
    try:
        requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
        session = boto3.session.Session(
            aws_access_key_id="bench", aws_secret_access_key="bench", region_name="us-east-1"
        )
        sqs, ddb = session.client("sqs", endpoint_url=endpoint), session.client("dynamodb", endpoint_url=endpoint)
        queues, tables = create_resources(read_spec(ROOT / "template.yaml"), sqs, ddb)
        env = _child_env(
            {
                "AWS_ENDPOINT_URL": endpoint,
                "AWS_ACCESS_KEY_ID": "bench",
                "AWS_SECRET_ACCESS_KEY": "bench",
                "PDRELAY_CONFIG": "",
                "PDRELAY_TOKEN": TOKEN,
                "PDRELAY_ROUTING_KEY": ROUTING_KEY,
                "PDRELAY_QUEUE_URL": queues["AlertQueue"],
                "PDRELAY_DLQ_URL": queues["DeadLetterQueue"],
                "PDRELAY_TABLE_NAME": tables["DedupTable"],
                "PDRELAY_EVENTS_URL": emulator.url,
            }
        )
        arn = "arn:aws:sqs:us-east-1:123456789012:" + queues["AlertQueue"].rsplit("/", 1)[-1]
        for events in _ingest_events(runs):
            results["ingest"].append(_invoke_child("ingest", events, env))
            # What ingest queued, as the event source mapping hands it to dispatch: one record an event.
            got: list[Any] = sqs.receive_message(
                QueueUrl=queues["AlertQueue"],
                MaxNumberOfMessages=10,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if len(got) != 2:
                raise RuntimeError(f"ingest queued {len(got)} messages, not 2")
            results["dispatch"].append(_invoke_child("dispatch", [sqs_event([m], arn) for m in got], env))
            for m in got:
                sqs.delete_message(QueueUrl=queues["AlertQueue"], ReceiptHandle=m["ReceiptHandle"])
            # The sweep, as EventBridge Scheduler runs it each minute: its 2nd run is what every later minute costs.
            results["sweep"].append(_invoke_child("sweep", [SCHEDULED_EVENT, SCHEDULED_EVENT], env))
    finally:
        emulator.stop()
        moto.stop()
    _print_first(results, runs)


def _print_first(results: dict[str, list[dict[str, Any]]], runs: int) -> None:
    print(
        f"\nfirst invocation (median of {runs} fresh interpreters; each imports the handler, then invokes it twice:"
        " a new alert each time;\n  AWS is a moto server in the parent over HTTP on 127.0.0.1, PagerDuty the emulator)"
    )
    print(
        f"  {'handler':<9} {'INIT':>7} {'1st':>7} {'2nd':>7} {'extra':>7} {'RSS 1st':>8} {'RSS 2nd':>8}"
        f" {'sessions':>9} {'clients':>8} {'AWS req':>8}  goal"
    )
    for name, figures in results.items():

        def median(key: str, index: int, figures: list[dict[str, Any]] = figures) -> float:
            return float(statistics.median(f["invocations"][index][key] for f in figures))

        first, second = median("seconds", 0) * 1000, median("seconds", 1) * 1000
        extra = float(
            statistics.median(f["invocations"][0]["seconds"] - f["invocations"][1]["seconds"] for f in figures)
        )
        sessions = [
            f["after_import"]["sessions"] + f["invocations"][0]["sessions"] + f["invocations"][1]["sessions"]
            for f in figures
        ]
        imported = statistics.median(f["import_s"] for f in figures) * 1000
        goal = "ok" if extra * 1000 <= GOAL_FIRST_EXTRA_MS and max(sessions) <= GOAL_SESSIONS else "over"
        print(
            f"  {name:<9} {imported:>5.0f}ms {first:>5.0f}ms {second:>5.0f}ms {extra * 1000:>5.0f}ms"
            f" {median('rss_kib', 0) / 1024:>6.1f}Mi {median('rss_kib', 1) / 1024:>6.1f}Mi"
            f" {median('sessions', 0):>4.0f}/{median('sessions', 1):<4.0f} {median('clients', 0):>3.0f}/"
            f"{median('clients', 1):<4.0f} {median('requests', 0):>3.0f}/{median('requests', 1):<4.0f}  {goal}"
        )
        after_import = figures[0]["after_import"]
        if after_import["sessions"] or after_import["clients"]:
            print(f"    at import already: {after_import['sessions']} sessions, {after_import['clients']} clients")
    print(
        f"  INIT: the handler module's import as Lambda runs it (AWS_LAMBDA_FUNCTION_NAME set: clients and"
        f" configuration\n  are made then), boto3 already imported by the child; 1st, 2nd: each invocation's"
        f" wall time;\n  extra: the 1st's over the 2nd's (goal <= {GOAL_FIRST_EXTRA_MS:g} ms); RSS: growth during each"
        f" invocation; sessions, clients, AWS req: boto3 Sessions\n  and botocore clients created and HTTP requests"
        f" sent during the 1st/2nd invocation (goal: {GOAL_SESSIONS} Session per process in all)."
        "\n  Measured on this machine's full core: at 256 MB Lambda gives ~0.15 vCPU, so the CPU part of 'extra' grows"
        " about 7x there."
    )
