"""Logs, metrics and masking in one place: small, and priced per byte.

**Logs** are JSON lines on standard error (diagnostics, never mixed with a command's output; Lambda
sends it to the function's log group like standard output): ``level``, ``message`` (and
``timestamp`` outside Lambda: CloudWatch Logs stamps each line), then what ties the line to its
alert (``request_id``: API Gateway's id of the request that brought the alert in, the same at
ingest and in the dispatcher; ``dedup_key``, ``route``, ...), then the line's own fields. What
never changes in an execution environment (function name, version, memory size) is written once,
in its first line (``"execution environment started"``): the log group already says which function
it is. Outside Lambda (the local stack, where the functions share one output) each line also says
its ``function``, and :func:`copy_lines_to` sends a copy of each line to a file as well (``pdrelay
dev``'s log file, which ``pdrelay trace`` reads). The keys of an invocation, and of each message
within it, live in a context variable, so handlers running in threads side by side (the local
stack) never lend each other theirs. Level: ``POWERTOOLS_LOG_LEVEL`` or ``LOG_LEVEL`` (template parameter ``LogLevel``).

**Metrics** are CloudWatch embedded metric format (EMF) documents, on standard error too. During an
invocation they are gathered and written when it ends as one document (more only when two values of one dimension
meet: ``Action=trigger`` and ``Action=resolve`` cannot share a document), each metric with the
``service`` dimension and its own (a contract with template.yaml's dashboard and alarms); outside
an invocation, each is written at once. ``POWERTOOLS_METRICS_DISABLED=true`` turns them off;
namespace and service come from ``POWERTOOLS_METRICS_NAMESPACE`` and ``POWERTOOLS_SERVICE_NAME``.

Tracing: the template's ``Tracing`` parameter (``PassThrough`` by default, ``Active`` to turn it on)
sets X-Ray active tracing for each function, which records invocations and AWS calls' timing at the
Lambda service level. No X-Ray SDK is loaded: it adds about 0.3 s of imports to every cold start.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TypeVar

from pdrelay import __version__

DEFAULT_NAMESPACE = "pdrelay"

# Metric names (a contract with template.yaml's dashboard and alarms).
ALERTS_RECEIVED = "AlertsReceived"  # dims: Format
ALERTS_ACCEPTED = "AlertsAccepted"  # dims: Format, Action
REQUESTS_REJECTED = "RequestsRejected"  # dims: Status
EVENTS_SENT = "EventsSent"  # dims: Action, Status
EVENTS_SKIPPED = "EventsSkipped"  # dims: Reason
DELIVERY_FAILED = "DeliveryFailed"  # dims: Kind (permanent|retryable)
EVENTS_DEFERRED = "EventsDeferred"  # dims: Reason (paced|throttled|circuit-open|in-flight)
DELIVERY_LATENCY = "DeliveryLatency"  # ms from receipt at ingest to PagerDuty's 2xx; no dims
REPLAYS_IGNORED = "ReplaysIgnored"  # dims: Format
REDRIVEN = "MessagesRedriven"  # no dims
RESOLVES_SWEPT = "ResolvesSwept"  # no dims
ALERTS_HELD = "AlertsHeld"  # dims: Reason (maintenance|suppressed|rolled-up)
HELD_RELEASED = "HeldReleased"  # no dims: held alerts put back on the queue when their window ended
CHANGES_ACCEPTED = "ChangesAccepted"  # no dims
CHANGES_SENT = "ChangesSent"  # dims: Status
HEARTBEAT_AGE = "HeartbeatContactAge"  # dims: Route; seconds since a heartbeat's last contact, every sweep
HEARTBEAT_SILENT = "HeartbeatSilent"  # dims: Route; 1 while a heartbeat is silent, else 0, every sweep
RESOLVED_BEFORE_PAGED = "ResolvedBeforePaged"  # dims: Outcome (page|record|drop): resolved while its trigger waited
RECONCILE_DRIFT = "ReconcileDrift"  # dims: Kind (resolved-here|unknown-here|resolved-at-pagerduty|missing-at-pagerduty)

LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "WARN": 30, "ERROR": 40, "CRITICAL": 50}

_KEYS: ContextVar[dict[str, Any] | None] = ContextVar("pdrelay_log_keys", default=None)
_METRICS: ContextVar[list[_Metric] | None] = ContextVar("pdrelay_metrics", default=None)
_STARTED: set[str] = set()  # functions whose execution environment has said its static context
_COPIES: list[Callable[[str], None]] = []  # where each log line also goes (the local stack's file)


def copy_lines_to(write: Callable[[str], None]) -> Callable[[], None]:
    """Every log line from now on is also given to ``write`` (one JSON document, no newline);
    call the function returned to stop."""
    _COPIES.append(write)

    def stop() -> None:
        if write in _COPIES:
            _COPIES.remove(write)

    return stop


def _in_lambda() -> bool:
    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))


class Logger:
    """JSON lines with the invocation's keys; the few methods pdrelay uses of a logger."""

    def __init__(self) -> None:
        self._level: int | None = None

    @property
    def log_level(self) -> int:
        if self._level is None:
            name = (os.environ.get("POWERTOOLS_LOG_LEVEL") or os.environ.get("LOG_LEVEL") or "INFO").upper()
            self._level = LEVELS.get(name, 20)
        return self._level

    def setLevel(self, level: str | int) -> None:
        self._level = level if isinstance(level, int) else LEVELS.get(level.upper(), 20)

    def debug(self, message: str, extra: dict[str, Any] | None = None) -> None:
        self._write(10, "DEBUG", message, extra)

    def info(self, message: str, extra: dict[str, Any] | None = None) -> None:
        self._write(20, "INFO", message, extra)

    def warning(self, message: str, extra: dict[str, Any] | None = None) -> None:
        self._write(30, "WARNING", message, extra)

    def error(self, message: str, extra: dict[str, Any] | None = None) -> None:
        self._write(40, "ERROR", message, extra)

    def exception(self, message: str, extra: dict[str, Any] | None = None) -> None:
        """An error line with the exception being handled (its type and traceback)."""
        kind, exc, tb = sys.exc_info()
        details = dict(extra or {})
        if kind is not None:
            details["exception_name"] = kind.__name__
            details["exception"] = "".join(traceback.format_exception(kind, exc, tb))
        self._write(40, "ERROR", message, details)

    def append_keys(self, **keys: Any) -> None:
        """Keys for every line from here to :meth:`remove_keys` (within this invocation or thread)."""
        _KEYS.set({**(_KEYS.get() or {}), **{k: v for k, v in keys.items() if v is not None}})

    def remove_keys(self, names: list[str]) -> None:
        current = _KEYS.get()
        if current:
            _KEYS.set({k: v for k, v in current.items() if k not in names})

    def _write(self, level: int, name: str, message: str, extra: dict[str, Any] | None) -> None:
        if level < self.log_level:
            return
        line: dict[str, Any] = {"level": name, "message": message}
        if not _in_lambda():  # in Lambda, CloudWatch Logs stamps every line itself
            line["timestamp"] = datetime.now(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"
        line.update(_KEYS.get() or {})
        if extra:
            line.update(extra)
        text = json.dumps(line, default=str, separators=(",", ":"), ensure_ascii=False)
        sys.stderr.write(text + "\n")
        for write in _COPIES:
            write(text)


logger = Logger()


# -- metrics -----------------------------------------------------------------------------------
class _Metric:
    __slots__ = ("dimensions", "name", "unit", "values")

    def __init__(self, name: str, unit: str, value: float, dimensions: dict[str, str]) -> None:
        self.name, self.unit, self.values, self.dimensions = name, unit, [value], dimensions


def _metrics_disabled() -> bool:
    return os.environ.get("POWERTOOLS_METRICS_DISABLED", "").strip().lower() in ("1", "true", "yes")


def _record(name: str, unit: str, value: float, dimensions: dict[str, str]) -> None:
    if _metrics_disabled():
        return
    dims = {"service": os.environ.get("POWERTOOLS_SERVICE_NAME", "pdrelay")}
    dims.update({key: str(dim)[:250] or "none" for key, dim in dimensions.items()})
    gathered = _METRICS.get()
    if gathered is None:  # outside an invocation: at once
        _emit([_Metric(name, unit, value, dims)])
        return
    for metric in gathered:
        if metric.name == name and metric.dimensions == dims:
            if unit == "Count":
                metric.values[0] += value
            else:
                metric.values.append(value)
            return
    gathered.append(_Metric(name, unit, value, dims))


def count(name: str, value: int = 1, **dimensions: str) -> None:
    """Count ``value`` of ``name`` with these dimensions (and ``service``)."""
    _record(name, "Count", float(value), dimensions)


def gauge(name: str, value: float, unit: str = "Count", **dimensions: str) -> None:
    """One reading of ``name`` with these dimensions (and ``service``)."""
    _record(name, unit, value, dimensions)


def measure(name: str, value: float, unit: str = "Milliseconds") -> None:
    """One measurement with only the service dimension (alarms and the dashboard use it)."""
    _record(name, unit, value, {})


def _emit(metrics: list[_Metric]) -> None:
    """As few EMF documents as the metrics' dimension values allow (one, usually)."""
    namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", DEFAULT_NAMESPACE)
    documents: list[tuple[dict[str, Any], list[_Metric]]] = []
    for metric in metrics:
        for values, members in documents:
            clash = metric.name in values or any(values.get(k, v) != v for k, v in metric.dimensions.items())
            if not clash:
                values.update(metric.dimensions)
                values[metric.name] = metric.values[0] if len(metric.values) == 1 else metric.values
                members.append(metric)
                break
        else:
            value = metric.values[0] if len(metric.values) == 1 else metric.values
            documents.append(({**metric.dimensions, metric.name: value}, [metric]))
    stamp = int(time.time() * 1000)
    for values, members in documents:
        directives = [
            {
                "Namespace": namespace,
                "Dimensions": [sorted(m.dimensions, key=lambda k: (k == "service", k))],
                "Metrics": [{"Name": m.name, "Unit": m.unit}],
            }
            for m in members
        ]
        doc = {"_aws": {"Timestamp": stamp, "CloudWatchMetrics": directives}, **values}
        sys.stderr.write(json.dumps(doc, separators=(",", ":")) + "\n")


@contextmanager
def gathered_metrics() -> Iterator[None]:
    """Metrics recorded within are written when it ends, in as few documents as they allow."""
    token = _METRICS.set([])
    try:
        yield
    finally:
        metrics = _METRICS.get() or []
        _METRICS.reset(token)
        if metrics:
            _emit(metrics)


# -- one invocation ------------------------------------------------------------------------------
H = TypeVar("H", bound=Callable[..., Any])


def invocation(request_id: Callable[[dict[str, Any]], str | None] | None = None) -> Callable[[H], H]:
    """Wrap a Lambda handler: its lines carry ``request_id`` (taken from the event by
    ``request_id``) and, outside Lambda, the function's name; its metrics are written as one
    document when it returns; the first invocation of an execution environment says its static
    context once."""

    def wrap(handler: H) -> H:
        @functools.wraps(handler)
        def run(event: dict[str, Any], context: Any) -> Any:
            function = str(getattr(context, "function_name", "") or "")
            keys: dict[str, Any] = {}
            if not _in_lambda() and function:
                keys["function"] = function  # one output for every function: say which
            rid = request_id(event) if request_id is not None and isinstance(event, dict) else None
            if rid:
                keys["request_id"] = rid
            token = _KEYS.set(keys)
            try:
                if function not in _STARTED:
                    _STARTED.add(function)
                    logger.info(
                        "execution environment started",
                        extra={
                            "function_name": function,
                            "function_version": getattr(context, "function_version", None),
                            "memory_mb": getattr(context, "memory_limit_in_mb", None),
                            "pdrelay": __version__,
                        },
                    )
                with gathered_metrics():
                    return handler(event, context)
            finally:
                _KEYS.reset(token)

        return run  # type: ignore[return-value]

    return wrap


def mask(secret: str | None) -> str:
    """How a routing key or token is shown anywhere: never more than its last four characters."""
    if not secret:
        return "(none)"
    return "…" + secret[-4:] if len(secret) >= 16 else "…"
