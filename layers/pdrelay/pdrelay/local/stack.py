"""The whole relay on one machine: moto server + API Gateway adapter + SQS poller + PD emulator.

:class:`LocalStack` starts moto in server mode in processes of its own (:mod:`~pdrelay.local.aws_process`:
one for SQS, one for the rest; they and the handlers get cores of their own), creates the queues and table
with template.yaml's properties
(:func:`create_resources`; the checkout's template.yaml, else the spec packaged with pdrelay:
:mod:`~pdrelay.local.template`), loads each function's ``lambda_handler`` as Lambda would
(:mod:`~pdrelay.local.runtime`), and starts the pieces: the API Gateway adapter
(:mod:`~pdrelay.local.apigw`) in front of the ingest handler, the event source poller
(:mod:`~pdrelay.local.poller`) in front of the dispatch handler, the scheduled sweep, and unless told
another Events API URL the PagerDuty emulator (:mod:`~pdrelay.local.emulator`).
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pdrelay.local.apigw import ApiServer
from pdrelay.local.aws_process import AwsEmulator
from pdrelay.local.emulator import EmulatorServer
from pdrelay.local.poller import SqsPoller
from pdrelay.local.runtime import REGION, FakeLambdaContext, HandlerPool
from pdrelay.local.template import FunctionSpec, TemplateSpec, find_template, packaged_spec, read_spec
from pdrelay.ops.status import queue_counts


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


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


# Services served by a moto process of their own; the clients find it through boto3's
# AWS_ENDPOINT_URL_<SERVICE>. One moto process uses one core at most (its interpreter lock), and at
# 50 alerts/s SQS (send, receive, delete) and DynamoDB (lease, delivered) together need more.
OWN_AWS_PROCESS = ("sqs",)

LOG_MAX_BYTES = 10 * 1024 * 1024
LOG_BACKUPS = 2  # at most 30 MB of logs in all


def log_to_file(path: Path, max_bytes: int = LOG_MAX_BYTES, backups: int = LOG_BACKUPS) -> Callable[[], None]:
    """Copy every log line of this process to ``path``, rotated at ``max_bytes`` (``path.1`` the
    newest of ``backups`` older files); the function returned stops it and closes the file."""
    import logging.handlers

    from pdrelay.observability import copy_lines_to

    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(message)s"))
    record = logging.makeLogRecord  # the handler's lock keeps lines of threads side by side whole

    def write(line: str) -> None:
        handler.handle(record({"msg": line, "levelno": logging.INFO, "levelname": "INFO"}))

    stop_copying = copy_lines_to(write)

    def stop() -> None:
        stop_copying()
        handler.close()

    return stop


@dataclass
class StackOptions:
    template: Path | None = None  # None: the checkout's around the working folder, else the packaged spec
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
    log_file: Path | None = None  # also write the JSON log lines here (`pdrelay dev`: dev.log in the state folder)
    log_max_bytes: int = LOG_MAX_BYTES  # then rotated: <name>.1, <name>.2, ... up to log_backups
    log_backups: int = LOG_BACKUPS


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """These environment variables set while inside, as they were after."""
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
        template = options.template or find_template(Path.cwd().resolve())
        self.template: Path | None = template.resolve() if template is not None else None
        self.spec: TemplateSpec = read_spec(self.template) if self.template is not None else packaged_spec()
        self.emulator: EmulatorServer | None = None
        self.api: ApiServer | None = None
        self.pollers: list[SqsPoller] = []
        self.queue_urls: dict[str, str] = {}
        self.table_names: dict[str, str] = {}
        self.moto_url = ""  # the AWS emulator of every service but those in aws_endpoints
        self.aws_endpoints: dict[str, str] = {}  # services with an emulator of their own: SQS
        self.events_url = ""
        self._aws: list[AwsEmulator] = []
        self._env: AbstractContextManager[None] | None = None
        self._threads: list[threading.Thread] = []
        self._stop_log_file: Callable[[], None] | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> LocalStack:
        """Start every piece; if one fails, stop those already started (their processes and
        threads), then raise: ``with LocalStack(...)`` never reaches ``__exit__`` then."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> LocalStack:
        if self.options.log_file is not None:
            self._stop_log_file = log_to_file(
                self.options.log_file, self.options.log_max_bytes, self.options.log_backups
            )
        self._start_aws()
        if self.options.events_url:
            self.events_url = self.options.events_url
        else:
            self.emulator = EmulatorServer(self.options.host, self.options.emulator_port).start()
            self.events_url = self.emulator.url
        env = {
            "AWS_ENDPOINT_URL": self.moto_url,
            **{f"AWS_ENDPOINT_URL_{service.upper()}": url for service, url in self.aws_endpoints.items()},
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "POWERTOOLS_SERVICE_NAME": "pdrelay",
            "POWERTOOLS_METRICS_NAMESPACE": "pdrelay",
        }
        if self.options.quiet_metrics:
            env["POWERTOOLS_METRICS_DISABLED"] = "true"
        self._env = environment(env)
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
        source = dispatch_fn.sqs_source
        assert source is not None
        workers = self.options.pollers or min(source.max_concurrency, 2)
        relay_env["PDRELAY_DISPATCH_CONCURRENCY"] = str(workers)  # how a key's burst is shared out
        relay_env["PDRELAY_INGEST_CONCURRENCY"] = "1"  # one process takes every request: a caller's burst is its own
        relay_env.update(self.options.env)
        os.environ.update(relay_env)
        self._env_keys = list(relay_env)
        self._reset_caches()
        self._warm_clients()
        ingest = HandlerPool(ingest_fn)
        dispatch = HandlerPool(dispatch_fn)
        self.api = ApiServer(ingest, self.options.host, self.options.port, self.openapi_path)
        self._spawn(self.api.serve_forever, "api")
        poller = SqsPoller(
            self.sqs,
            self.queue_urls[source.queue],
            self._arn(source.queue),
            dispatch_fn,
            dispatch,
            workers=workers,
            crash_rate=self.options.crash_rate,
        )
        poller.start()
        self.pollers.append(poller)
        sweep_fn = self.spec.functions.get("SweepFunction")
        if sweep_fn is not None and self.options.sweep_seconds > 0:
            self._stopping = threading.Event()
            self._spawn(lambda: self._schedule(HandlerPool(sweep_fn), self.options.sweep_seconds), "sweep")
        return self

    def _start_aws(self) -> None:
        """moto, in two processes: SQS in one (:data:`OWN_AWS_PROCESS`), every other service in
        the other, each process with a core of its own."""
        main = AwsEmulator(self.options.host, name="aws").launch()
        self._aws.append(main)
        apart = {service: AwsEmulator(self.options.host, name=service).launch() for service in OWN_AWS_PROCESS}
        self._aws.extend(apart.values())
        for aws in self._aws:
            aws.wait_ready()  # raises (stop() stops them all)
        self.moto_url = main.url
        self.aws_endpoints = {service: aws.url for service, aws in apart.items()}

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
        """Stop what was started (all of it, or what a failed start got to); again, it does nothing."""
        if getattr(self, "_stopping", None) is not None:
            self._stopping.set()
        for poller in self.pollers:
            poller.stop()
        self.pollers = []
        if self.api is not None:
            self.api.shutdown()
            self.api.server_close()
            self.api = None
        if self.emulator is not None:
            self.emulator.stop()
            self.emulator = None
        for aws in self._aws:
            aws.stop()
        self._aws = []
        for key in getattr(self, "_env_keys", []):
            os.environ.pop(key, None)
        self._env_keys = []
        if self._env is not None:
            self._env.__exit__(None, None, None)
            self._env = None
        self._reset_caches()
        if self._stop_log_file is not None:
            self._stop_log_file()
            self._stop_log_file = None

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- helpers ---------------------------------------------------------------------------
    @property
    def openapi_path(self) -> Path | None:
        """The OpenAPI document served at ``/openapi.yaml``: found beside the template, so an installed
        package serving a checkout's template serves that checkout's document (none without one)."""
        path = self.options.openapi
        if path.is_absolute():
            return path
        return self.template.parent / path if self.template is not None else None

    @property
    def template_source(self) -> str:
        """Where the queues, table and functions came from, for the banner."""
        return str(self.template) if self.template is not None else "the template packaged with pdrelay"

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
        from pdrelay.delivery.events_api import forget_pools
        from pdrelay.settings import get_settings

        get_settings.cache_clear()
        clear_clients()
        reset_dispatcher()
        forget_pools()

    @staticmethod
    def _warm_clients() -> None:
        """Create the process's AWS clients now, as a Lambda init phase would: created on first use
        instead, the first burst's concurrent requests each built their own (the client cache is not
        locked), seconds of CPU (~0.2 s each) before the first answer."""
        from pdrelay.aws import client

        client("sqs")
        client("dynamodb")

    @property
    def max_receives(self) -> int:
        """Deliveries of one alert message before SQS moves it to the dead-letter queue."""
        source = self.spec.functions["DispatchFunction"].sqs_source
        assert source is not None
        return self.spec.queues[source.queue].max_receive_count or 0

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
            counts = queue_counts(self.sqs, url)
            depths[logical_id] = {
                "waiting": counts["ApproximateNumberOfMessages"],
                "in_flight": counts["ApproximateNumberOfMessagesNotVisible"],
                "delayed": counts.get("ApproximateNumberOfMessagesDelayed", 0),
            }
        return depths
