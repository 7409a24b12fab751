"""The operators' functions behind RedriveFunction, SweepFunction and the CLI, with their clients.

``Resources`` says where the queues and table are: from explicit values, a deployed stack's
outputs, or the running local stack (its ``dev.json``: :mod:`pdrelay.local.state`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pdrelay.errors import ConfigError

if TYPE_CHECKING:
    from pdrelay.config import RelayConfig
    from pdrelay.timeutil import Clock


@dataclass(frozen=True)
class Resources:
    queue_url: str
    dlq_url: str
    table_name: str
    endpoint_url: str | None = None  # the local stack's AWS emulator
    events_url: str = ""
    api_url: str = ""  # PagerDuty's REST API (the local stack's: its emulator's)
    api_key: str = ""  # the local stack's emulator's REST API key (never a real one)
    api_key_secret: str = ""  # a deployed stack's ReconcileApiKeySecretArn
    endpoint_urls: dict[str, str] = field(default_factory=dict)  # the local stack's services with an emulator apart

    def client(self, service: str) -> Any:
        """A client for ``service``: against AWS the process's own (:func:`pdrelay.aws.client`, so
        the sweep, run every minute in one execution environment, does not build a session and
        clients each time); against the local stack's emulator (the service's own, if it has one) a new one
        pointed at it."""
        from pdrelay import aws  # here, not at import: `pdrelay send` and friends need no AWS SDK

        endpoint = self.endpoint_urls.get(service, self.endpoint_url)
        if not endpoint:
            return aws.client(service)  # type: ignore[call-overload]
        return aws.new_client(
            service,  # type: ignore[arg-type]
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - moto's
        )


def from_stack(stack_name: str, cloudformation: Any = None) -> Resources:
    if cloudformation is None:
        import boto3

        cloudformation = boto3.client("cloudformation")
    stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stacks[0].get("Parameters", [])}
    missing = [k for k in ("AlertQueueUrl", "DeadLetterQueueUrl", "DedupTableName") if k not in outputs]
    if missing:
        raise ConfigError(f"stack {stack_name} lacks outputs", missing)
    return Resources(
        outputs["AlertQueueUrl"],
        outputs["DeadLetterQueueUrl"],
        outputs["DedupTableName"],
        events_url=parameters.get("EventsApiUrl", ""),
        api_url=parameters.get("PagerDutyApiUrl", ""),
        api_key_secret=parameters.get("ReconcileApiKeySecretArn", ""),
    )


def from_dev_state(path: Path | None = None) -> Resources:
    from pdrelay.local.state import dev_state_file

    path = path or dev_state_file()
    try:
        state = json.loads(path.read_text())
        return Resources(
            state["queue_url"],
            state["dlq_url"],
            state["table_name"],
            state["aws_endpoint"],
            state.get("events_url", ""),
            state.get("pagerduty_api_url", ""),
            state.get("pagerduty_api_key", ""),
            endpoint_urls=state.get("aws_endpoints", {}),
        )
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError("no local stack found: start `pdrelay dev`, or pass --stack NAME") from exc


def from_environment() -> Resources:
    return Resources(
        os.environ.get("PDRELAY_QUEUE_URL", ""),
        os.environ.get("PDRELAY_DLQ_URL", ""),
        os.environ.get("PDRELAY_TABLE_NAME", ""),
    )


class RedriveRequest:
    """What RedriveFunction is invoked with (validated): the same choices as ``pdrelay redrive``."""

    ACTIONS = ("inspect", "redrive", "purge")

    def __init__(self, event: dict[str, Any]) -> None:
        problems = []
        self.action = event.get("action", "inspect")
        if self.action not in self.ACTIONS:
            problems.append(f"action: one of {', '.join(self.ACTIONS)}")
        self.route = event.get("route")
        self.routing_key = event.get("routing_key")
        self.dry_run = bool(event.get("dry_run", False))
        self.limit = event.get("limit")
        if self.limit is not None and (not isinstance(self.limit, int) or self.limit < 1):
            problems.append("limit: a positive whole number")
        if self.action == "purge" and event.get("confirm") is not True:
            problems.append('confirm: purging needs "confirm": true')
        if problems:
            raise ConfigError("invalid redrive request", problems)


def run_redrive(event: dict[str, Any], resources: Resources) -> dict[str, Any]:
    from pdrelay.ops import redrive

    request = RedriveRequest(event)
    sqs = resources.client("sqs")
    if request.action == "inspect":
        return redrive.inspect(sqs, resources.dlq_url, limit=request.limit).as_dict()
    if request.action == "purge":
        return {"purged": redrive.purge(sqs, resources.dlq_url)}
    where = redrive.Filter(route=request.route, routing_key=request.routing_key)
    result = redrive.redrive(
        sqs, resources.dlq_url, resources.queue_url, where=where, dry_run=request.dry_run, limit=request.limit
    )
    from pdrelay.observability import REDRIVEN, count

    if result.moved:
        count(REDRIVEN, value=result.moved)
    return result.as_dict()


def run_sweep(
    resources: Resources,
    events_url: str,
    older_than_seconds: int,
    ttl_days: int = 30,
    connect_timeout: float = 3.05,
    read_timeout: float = 6.0,
    config: Callable[[], RelayConfig | None] | None = None,
    clock: Clock | None = None,
    reconcile: ReconcileSchedule | None = None,
) -> dict[str, Any]:
    """Re-send pending resolves; with ``config`` (the routes' windows and heartbeats) also end holds
    whose maintenance window is over, and page (or resolve) silent heartbeats. Without it, held
    alerts are left alone: releasing them without knowing the configured windows could page in the
    middle of one. With ``reconcile``, when it is due, compare with PagerDuty and fix the drift
    (:func:`run_scheduled_reconcile`)."""
    from pdrelay.delivery.events_api import EventsClient
    from pdrelay.ops.sweeper import refresh_rollups, release_held, sweep
    from pdrelay.policy import heartbeats
    from pdrelay.policy.judge import Policy
    from pdrelay.table import DedupStore
    from pdrelay.timeutil import SYSTEM_CLOCK

    store = DedupStore(resources.client("dynamodb"), resources.table_name, ttl_days, clock or SYSTEM_CLOCK)
    events = EventsClient(events_url, connect_timeout=connect_timeout, read_timeout=read_timeout)
    result = sweep(store, events, older_than_seconds=older_than_seconds).as_dict()
    if config is not None and resources.queue_url:
        policy = Policy(store, config)
        released = release_held(store, policy, resources.client("sqs"), resources.queue_url)
        result.update({f"held_{k}": v for k, v in released.as_dict().items()})
        result["rollups_refreshed"] = refresh_rollups(policy, events)
        relay = config()
        if relay is not None:  # also with none configured: one removed while silent is resolved
            checked = heartbeats.check(store, relay, resources.client("sqs"), resources.queue_url)
            result.update({f"heartbeats_{k}": v for k, v in checked.as_dict().items()})
    if reconcile is not None and reconcile.due(store.clock.time()):
        result.update(run_scheduled_reconcile(store, events, reconcile, config))
    return result


@dataclass(frozen=True)
class ReconcileSchedule:
    """The sweep's reconcile: every ``every_minutes`` (0: never), with the API key read from
    ``secret`` (Secrets Manager; empty: never) by ``read_secret``."""

    every_minutes: int
    secret: str
    api_url: str
    read_secret: Callable[[str], str]

    def due(self, now: float) -> bool:
        """On the minutes that are a multiple of ``every_minutes`` (the sweep runs each minute):
        deciding costs no call."""
        return self.every_minutes > 0 and bool(self.secret) and int(now // 60) % self.every_minutes == 0


def read_secret_string(secret: str, client: Any = None) -> str:
    """A secret's value (the REST API key), from Secrets Manager."""
    from botocore.exceptions import BotoCoreError, ClientError

    from pdrelay import aws

    try:
        value = (client or aws.client("secretsmanager")).get_secret_value(SecretId=secret).get("SecretString")
    except (ClientError, BotoCoreError) as exc:
        code = exc.response.get("Error", {}).get("Code", "Unknown") if isinstance(exc, ClientError) else type(exc)
        raise ConfigError(f"cannot read the PagerDuty API key's secret: {code}") from exc
    if not value or not str(value).strip():
        raise ConfigError("the PagerDuty API key's secret is empty")
    return str(value).strip()


def run_scheduled_reconcile(
    store: Any, events: Any, schedule: ReconcileSchedule, config: Callable[[], RelayConfig | None] | None
) -> dict[str, Any]:
    """Reconcile with fix, as the sweep runs it: drift counted per kind (ReconcileDrift); a failure
    is logged and reported, never fails the sweep."""
    from pdrelay.errors import PdrelayError
    from pdrelay.observability import logger
    from pdrelay.ops.pagerduty_api import RestClient
    from pdrelay.ops.reconcile import Options, count_drift, reconcile

    try:
        api = RestClient(schedule.read_secret(schedule.secret), schedule.api_url)
        report = reconcile(store, api, events, config() if config else None, Options(fix=True))
    except PdrelayError as exc:
        logger.warning("reconcile: not run", extra={"error": str(exc)})
        return {"reconcile_error": str(exc)}
    count_drift(report)
    fixed = sum(1 for d in report.drifts if d.done)
    return {**{f"reconcile_{k.replace('-', '_')}": n for k, n in report.counts().items()}, "reconcile_fixed": fixed}
