"""What one alert costs end to end, per scenario, in dollars per million alerts (us-east-1).

Each alert goes through the real handlers as AWS would run them: an API Gateway HTTP API event
(payload 2.0) into ``pdrelay.handlers.ingest.lambda_handler``; the message it queued received as
Lambda's SQS event source mapping does and handed to ``pdrelay.handlers.dispatch.lambda_handler``
as an SQS event; the mapping deletes what the handler did not report as failed. AWS is moto in
process (resources from template.yaml), PagerDuty the emulator on 127.0.0.1. The wall clock is
moved (time-machine) so alerts come a minute apart and re-sends come when Alertmanager sends them.

Counted per alert: API Gateway requests; Lambda invocations and duration (measured x the function's
MemorySize from template.yaml); every AWS request the handlers' clients make (bench/aws_meter.py
hooks every botocore client created while the scenario runs) with DynamoDB units; the mapping's
receive and delete; every byte the handlers write to stdout and stderr (pdrelay's JSON log lines
and EMF metric documents: CloudWatch Logs ingests them) plus Lambda's START/END/REPORT lines and the
HTTP API's access log line. Prices: bench/prices.py.

Run it alone (``bench/run.py --only pipeline``): the environment must be the template's before
pdrelay is imported, so run.py starts it in a fresh interpreter.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import prices
from aws_meter import WRITES, AwsMeter, Call, moto_item_reader

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"
TOKEN = "bench-token-pipeline-000001"
ROUTING_KEY = "BENCHR0UT1NGKEY00000000000000002"
USER_AGENT = "Alertmanager/0.27.0"
GROUP_INTERVAL = timedelta(minutes=5, seconds=1)  # Alertmanager's default group_interval, and a second
SENDER_RETRY = timedelta(seconds=2)  # a sender posting the same request again (its timeout, a retry)
GOAL_DOLLARS, GOAL_WRU, GOAL_RRU = 4.00, 3.0, 1.0  # per million new alerts; units per new alert
# Lambda's own lines per invocation (text log format), and the line added at a cold start.
PLATFORM_LINES = (
    "START RequestId: {id} Version: $LATEST",
    "END RequestId: {id}",
    "REPORT RequestId: {id}\tDuration: {ms:.2f} ms\tBilled Duration: {billed} ms\tMemory Size: {memory} MB"
    "\tMax Memory Used: {used} MB\t",
)


# -- what the template says ---------------------------------------------------------------------
@dataclass(frozen=True)
class Function:
    logical_id: str
    name: str  # as deployed: "<stack>-<logical id>-<12 characters>", which every log line carries
    memory_mb: int
    timeout: int


@dataclass(frozen=True)
class TemplateFacts:
    environment: dict[str, str]  # Globals' variables that resolve to a string (parameters' defaults)
    functions: dict[str, Function]
    tracing: str
    access_log_format: str  # the HTTP API's AccessLogSettings.Format, "" for none


def read_template() -> TemplateFacts:
    from pdrelay.local.template import load_template

    doc = load_template(TEMPLATE)
    defaults = {name: spec.get("Default") for name, spec in (doc.get("Parameters") or {}).items()}

    def resolve(value: Any) -> Any:
        if isinstance(value, dict) and set(value) == {"Ref"}:
            return defaults.get(value["Ref"])
        return value

    globals_fn = (doc.get("Globals") or {}).get("Function") or {}
    variables = (globals_fn.get("Environment") or {}).get("Variables") or {}
    environment = {k: str(resolve(v)) for k, v in variables.items() if isinstance(resolve(v), str | int)}
    functions, access_log = {}, ""
    for logical_id, resource in (doc.get("Resources") or {}).items():
        props = resource.get("Properties") or {}
        if resource.get("Type") == "AWS::Serverless::Function":
            functions[logical_id] = Function(
                logical_id,
                f"pdrelay-{logical_id}-{uuid.uuid4().hex[:12].upper()}",
                int(resolve(props.get("MemorySize", globals_fn.get("MemorySize", 128)))),
                int(resolve(props.get("Timeout", globals_fn.get("Timeout", 3)))),
            )
            own = (props.get("Environment") or {}).get("Variables") or {}
            environment.update({k: str(resolve(v)) for k, v in own.items() if isinstance(resolve(v), str | int)})
        elif resource.get("Type") == "AWS::Serverless::HttpApi":
            access_log = str((props.get("AccessLogSettings") or {}).get("Format") or "")
    return TemplateFacts(environment, functions, str(resolve(globals_fn.get("Tracing", "PassThrough"))), access_log)


def access_log_line(fmt: str, path: str, status: int, length: int, latency_ms: int) -> str:
    """The HTTP API's access log line for one request, the template's format filled with typical values."""
    values = {
        "requestId": "Jk4dGhz8IAMEbQw=",
        "requestTime": "07/Dec/2026:10:00:00 +0000",
        "identity.sourceIp": "203.0.113.10",
        "identity.userAgent": USER_AGENT,
        "routeKey": "POST /v1/alerts/{format_name}",
        "path": path,
        "protocol": "HTTP/1.1",
        "status": str(status),
        "responseLength": str(length),
        "responseLatency": str(latency_ms),
        "integrationLatency": str(latency_ms),
        "integrationStatus": "200",
        "integrationErrorMessage": "-",
        "error.message": "-",
    }
    return re.sub(r"\$context\.([A-Za-z.]+[A-Za-z])", lambda m: values.get(m.group(1), "-"), fmt)


# -- capturing what a handler writes -------------------------------------------------------------
@contextmanager
def captured_output(sink: list[bytes]) -> Iterator[None]:
    """Everything written to file descriptors 1 and 2 inside (print, logging, C code alike)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 1)
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            tmp.seek(0)
            sink.append(tmp.read())


