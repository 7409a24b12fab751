"""Logger, metrics and masking in one place.

Service name and metric namespace come from the template's Globals
(``POWERTOOLS_SERVICE_NAME``, ``POWERTOOLS_METRICS_NAMESPACE``). Metric names and dimensions are a
contract: the dashboard and alarms depend on them.

Tracing: the template's ``Tracing`` parameter (``PassThrough`` by default, ``Active`` to turn it on)
sets X-Ray active tracing for each function, which records invocations and AWS calls' timing at the
Lambda service level. The X-Ray SDK (Powertools Tracer) is not instantiated: it adds about 0.3 s of
imports to every cold start.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

DEFAULT_NAMESPACE = "pdrelay"

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "pdrelay"))
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", DEFAULT_NAMESPACE))

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
RESOLVED_BEFORE_PAGED = "ResolvedBeforePaged"  # dims: Outcome (page|record|drop): resolved while its trigger waited


def count(name: str, value: int = 1, **dimensions: str) -> None:
    """Emit one count with its own dimensions (an EMF line of its own).

    ``single_metric`` does not honour ``POWERTOOLS_METRICS_DISABLED`` itself, so this does.
    """
    if is_metrics_disabled():
        return
    namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", DEFAULT_NAMESPACE)
    with single_metric(name=name, unit=MetricUnit.Count, value=value, namespace=namespace) as metric:
        for key, dim in dimensions.items():
            metric.add_dimension(name=key, value=str(dim)[:250] or "none")


def measure(name: str, value: float, unit: MetricUnit = MetricUnit.Milliseconds) -> None:
    """Emit one measurement with only the service dimension (alarms and the dashboard use it)."""
    if is_metrics_disabled():
        return
    namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", DEFAULT_NAMESPACE)
    with single_metric(name=name, unit=unit, value=value, namespace=namespace):
        pass


def mask(secret: str | None) -> str:
    """How a routing key or token is shown anywhere: never more than its last four characters."""
    if not secret:
        return "(none)"
    return "…" + secret[-4:] if len(secret) >= 16 else "…"
