"""The whole relay on one machine: moto server + API Gateway adapter + SQS poller + PD emulator.

The queues and table come from template.yaml's properties; the handlers are the functions' own
``app.lambda_handler`` loaded from their CodeUri; the poller feeds SQS batches to the dispatcher as
Lambda's event source mapping does (batch size, partial batch failures; redelivery after the
visibility timeout and the move to the DLQ after ``maxReceiveCount`` are SQS's own, in moto).
"""

from __future__ import annotations

import base64
import json
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlparse

import yaml

from pdrelay.local.emulator import EmulatorServer
from pdrelay.local.template import FunctionSpec, TemplateSpec, read_spec

REGION = "us-east-1"
API_GATEWAY_MAX_BODY = 10 * 1024 * 1024
TEXT_TYPES = (
    "text/",
    "application/json",
    "application/xml",
    "application/javascript",
    "application/x-www-form-urlencoded",
)
OPENAPI_TYPES = {"/openapi.yaml": "application/yaml", "/openapi.json": "application/json"}


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class FakeLambdaContext:
    function_name: str
    memory_limit_in_mb: int = 256
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    timeout_seconds: int = 30

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:000000000000:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return self.timeout_seconds * 1000


def api_gateway_event(
    method: str, raw_path: str, headers: dict[str, str], body: bytes, source_ip: str = "127.0.0.1"
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload format 2.0) event, as API Gateway builds it."""
    url = urlparse(raw_path)
    content_type = headers.get("content-type", "")
    is_text = not body or content_type.startswith(TEXT_TYPES) or not content_type
    try:
        text = body.decode("utf-8") if is_text else None
    except UnicodeDecodeError:
        text = None
    query: dict[str, str] = {}
    for key, value in parse_qsl(url.query, keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value
    now = datetime.now(UTC)
    request_id = base64.b32encode(uuid.uuid4().bytes[:10]).decode().rstrip("=")
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": url.path,
        "rawQueryString": url.query,
        "headers": headers,
        "queryStringParameters": query or None,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": "127.0.0.1",
            "http": {
                "method": method,
                "path": url.path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": "$default",
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "body": text if text is not None else base64.b64encode(body).decode(),
        "isBase64Encoded": text is None,
    }


class HandlerPool:
    """Execution environments for one function, as Lambda keeps them: each invocation gets an
    environment of its own (the handler module loaded afresh when none is free), so module-level
    state such as Powertools' resolver and batch processor is never shared by concurrent calls."""

    def __init__(self, function: FunctionSpec) -> None:
        self.function = function
        self._free: list[Callable[[dict[str, Any], Any], Any]] = []
        self._lock = threading.Lock()
        self.environments = 0

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        with self._lock:
            handler = self._free.pop() if self._free else None
        if handler is None:
            handler = self.function.load_handler()
            with self._lock:
                self.environments += 1
        try:
            return handler(event, context)
        finally:
            with self._lock:
                self._free.append(handler)


def queue_arn(logical_id: str, account: str = "123456789012") -> str:
    return f"arn:aws:sqs:{REGION}:{account}:pdrelay-{logical_id}"


def create_resources(spec: TemplateSpec, sqs: Any, dynamodb: Any) -> tuple[dict[str, str], dict[str, str]]:
    """Create the template's queues and tables (moto or AWS) with the template's properties.

    Returns the queue URLs and table names by logical id.
    """
    queue_urls: dict[str, str] = {}
    table_names: dict[str, str] = {}
    # Dead-letter targets first, so redrive policies can name them.
    for queue in sorted(spec.queues.values(), key=lambda q: q.dead_letter_target is not None):
        attributes = dict(queue.attributes)
        if queue.dead_letter_target:
            attributes["RedrivePolicy"] = json.dumps(
                {
                    "deadLetterTargetArn": queue_arn(queue.dead_letter_target),
                    "maxReceiveCount": queue.max_receive_count,
                }
            )
        answer = sqs.create_queue(QueueName=f"pdrelay-{queue.logical_id}", Attributes=attributes)
        queue_urls[queue.logical_id] = answer["QueueUrl"]
    for table in spec.tables.values():
        name = f"pdrelay-{table.logical_id}"
        extra: dict[str, Any] = {}
        if table.global_secondary_indexes:
            extra["GlobalSecondaryIndexes"] = table.global_secondary_indexes
        dynamodb.create_table(
            TableName=name,
            KeySchema=table.key_schema,
            AttributeDefinitions=table.attribute_definitions,
            BillingMode=table.billing_mode,
            **extra,
        )
        if table.ttl_attribute:
            dynamodb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"AttributeName": table.ttl_attribute, "Enabled": True},
            )
        table_names[table.logical_id] = name
    return queue_urls, table_names