@contextmanager
def metering_new_clients(meter: AwsMeter) -> Iterator[None]:
    """Attach ``meter`` to every botocore client created inside, however the code builds them."""
    import botocore.session

    original = botocore.session.Session.create_client

    def create_client(self: Any, *args: Any, **kwargs: Any) -> Any:
        client = original(self, *args, **kwargs)
        meter.attach(client)
        return client

    botocore.session.Session.create_client = create_client  # type: ignore[method-assign]
    try:
        yield
    finally:
        botocore.session.Session.create_client = original  # type: ignore[method-assign]


# -- one invocation -----------------------------------------------------------------------------
@dataclass
class Invocation:
    function: Function
    seconds: float  # wall time of the handler call
    calls: list[Call]  # AWS requests its clients made
    output: bytes  # what it wrote to stdout and stderr

    @property
    def aws_seconds(self) -> float:
        return sum(c.took for c in self.calls)

    @property
    def billed_ms(self) -> int:
        return max(1, math.ceil(self.seconds * 1000))

    def adjusted_ms(self) -> int:
        """Billed ms had pdrelay's own part (all but the AWS requests) run at the function's CPU share."""
        own = max(0.0, self.seconds - self.aws_seconds)
        return max(1, math.ceil((own * prices.cpu_factor(self.function.memory_mb) + self.aws_seconds) * 1000))

    def platform_bytes(self) -> int:
        lines = [
            line.format(id=uuid.uuid4(), ms=self.seconds * 1000, billed=self.billed_ms, memory=88, used=88)
            for line in PLATFORM_LINES
        ]
        return sum(len(line.encode()) + 1 for line in lines)

    def lines(self) -> list[str]:
        return [line for line in self.output.decode("utf-8", "replace").splitlines() if line.strip()]


@dataclass
class AlertRun:
    """What one alert's request cost, through ingest and every dispatch it caused."""

    ingest: Invocation
    status: int
    answer: dict[str, Any]
    dispatches: list[Invocation] = field(default_factory=list)
    mapping: list[Call] = field(default_factory=list)  # the event source mapping's receive and delete
    pagerduty: int = 0  # Events API calls
    access_log: str = ""

    @property
    def invocations(self) -> list[Invocation]:
        return [self.ingest, *self.dispatches]


