"""``pdrelay queue status``: where alerts are, per route, in the style of ``pd-queue status``.

- waiting / in flight / delayed: the alert queue's totals (SQS counts per queue, not per route;
  reading the queue to split them would take messages from the dispatchers);
- sending: alerts the dedup table shows decided but not yet confirmed, per route;
- delivered: alerts confirmed delivered in the last ``window`` seconds, per route;
- open: alerts open on PagerDuty as far as pdrelay knows, per route;
- held: alerts a maintenance window or silence keeps from PagerDuty now; rolled up: alerts open
  inside a storm's roll-up incident; suppressed: updates not re-sent (min_resend_seconds) by
  alerts changed within the window; resolved before paged: alerts that resolved while their trigger
  waited to reach PagerDuty, within the window, whatever the route's ``resolved_before_paged`` did
  with them (paged late, recorded as a change event, or dropped);
- dead-lettered: DLQ messages per route, and the DLQ's reasons grouped;
- heartbeats: each route heartbeat's last contact (when, how long ago, from whom) and state
  (``ok``, or ``silent`` once the sweep has paged for it).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pdrelay.delivery.decisions import OPEN_STATES
from pdrelay.observability import mask
from pdrelay.ops import redrive
from pdrelay.table import DedupStore

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


@dataclass
class RouteStatus:
    route: str
    routing_key: str  # masked
    sending: int = 0
    delivered: int = 0
    open: int = 0
    held: int = 0
    rolled_up: int = 0
    suppressed: int = 0
    resolved_before_paged: int = 0
    dead_lettered: int = 0


@dataclass
class HeartbeatStatus:
    route: str
    state: str  # ok | silent (paged)
    last_contact: str | None  # ISO 8601, or None: none yet
    age_seconds: int | None  # since the last contact
    last_sent: dict[str, str] = field(default_factory=dict)
    silent_since: str | None = None


@dataclass
class QueueStatus:
    waiting: int
    in_flight: int
    delayed: int
    dlq: int
    routes: list[RouteStatus] = field(default_factory=list)
    reasons: list[tuple[str, int]] = field(default_factory=list)
    window_seconds: int = 3600
    heartbeats: list[HeartbeatStatus] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "queue": {"waiting": self.waiting, "in_flight": self.in_flight, "delayed": self.delayed},
            "dead_letter_queue": self.dlq,
            "window_seconds": self.window_seconds,
            "routes": [vars(r) for r in self.routes],
            "dlq_reasons": [{"reason": r, "count": n} for r, n in self.reasons],
            "heartbeats": [vars(h) for h in self.heartbeats],
        }


def queue_counts(sqs: SQSClient, url: str) -> dict[str, int]:
    """SQS's approximate counts for a queue: visible, not visible (in flight) and delayed."""
    attrs = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return {k: int(v) for k, v in attrs.items()}


def queue_status(
    sqs: SQSClient, queue_url: str, dlq_url: str, store: DedupStore, window_seconds: int = 3600
) -> QueueStatus:
    main = queue_counts(sqs, queue_url)
    dlq = queue_counts(sqs, dlq_url)
    status = QueueStatus(
        waiting=main.get("ApproximateNumberOfMessages", 0),
        in_flight=main.get("ApproximateNumberOfMessagesNotVisible", 0),
        delayed=main.get("ApproximateNumberOfMessagesDelayed", 0),
        dlq=dlq.get("ApproximateNumberOfMessages", 0) + dlq.get("ApproximateNumberOfMessagesNotVisible", 0),
        window_seconds=window_seconds,
    )
    routes: dict[tuple[str, str], RouteStatus] = {}

    def row(route: str | None, routing_key: str) -> RouteStatus:  # one row per route and destination
        key = (route or "(unlisted)", mask(routing_key))
        if key not in routes:
            routes[key] = RouteStatus(*key)
        return routes[key]

    since = int(time.time()) - window_seconds
    for record in store.open_or_recent(since):
        entry = row(record.route, record.routing_key)
        if record.updated_at >= since:
            if record.delivered:
                entry.delivered += 1
            else:
                entry.sending += 1
        if record.state in OPEN_STATES and record.hold.startswith("window:"):
            entry.held += 1
        elif record.state in OPEN_STATES and record.hold == "rollup":
            entry.rolled_up += 1
        elif record.state in OPEN_STATES and (record.delivered or record.sends > 0):
            entry.open += 1
        if record.updated_at >= since:
            entry.suppressed += record.suppressed
            entry.resolved_before_paged += bool(record.before_paged)
    inspection = redrive.inspect(sqs, dlq_url, keep=0)
    for (route, masked), n in inspection.by_route.items():
        key = (route, masked)
        routes.setdefault(key, RouteStatus(route, masked)).dead_lettered += n
    status.routes = sorted(routes.values(), key=lambda r: (r.route, r.routing_key))
    status.reasons = Counter(inspection.reasons).most_common()
    status.heartbeats = heartbeat_status(store, time.time())
    return status


def heartbeat_status(store: DedupStore, now: float) -> list[HeartbeatStatus]:
    """Every heartbeat the table knows of (the sweep records one when it first sees it configured)."""
    from pdrelay.timeutil import iso

    def when(seconds: float | None) -> str | None:
        return iso(datetime.fromtimestamp(seconds, UTC)) if seconds is not None else None

    return [
        HeartbeatStatus(
            route=item.route,
            state=item.state,
            last_contact=when(item.last_contact),
            age_seconds=int(now - item.last_contact) if item.last_contact is not None else None,
            last_sent=item.last_sent,
            silent_since=when(item.silent_since),
        )
        for item in store.heartbeats()
    ]