class _ApiHandler(BaseHTTPRequestHandler):
    server: ApiServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # see emulator._Handler

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        if self.command == "GET" and urlparse(self.path).path in OPENAPI_TYPES:
            self._openapi(urlparse(self.path).path)
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > API_GATEWAY_MAX_BODY:
            self._reply(413, {"message": "Request Entity Too Large"})
            self.close_connection = True
            return
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        event = api_gateway_event(self.command, self.path, headers, body, self.client_address[0])
        context = FakeLambdaContext("IngestFunction", timeout_seconds=10)
        try:
            answer = self.server.ingest(event, context)
        except Exception:
            self._reply(500, {"message": "Internal Server Error"})
            return
        data = answer.get("body") or ""
        raw = base64.b64decode(data) if answer.get("isBase64Encoded") else data.encode()
        self.send_response(int(answer.get("statusCode", 200)))
        for key, value in (answer.get("headers") or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _openapi(self, path: str) -> None:
        """The API's OpenAPI document (docs/openapi.yaml), as YAML or as JSON: not a Lambda route."""
        source = self.server.openapi
        if source is None or not source.is_file():
            self._reply(404, {"message": f"no OpenAPI document at {source}"})
            return
        text = source.read_text(encoding="utf-8")
        data = (json.dumps(yaml.safe_load(text)) if path.endswith(".json") else text).encode()
        self.send_response(200)
        self.send_header("Content-Type", OPENAPI_TYPES[path])
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle


class ApiServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, ingest: Callable[[dict[str, Any], Any], dict[str, Any]], host: str, port: int, openapi: Path | None = None
    ) -> None:
        super().__init__((host, port), _ApiHandler)
        self.ingest = ingest
        self.openapi = openapi  # served at GET /openapi.yaml and /openapi.json


class SqsPoller:
    """Lambda's SQS event source mapping, in threads: receive a batch, invoke, delete the successes."""

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        queue_arn: str,
        function: FunctionSpec,
        handler: Callable[[dict[str, Any], Any], dict[str, Any]],
        workers: int,
        crash_rate: float = 0.0,
    ) -> None:
        assert function.sqs_source is not None
        self.sqs = sqs
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.function = function
        self.source = function.sqs_source
        self.handler = handler
        self.workers = workers
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.invocations = 0
        self.errors = 0
        self.crashes = 0
        self.crash_rate = crash_rate  # chaos: the share of invocations killed mid-batch

    def start(self) -> None:
        for i in range(self.workers):
            thread = threading.Thread(target=self._run, name=f"sqs-poller-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once(wait_seconds=1)
            except Exception:
                self.errors += 1
                time.sleep(0.5)

    def poll_once(self, wait_seconds: int = 0) -> int:
        answer = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=min(self.source.batch_size, 10),
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = answer.get("Messages", [])
        if not messages:
            return 0
        event = {"Records": [self._record(m) for m in messages]}
        self.invocations += 1
        if self.crash_rate and random.random() < self.crash_rate:
            # Killed mid-batch: the first k records were processed (PagerDuty called, table
            # written), then the process died, so nothing is deleted and SQS redelivers it all.
            self.crashes += 1
            event["Records"] = event["Records"][: random.randint(0, len(messages) - 1)]
            if event["Records"]:
                self.handler(event, FakeLambdaContext(self.function.logical_id, timeout_seconds=self.function.timeout))
            return len(messages)
        try:
            result = self.handler(
                event, FakeLambdaContext(self.function.logical_id, timeout_seconds=self.function.timeout)
            )
        except Exception:
            self.errors += 1
            return len(messages)
        failed = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        return len(messages)

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": {
                name: {
                    "stringValue": attr.get("StringValue"),
                    "dataType": attr.get("DataType", "String"),
                    "stringListValues": [],
                    "binaryListValues": [],
                }
                for name, attr in message.get("MessageAttributes", {}).items()
            },
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": REGION,
        }