# -- the scenarios ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scenario:
    key: str
    name: str
    status: str  # the alert's status in the Alertmanager body: firing | resolved
    phase: int  # 0: the new alerts, then each later phase after Alertmanager's group_interval
    after: timedelta = timedelta()  # within the phase, after the alert's slot
    same_body_as: str = ""  # re-sends the request of this scenario byte for byte


SCENARIOS = (
    Scenario("a", "new alert (firing, unique fingerprint)", "firing", 0),
    Scenario("d", "sender retry of (a) within the replay window", "firing", 0, SENDER_RETRY, same_body_as="a"),
    Scenario("c", "repeat of a firing alert (after group_interval)", "firing", 1, same_body_as="a"),
    Scenario("b", "resolve of that alert", "resolved", 2),
)


def alertmanager_body(index: int, status: str, started: datetime, now: datetime) -> bytes:
    """One alert in an Alertmanager webhook (events/formats/alertmanager sample), as Go marshals it."""
    doc = json.loads((ROOT / "events" / "formats" / "alertmanager" / f"{status}.json").read_text())
    alert = doc["alerts"][0]
    alert["fingerprint"] = f"{index:016x}"
    alert["labels"]["instance"] = f"checkout-{index:04d}:8080"
    alert["startsAt"] = started.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if status == "resolved":
        alert["endsAt"] = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return json.dumps(doc, separators=(",", ":")).encode()


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """The event Lambda's SQS event source mapping builds from received messages."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {
                    name: {
                        "stringValue": a.get("StringValue"),
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": a.get("DataType", "String"),
                    }
                    for name, a in m.get("MessageAttributes", {}).items()
                },
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1",
            }
            for m in messages
        ]
    }


class Pipeline:
    """The handlers, the queue between them and the meters, in one process."""

    def __init__(self, facts: TemplateFacts, meter: AwsMeter, mapping_meter: AwsMeter, emulator: Any) -> None:
        from pdrelay.handlers import dispatch, ingest
        from pdrelay.local.apigw import api_gateway_event
        from pdrelay.local.runtime import FakeLambdaContext
        from pdrelay.settings import get_settings

        self.facts, self.meter, self.emulator = facts, meter, emulator
        self.ingest_handler: Callable[[dict[str, Any], Any], Any] = ingest.lambda_handler
        self.dispatch_handler: Callable[[dict[str, Any], Any], Any] = dispatch.lambda_handler
        self.event, self.context = api_gateway_event, FakeLambdaContext
        self.queue_url = get_settings().queue_url
        self.mapping_meter = mapping_meter
        self.mapping_sqs: Any = None  # set by the caller: a client of the mapping's own, metered apart

    def _invoke(self, function: Function, handler: Callable[..., Any], event: dict[str, Any]) -> tuple[Invocation, Any]:
        context = self.context(function.name, memory_limit_in_mb=function.memory_mb, timeout_seconds=function.timeout)
        mark, sink = len(self.meter.calls), list[bytes]()
        os.environ["AWS_LAMBDA_FUNCTION_NAME"] = function.name  # as Lambda sets it (its log lines then say less)
        try:
            with captured_output(sink):
                start = time.perf_counter()
                answer = handler(event, context)
                seconds = time.perf_counter() - start
        finally:
            del os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        return Invocation(function, seconds, self.meter.calls[mark:], sink[0]), answer

    def send(self, body: bytes, path: str = "/v1/alerts/alertmanager") -> AlertRun:
        """One request through ingest, then every message on the queue through dispatch until it is empty."""
        headers = {
            "authorization": f"Bearer {TOKEN}",
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "content-length": str(len(body)),
        }
        requests_before = len(self.emulator.state.requests)
        ingest, answer = self._invoke(
            self.facts.functions["IngestFunction"], self.ingest_handler, self.event("POST", path, headers, body)
        )
        status = int(answer.get("statusCode", 0))
        text = answer.get("body") or ""
        run = AlertRun(ingest, status, json.loads(text) if text.startswith("{") else {"body": text})
        run.access_log = access_log_line(
            self.facts.access_log_format, path, status, len(text.encode()), round(ingest.seconds * 1000)
        )
        mark = len(self.mapping_meter.calls)
        for _batch in range(20):
            got = self.mapping_sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=0,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not got:
                self.mapping_meter.calls.pop()  # an empty poll: the mapping's idle cost, not this alert's
                break
            arn = "arn:aws:sqs:us-east-1:123456789012:" + self.queue_url.rsplit("/", 1)[-1]
            invocation, result = self._invoke(
                self.facts.functions["DispatchFunction"], self.dispatch_handler, sqs_event(got, arn)
            )
            run.dispatches.append(invocation)
            failed = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
            done = [m for m in got if m["MessageId"] not in failed]
            if done:
                self.mapping_sqs.delete_message_batch(
                    QueueUrl=self.queue_url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
                )
            if failed:
                break  # left to SQS's visibility timeout: a retry is another scenario's cost
        run.mapping = self.mapping_meter.calls[mark:]
        run.pagerduty = len(self.emulator.state.requests) - requests_before
        return run


# -- counting and pricing -----------------------------------------------------------------------
def _sqs_billed(call: Call) -> int:
    """SQS bills each 64 KB chunk of a request's payload as one request."""
    params = call.params
    if call.operation == "SendMessageBatch":
        size = sum(len(e.get("MessageBody", "").encode()) for e in params.get("Entries", []))
    else:
        size = len(str(params.get("MessageBody", "")).encode())
    return max(1, math.ceil(size / prices.SQS_CHUNK_BYTES))


def _emf_series(line: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """The metric series (namespace, metric, dimension values) an EMF document writes."""
    try:
        doc = json.loads(line)
    except ValueError:
        return []
    if not isinstance(doc, dict) or "_aws" not in doc:
        return []
    series = []
    for directive in doc["_aws"].get("CloudWatchMetrics", []):
        for dims in directive.get("Dimensions", []) or [[]]:
            values = tuple(f"{d}={doc.get(d)}" for d in dims)
            series += [(directive.get("Namespace", ""), m["Name"], values) for m in directive.get("Metrics", [])]
    return series


@dataclass
class Totals:
    """Per alert, averaged over a scenario's alerts."""

    alerts: int
    api_requests: float = 0.0
    invocations: dict[str, float] = field(default_factory=dict)  # per function
    ms: dict[str, float] = field(default_factory=dict)  # billed ms per function, measured
    adjusted_ms: dict[str, float] = field(default_factory=dict)  # billed ms per function, CPU share applied
    gb_seconds: float = 0.0
    adjusted_gb_seconds: float = 0.0
    sqs_code: float = 0.0  # requests the handlers send
    sqs_mapping: float = 0.0  # the event source mapping's receives and deletes
    ddb_requests: float = 0.0
    wru: float = 0.0
    index_wru: float = 0.0
    rru: float = 0.0
    other: dict[str, float] = field(default_factory=dict)  # other AWS requests: "ssm GetParameter"
    log_bytes: dict[str, float] = field(default_factory=dict)  # handler output per function, platform, access
    log_lines: float = 0.0
    pagerduty: float = 0.0
    statuses: dict[int, int] = field(default_factory=dict)
    series: set[tuple[str, str, tuple[str, ...]]] = field(default_factory=set)

    @classmethod
    def of(cls, runs: list[AlertRun]) -> Totals:
        t, n = cls(len(runs)), len(runs)
        for run in runs:
            t.api_requests += 1 / n
            t.statuses[run.status] = t.statuses.get(run.status, 0) + 1
            t.pagerduty += run.pagerduty / n
            t.log_bytes["access"] = t.log_bytes.get("access", 0.0) + (len(run.access_log.encode()) + 1) / n
            for inv in run.invocations:
                fn = inv.function.logical_id.removesuffix("Function").lower()
                gb = inv.function.memory_mb / 1024
                t.invocations[fn] = t.invocations.get(fn, 0.0) + 1 / n
                t.ms[fn] = t.ms.get(fn, 0.0) + inv.billed_ms / n
                t.adjusted_ms[fn] = t.adjusted_ms.get(fn, 0.0) + inv.adjusted_ms() / n
                t.gb_seconds += inv.billed_ms / 1000 * gb / n
                t.adjusted_gb_seconds += inv.adjusted_ms() / 1000 * gb / n
                t.log_bytes[fn] = t.log_bytes.get(fn, 0.0) + len(inv.output) / n
                t.log_bytes["platform"] = t.log_bytes.get("platform", 0.0) + inv.platform_bytes() / n
                t.log_lines += (len(inv.lines()) + len(PLATFORM_LINES)) / n
                for line in inv.lines():
                    t.series.update(_emf_series(line))
                for call in inv.calls:
                    if call.service == "sqs":
                        t.sqs_code += _sqs_billed(call) / n
                    elif call.service == "dynamodb":
                        t.ddb_requests += 1 / n
                        t.wru += call.wru / n
                        t.index_wru += call.index_wru / n
                        t.rru += call.rru / n
                    else:
                        label = f"{call.service} {call.operation}"
                        t.other[label] = t.other.get(label, 0.0) + 1 / n
            t.sqs_mapping += len(run.mapping) / n
        return t

    @property
    def logs_total(self) -> float:
        return sum(self.log_bytes.values())

    def dollars(self, adjusted: bool = False) -> dict[str, float]:
        """Dollars per million alerts, per service."""
        m = prices.MILLION
        gb_s = self.adjusted_gb_seconds if adjusted else self.gb_seconds
        return {
            "API GW": self.api_requests * prices.API_GATEWAY_HTTP_PER_MILLION,
            "Lambda": sum(self.invocations.values()) * prices.LAMBDA_REQUEST_PER_MILLION
            + gb_s * m * prices.LAMBDA_ARM64_PER_GB_SECOND,
            "SQS": (self.sqs_code + self.sqs_mapping) * prices.SQS_STANDARD_PER_MILLION,
            "DynamoDB": self.wru * prices.DYNAMODB_WRITE_UNIT_PER_MILLION
            + self.rru * prices.DYNAMODB_READ_UNIT_PER_MILLION,
            "Logs": self.logs_total * m / prices.GB * prices.CLOUDWATCH_LOGS_PER_GB,
            "X-Ray": 0.0,
        }


# -- the run ------------------------------------------------------------------------------------
def run_scenarios(count: int, spacing: float, warmup: int) -> tuple[TemplateFacts, dict[str, list[AlertRun]], str]:
    import time_machine

    facts = read_template()
    env = {
        **facts.environment,
        "POWERTOOLS_LOG_LEVEL": facts.environment.get("POWERTOOLS_LOG_LEVEL")
        or facts.environment.get("LOG_LEVEL")
        or "INFO",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "PDRELAY_CONFIG": "",  # the one-route configuration from PDRELAY_ROUTING_KEY and PDRELAY_TOKEN
        "PDRELAY_TOKEN": TOKEN,
        "PDRELAY_ROUTING_KEY": ROUTING_KEY,
    }
    for name in ("POWERTOOLS_METRICS_DISABLED", "AWS_ENDPOINT_URL"):
        os.environ.pop(name, None)
    os.environ.update(env)

    import boto3
    from moto import mock_aws

    from pdrelay.local.emulator import EmulatorServer
    from pdrelay.local.stack import create_resources
    from pdrelay.local.template import read_spec

    runs: dict[str, list[AlertRun]] = {s.key: [] for s in SCENARIOS}
    emulator = EmulatorServer().start()
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    phase = timedelta(seconds=(count + warmup) * spacing) + GROUP_INTERVAL
    try:
        with mock_aws(), time_machine.travel(start, tick=True) as traveller:
            ddb, sqs = boto3.client("dynamodb"), boto3.client("sqs")  # the bench's own: set-up, item images
            queues, tables = create_resources(read_spec(TEMPLATE), sqs, ddb)
            os.environ.update(
                PDRELAY_QUEUE_URL=queues["AlertQueue"],
                PDRELAY_DLQ_URL=queues["DeadLetterQueue"],
                PDRELAY_TABLE_NAME=tables["DedupTable"],
                PDRELAY_EVENTS_URL=emulator.url,
            )
            meter, mapping_meter = AwsMeter(ddb, moto_item_reader(ddb)), AwsMeter(ddb, moto_item_reader(ddb))
            mapping_sqs = boto3.client("sqs")
            mapping_meter.attach(mapping_sqs)
            with metering_new_clients(meter):
                pipeline = Pipeline(facts, meter, mapping_meter, emulator)
                pipeline.mapping_sqs = mapping_sqs
                bodies: dict[tuple[str, int], bytes] = {}
                started = start - timedelta(minutes=3)
                for index in range(warmup):  # the first invocations (cold start) are not counted
                    traveller.move_to(start + timedelta(seconds=index * spacing))
                    pipeline.send(alertmanager_body(10_000 + index, "firing", started, start))
                for number in sorted({s.phase for s in SCENARIOS}):
                    for index in range(count):
                        slot = start + number * phase + timedelta(seconds=(warmup + index) * spacing)
                        for scenario in [s for s in SCENARIOS if s.phase == number]:
                            traveller.move_to(slot + scenario.after)
                            now = datetime.now(UTC)
                            if scenario.same_body_as:
                                body = bodies[(scenario.same_body_as, index)]
                            else:
                                body = alertmanager_body(index, scenario.status, started, now)
                            bodies[(scenario.key, index)] = body
                            runs[scenario.key].append(pipeline.send(body))
            depth = sqs.get_queue_attributes(
                QueueUrl=queues["AlertQueue"],
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            left = f"{depth['ApproximateNumberOfMessages']} visible, {depth['ApproximateNumberOfMessagesNotVisible']}"
    finally:
        emulator.stop()
    return facts, runs, left


# -- printing -----------------------------------------------------------------------------------
def _label(call: Call) -> str:
    if call.service != "dynamodb":
        return f"{call.service.upper()} {call.operation}"
    what = call.key.split("#")[0] if "#" in call.key else f"alert:{call.key[:8]}"
    units = f"{call.wru:g} WRU" + (f" ({call.index_wru:g} GSI)" if call.index_wru else "")
    units = units if call.operation in WRITES else f"{call.rru:g} RRU"
    failed = f" ({call.error})" if call.error else ""
    return f"{call.operation} {what} {units}{failed}"


def _field_sizes(line: str) -> str:
    """Bytes per top-level field of a JSON log line, largest first."""
    try:
        doc = json.loads(line)
    except ValueError:
        return "(not JSON)"
    if not isinstance(doc, dict):
        return "(not an object)"
    sizes = {k: len(json.dumps({k: v}, separators=(",", ":"), ensure_ascii=False).encode()) - 2 for k, v in doc.items()}
    return "fields: " + ", ".join(f"{k} {n}" for k, n in sorted(sizes.items(), key=lambda kv: -kv[1]))


def _fmt_fn(values: dict[str, float], digits: int = 0) -> str:
    return "/".join(f"{values.get(fn, 0.0):.{digits}f}" for fn in ("ingest", "dispatch"))


def report(facts: TemplateFacts, runs: dict[str, list[AlertRun]], left: str, spacing: float, warmup: int) -> None:
    totals = {key: Totals.of(group) for key, group in runs.items()}
    names = {s.key: s.name for s in SCENARIOS}
    memory = {fn.logical_id: fn.memory_mb for fn in facts.functions.values()}
    level = os.environ.get("POWERTOOLS_LOG_LEVEL", "")
    count = len(next(iter(runs.values())))
    print(
        f"\nend-to-end cost per alert ({count} alerts per scenario, one request each, {spacing:g} s apart on one"
        f" routing key, after {warmup} warm-up alerts)"
    )
    print(
        "  real handlers: HTTP API v2 event -> ingest -> SQS -> event source mapping -> dispatch -> PagerDuty"
        " emulator; moto in process;"
    )
    print(
        f"  template environment: log level {level}, metrics on (namespace"
        f" {os.environ.get('POWERTOOLS_METRICS_NAMESPACE')}, service {os.environ.get('POWERTOOLS_SERVICE_NAME')}),"
        f" MemorySize ingest {memory.get('IngestFunction')} MB / dispatch {memory.get('DispatchFunction')} MB,"
        f" Tracing {facts.tracing}"
    )
    print(
        "  the alert queue is drained after every request (each message received, handled and deleted as the"
        f" mapping does), so moto's\n  per-send scan of queued messages stays flat; left on it at the end: {left}"
    )
    print(
        f"\n  {'':<4}{'scenario':<50} {'HTTP':>4} {'answer':>6} {'λ inv':>5} {'λ ms i/d':>9} {'x CPU':>9}"
        f" {'SQS':>4} {'ESM':>4} {'DDB':>4} {'WRU':>5} {'GSI':>4} {'RRU':>5} {'log B':>6} {'PD':>4}"
    )
    for key, t in totals.items():
        answers = ",".join(str(s) for s in sorted(t.statuses))
        print(
            f"  ({key}) {names[key]:<50} {t.api_requests:>4.1f} {answers:>6} {sum(t.invocations.values()):>5.2f}"
            f" {_fmt_fn(t.ms):>9} {_fmt_fn(t.adjusted_ms):>9} {t.sqs_code:>4.1f} {t.sqs_mapping:>4.1f}"
            f" {t.ddb_requests:>4.1f} {t.wru:>5.2f} {t.index_wru:>4.1f} {t.rru:>5.2f} {t.logs_total:>6.0f}"
            f" {t.pagerduty:>4.1f}"
        )
        if t.other:
            print(f"      other AWS requests per alert: {', '.join(f'{k} {v:.2f}' for k, v in t.other.items())}")
    print(
        "  per alert: HTTP API requests; ingest's HTTP answers; Lambda invocations; billed ms ingest/dispatch as"
        " measured here, and\n  'x CPU' with pdrelay's own time (all but its AWS requests) x"
        f" {prices.cpu_factor(256):.1f} for 256 MB's CPU share; SQS requests the code sends (64 KB chunks);"
        "\n  ESM: the event source mapping's receive + delete (its empty long polls are a fixed cost, not per"
        " alert); DynamoDB requests,\n  write units (GSI: of which to secondary indexes), read units; log B:"
        " CloudWatch Logs bytes (below); PD: Events API calls"
    )

    floor = prices.floor_per_million()
    services = list(next(iter(totals.values())).dollars())
    print("\n  $ per million alerts (us-east-1 list prices, bench/prices.py)")
    header = "".join(f"{s:>9}" for s in services)
    print(f"  {'':<4}{'scenario':<50}{header} {'total':>8} {'x CPU':>8}  {'floor':>6}")
    for key, t in totals.items():
        dollars, adjusted = t.dollars(), sum(t.dollars(adjusted=True).values())
        cells = "".join(f"{dollars[s]:>9.3f}" for s in services)
        print(f"  ({key}) {names[key]:<50}{cells} {sum(dollars.values()):>8.3f} {adjusted:>8.3f}  {floor:>6.3f}")
    print(
        f"  floor of this design (bench/prices.py): 1 HTTP API request + SQS send, receive, delete +"
        f" 1 WRU = ${floor:.3f} per million"
    )
    new = totals["a"]
    # What this design cannot go below for a new alert whatever pdrelay's code does: the floor, the two
    # Lambda requests, the second write of lease-then-deliver (the lease keeps a resolve from
    # overtaking its trigger), and the log lines others write (Lambda's START/END/REPORT, the access log).
    unavoidable = (
        floor
        + 2 * prices.LAMBDA_REQUEST_PER_MILLION
        + prices.DYNAMODB_WRITE_UNIT_PER_MILLION
        + (new.log_bytes.get("platform", 0.0) + new.log_bytes.get("access", 0.0))
        * prices.MILLION
        / prices.GB
        * prices.CLOUDWATCH_LOGS_PER_GB
    )
    print(
        f"  with what the design needs besides (2 Lambda requests, the lease's second write, Lambda's and the"
        f" access log's lines): ${unavoidable:.3f} per million"
    )
    spent, adjusted = sum(new.dollars().values()), sum(new.dollars(adjusted=True).values())
    print(
        f"  goal for (a): <= ${GOAL_DOLLARS:.2f} per million: measured ${spent:.3f}"
        f" ({'met' if spent <= GOAL_DOLLARS else 'NOT met'}), at 256 MB's CPU ${adjusted:.3f}"
        f" ({'met' if adjusted <= GOAL_DOLLARS else 'NOT met'});"
        f" <= {GOAL_WRU:g} WRU + {GOAL_RRU:g} RRU: {new.wru:.2f} WRU + {new.rru:.2f} RRU"
        f" ({'met' if new.wru <= GOAL_WRU and new.rru <= GOAL_RRU else 'NOT met'})"
    )
    traces = max(1.0, sum(new.invocations.values()))
    xray = prices.XRAY_PER_MILLION_TRACES
    print(
        f"  X-Ray: Tracing {facts.tracing} in the template: "
        + ("$0 (PassThrough records nothing)" if facts.tracing != "Active" else "Active")
        + f"; Active would add ${xray:.2f}-{traces * xray:.2f} per million (1-{traces:g} traces per alert at low"
        " traffic: Lambda samples the first request each second, then 5 %)"
    )
    series = set().union(*(t.series for t in totals.values()))
    print(
        f"  custom metrics: {len(series)} EMF series seen across the scenarios: ${len(series) * 0.30:.2f} a month"
        f" at ${prices.CLOUDWATCH_METRIC_PER_SERIES_MONTH:.2f} per series (fixed, not per alert; EMF documents are"
        " billed as log bytes above)"
    )

    print("\n  CloudWatch Logs bytes per alert (what is ingested, uncompressed; $0.50 per GB):")
    for key, t in totals.items():
        parts = ", ".join(f"{k} {v:.0f}" for k, v in t.log_bytes.items())
        print(f"  ({key}) {t.logs_total:6.0f} B in {t.log_lines:4.1f} lines: {parts}")
    print(
        "  ingest/dispatch: all the handlers wrote to stdout/stderr (pdrelay's JSON lines, EMF documents);"
        " platform: Lambda's\n  START, END and REPORT lines per invocation (about 50 + 40 + 130 bytes, formatted"
        " here with a real request id; a cold start's\n  'Init Duration' adds ~25); access: the HTTP API's access"
        " log line, the template's Format filled with typical values"
    )

    print("\n  AWS requests and log lines of one alert (the middle one) per scenario:")
    for key, group in runs.items():
        run = group[len(group) // 2]
        print(f"  ({key}) {names[key]}: HTTP {run.status} {json.dumps(run.answer)[:100]}")
        for inv in run.invocations:
            fn = inv.function.logical_id.removesuffix("Function").lower()
            calls = " -> ".join(_label(c) for c in inv.calls) or "no AWS request"
            print(f"      {fn} ({inv.seconds * 1000:.1f} ms, {inv.aws_seconds * 1000:.1f} in AWS requests): {calls}")
            for line in inv.lines():
                size = len(line.encode()) + 1
                print(f"        {size:5d} B  {line[:104]}{'...' if len(line) > 104 else ''}")
                if key == "a":
                    print(textwrap.fill(_field_sizes(line), 110, initial_indent=" " * 16, subsequent_indent=" " * 16))
        if run.mapping:
            print(f"      event source mapping: {' -> '.join(_label(c) for c in run.mapping)}")
    print(
        "\n  not in the figures: the configuration's reads (PDRELAY_CONFIG is ssm:... in the template: one"
        " GetParameter per\n  function instance per PDRELAY_CONFIG_MAX_AGE, a KMS decrypt for a SecureString;"
        " here the one-route configuration from\n  the environment); Lambda's INIT phase (billed since August"
        " 2025; see --only coldstart); the mapping's empty polls;\n  DynamoDB TTL deletes (free); PagerDuty itself."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alerts", type=int, default=20, help="alerts per scenario")
    parser.add_argument("--spacing", type=float, default=60.0, help="seconds between alerts (one routing key)")
    parser.add_argument("--warmup", type=int, default=3, help="alerts sent first and not counted (cold start)")
    args = parser.parse_args()
    facts, runs, left = run_scenarios(args.alerts, args.spacing, args.warmup)
    report(facts, runs, left, args.spacing, args.warmup)


if __name__ == "__main__":
    main()