@dataclass
class StackOptions:
    template: Path = Path("template.yaml")
    host: str = "127.0.0.1"
    port: int = 3000
    emulator_port: int = 0
    events_url: str | None = None  # None: start the emulator and send there
    routing_key: str = ""
    token: str = ""
    config: str = ""  # a configuration file; overrides routing_key/token
    retry_base_seconds: int | None = None
    pollers: int | None = None
    quiet_metrics: bool = True
    env: dict[str, str] = field(default_factory=dict)  # more PDRELAY_* settings for the handlers
    queue_overrides: dict[str, dict[str, str]] = field(default_factory=dict)  # tests: e.g. a short visibility
    crash_rate: float = 0.0  # tests: chaos in the poller
    sweep_seconds: float = 60.0  # how often SweepFunction runs (its schedule in the template); 0: never
    openapi: Path = Path("docs/openapi.yaml")  # served at /openapi.yaml; relative: from the template's folder


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


class LocalStack:
    """Start with :meth:`start`, stop with :meth:`stop` (or use as a context manager)."""

    def __init__(self, options: StackOptions) -> None:
        self.options = options
        self.spec: TemplateSpec = read_spec(options.template.resolve())
        self.emulator: EmulatorServer | None = None
        self.api: ApiServer | None = None
        self.pollers: list[SqsPoller] = []
        self.queue_urls: dict[str, str] = {}
        self.table_names: dict[str, str] = {}
        self.moto_url = ""
        self.events_url = ""
        self._moto: Any = None
        self._env: Any = None
        self._threads: list[threading.Thread] = []

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> LocalStack:
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        moto_port = free_port(self.options.host)
        self._moto = ThreadedMotoServer(ip_address=self.options.host, port=moto_port, verbose=False)
        self._moto.start()
        self.moto_url = f"http://{self.options.host}:{moto_port}"
        # moto keeps its state per process, not per server: start from nothing, as a new account would.
        import requests

        requests.post(f"{self.moto_url}/moto-api/reset", timeout=10).raise_for_status()
        if self.options.events_url:
            self.events_url = self.options.events_url
        else:
            self.emulator = EmulatorServer(self.options.host, self.options.emulator_port).start()
            self.events_url = self.emulator.url
        env = {
            "AWS_ENDPOINT_URL": self.moto_url,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "POWERTOOLS_SERVICE_NAME": "pdrelay",
            "POWERTOOLS_METRICS_NAMESPACE": "pdrelay",
        }
        if self.options.quiet_metrics:
            env["POWERTOOLS_METRICS_DISABLED"] = "true"
        self._env = _environment(env)
        self._env.__enter__()
        import boto3

        session = boto3.session.Session()
        self.sqs = session.client("sqs")
        self.dynamodb = session.client("dynamodb")
        self._create_resources()
        ingest_fn = self.spec.functions["IngestFunction"]
        dispatch_fn = self.spec.functions["DispatchFunction"]
        relay_env = {
            "PDRELAY_QUEUE_URL": self.queue_urls[dispatch_fn.sqs_source.queue],  # type: ignore[union-attr]
            "PDRELAY_DLQ_URL": self.queue_urls[self._dlq_of(dispatch_fn)],
            "PDRELAY_TABLE_NAME": next(iter(self.table_names.values())),
            "PDRELAY_EVENTS_URL": self.events_url,
            "PDRELAY_CONFIG": str(Path(self.options.config).resolve()) if self.options.config else "",
            "PDRELAY_ROUTING_KEY": self.options.routing_key,
            "PDRELAY_TOKEN": self.options.token,
        }
        if self.options.retry_base_seconds is not None:
            relay_env["PDRELAY_RETRY_BASE_SECONDS"] = str(self.options.retry_base_seconds)
        relay_env.update(self.options.env)
        os.environ.update(relay_env)
        self._env_keys = list(relay_env)
        self._reset_caches()
        ingest = HandlerPool(ingest_fn)
        dispatch = HandlerPool(dispatch_fn)
        self.api = ApiServer(ingest, self.options.host, self.options.port, self.openapi_path)
        self._spawn(self.api.serve_forever, "api")
        source = dispatch_fn.sqs_source
        assert source is not None
        poller = SqsPoller(
            self.sqs,
            self.queue_urls[source.queue],
            self._arn(source.queue),
            dispatch_fn,
            dispatch,
            workers=self.options.pollers or min(source.max_concurrency, 2),
            crash_rate=self.options.crash_rate,
        )
        poller.start()
        self.pollers.append(poller)
        sweep_fn = self.spec.functions.get("SweepFunction")
        if sweep_fn is not None and self.options.sweep_seconds > 0:
            self._stopping = threading.Event()
            self._spawn(lambda: self._schedule(HandlerPool(sweep_fn), self.options.sweep_seconds), "sweep")
        return self

    def _schedule(self, function: HandlerPool, every: float) -> None:
        """Invoke ``function`` as EventBridge Scheduler would, every ``every`` seconds."""
        import logging

        while not self._stopping.wait(every):
            try:
                function(
                    {"source": "aws.scheduler", "detail-type": "Scheduled Event"}, FakeLambdaContext("SweepFunction")
                )
            except Exception:  # a failed run is the next run's business, as on AWS
                logging.getLogger("pdrelay.local").exception("scheduled sweep failed")

    def stop(self) -> None:
        if getattr(self, "_stopping", None) is not None:
            self._stopping.set()
        for poller in self.pollers:
            poller.stop()
        if self.api is not None:
            self.api.shutdown()
            self.api.server_close()
        if self.emulator is not None:
            self.emulator.stop()
        if self._moto is not None:
            self._moto.stop()
        for key in getattr(self, "_env_keys", []):
            os.environ.pop(key, None)
        if self._env is not None:
            self._env.__exit__(None, None, None)
        self._reset_caches()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- helpers ---------------------------------------------------------------------------
    @property
    def openapi_path(self) -> Path:
        """The OpenAPI document served at ``/openapi.yaml``: found beside the template, so an installed
        package serving a checkout's template serves that checkout's document."""
        path = self.options.openapi
        return path if path.is_absolute() else self.options.template.resolve().parent / path

    @property
    def url(self) -> str:
        assert self.api is not None
        host = self.api.server_address[0]
        host = host.decode() if isinstance(host, bytes) else str(host)
        return f"http://{host}:{self.api.server_address[1]}"

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    @staticmethod
    def _reset_caches() -> None:
        from pdrelay.aws import clear_clients
        from pdrelay.delivery.dispatcher import reset_dispatcher
        from pdrelay.ingest.replay import clear_guards
        from pdrelay.settings import get_settings

        get_settings.cache_clear()
        clear_guards()
        clear_clients()
        reset_dispatcher()

    def _dlq_of(self, function: FunctionSpec) -> str:
        assert function.sqs_source is not None
        target = self.spec.queues[function.sqs_source.queue].dead_letter_target
        assert target is not None, "the dispatcher's queue has no redrive policy in the template"
        return target

    def _arn(self, logical_id: str) -> str:
        return queue_arn(logical_id)

    def _create_resources(self) -> None:
        for logical_id, attributes in self.options.queue_overrides.items():
            queue = self.spec.queues[logical_id]
            self.spec.queues[logical_id] = replace(queue, attributes={**queue.attributes, **attributes})
        self.queue_urls, self.table_names = create_resources(self.spec, self.sqs, self.dynamodb)

    def queue_depths(self) -> dict[str, dict[str, int]]:
        depths = {}
        for logical_id, url in self.queue_urls.items():
            attrs = self.sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed",
                ],
            )["Attributes"]
            depths[logical_id] = {
                "waiting": int(attrs["ApproximateNumberOfMessages"]),
                "in_flight": int(attrs["ApproximateNumberOfMessagesNotVisible"]),
                "delayed": int(attrs.get("ApproximateNumberOfMessagesDelayed", 0)),
            }
        return depths
