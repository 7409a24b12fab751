"""Heartbeats (a dead man's switch): a route that expects to hear from its monitor at least every so
often, and pages when it goes silent. A monitor that stops sending looks exactly like a healthy one::

    routes:
      platform:
        routing_key: "<32-character key>"
        heartbeat:
          every: 5m                            # silent for longer than this: page
          when: {labels.alertname: Watchdog}   # optional: only these alerts count (a rules `when:`)
          severity: critical                   # of the incident (the default)

Contact is any request accepted for the route (every alert in it, or only those matching ``when``),
or a ping to ``POST /v1/heartbeat/{route}``. Ingest records it (:func:`record_contact`) in the
route's heartbeat item with one conditional UpdateItem that only moves the time forward, and at
most once per :attr:`Heartbeat.write_interval` (a tenth of ``every``, 1 to 60 seconds) per process:
routes without a heartbeat cost no write at all, busy routes with one a write per interval.

The sweep (:func:`check`, every minute) compares each heartbeat's last contact (or, before any,
when the sweep first saw it configured, so a deploy does not page at once) with ``every`` plus
that write interval (a contact may be that much newer than recorded). Silent: it queues ONE trigger
per destination, a queue message like any alert's (dedup key ``heartbeat:<route>``, format
``heartbeat``), so the dispatcher's dedup, maintenance windows and pacing apply, and marks the
item silent so later sweeps queue nothing more; contact again: it queues the resolve. The state
changes are conditional on the item's version, so two sweeps never both queue.

An open heartbeat incident is also listed, with the routing keys it went to, in one item
(``heartbeats#silent``, read once per sweep): a heartbeat removed from the configuration (or its
route) while silent has its incident resolved by the next sweep, so no page stays open for a
monitor nobody expects any more.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator

from pdrelay.models import SUMMARY_LIMIT, Alert, Severity, truncate
from pdrelay.policy.rules import Matcher
from pdrelay.policy.windows import format_duration, parse_duration

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

    from pdrelay.config import RelayConfig, Route
    from pdrelay.models import QueueMessage
    from pdrelay.table import DedupStore, HeartbeatItem

FORMAT = "heartbeat"
MIN_EVERY = timedelta(seconds=1)
MAX_EVERY = timedelta(days=7)
MIN_WRITE_INTERVAL = 1.0  # seconds between a process's contact writes for one route, at least...
MAX_WRITE_INTERVAL = 60.0  # ... and at most
LAST_SENT_CHARS = 200  # of the last alert's summary kept with the contact


class Heartbeat(BaseModel):
    """A route's dead man's switch: page when no contact came for longer than ``every``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    every: timedelta = Field(description="e.g. 5m, 1h: silent for longer than this pages (1s to 7d).")
    when: Matcher = Field(
        default_factory=lambda: Matcher({}),
        description="Only alerts matching this (a rules `when:`) count as contact; absent: every alert.",
    )
    severity: Severity = Field("critical", description="The severity of the incident a silence opens.")

    @field_validator("every", mode="before")
    @classmethod
    def _every(cls, value: Any) -> Any:
        span = value if isinstance(value, timedelta) else parse_duration(value)
        if not MIN_EVERY <= span <= MAX_EVERY:
            raise ValueError("every is at least 1s and at most 7d")
        return span

    @field_serializer("every")
    def _every_text(self, span: timedelta) -> str:
        return format_duration(span)

    @property
    def seconds(self) -> float:
        return self.every.total_seconds()

    @property
    def write_interval(self) -> float:
        """How often a process records contact at most (and so how stale the record may be)."""
        return min(max(self.seconds / 10, MIN_WRITE_INTERVAL), MAX_WRITE_INTERVAL)

    def counts(self, alerts: Iterable[Alert]) -> bool:
        """Whether a request with these alerts is contact."""
        return not self.when.root or any(self.when.matches(a) for a in alerts)

    def silent(self, since: float, now: float) -> bool:
        """Silent at ``now`` when the last contact (or first sighting) was at ``since``."""
        return now - since > self.seconds + self.write_interval


# -- contact, at ingest ------------------------------------------------------------------------------
_WRITTEN: dict[str, float] = {}  # route -> when this process last recorded contact for it
_LOCK = threading.Lock()


def forget_contacts() -> None:
    """Forget when contact was last recorded (tests)."""
    with _LOCK:
        _WRITTEN.clear()


def last_sent(caller: str, fmt: str, alerts: Iterable[Alert] = ()) -> dict[str, str]:
    """What is kept of a contact: who, in which format, and the first alert's action and summary."""
    found = {"caller": caller, "format": fmt}
    first = next(iter(alerts), None)
    if first is not None:
        found["action"] = first.action
        found["identity"] = truncate(first.identity, LAST_SENT_CHARS)
        if first.summary:
            found["summary"] = truncate(first.summary, LAST_SENT_CHARS)
    return found


def record_contact(store: DedupStore, route: str, heartbeat: Heartbeat, at: datetime, sent: dict[str, str]) -> bool:
    """Record contact for ``route`` at ``at``, unless this process did less than the heartbeat's
    write interval ago; True when written. A failed write is logged and retried by the next
    request: the request's alerts are queued already, and must be answered as accepted."""
    from pdrelay.errors import StoreError
    from pdrelay.observability import logger

    now = at.timestamp()
    with _LOCK:
        written = _WRITTEN.get(route)
        if written is not None and 0 <= now - written < heartbeat.write_interval:
            return False
        _WRITTEN[route] = now
    try:
        store.touch_heartbeat(route, now, sent)
    except StoreError as exc:
        with _LOCK:
            if _WRITTEN.get(route) == now:
                del _WRITTEN[route]
        logger.warning("heartbeat contact not recorded", extra={"route": route, "error": str(exc)})
        return False
    return True


# -- silence, at the sweep ---------------------------------------------------------------------------
@dataclass
class HeartbeatResult:
    checked: int = 0
    silent: int = 0
    triggered: int = 0
    resolved: int = 0
    failed: int = 0

    def as_dict(self) -> dict[str, int]:
        return vars(self).copy()


def _iso(seconds: float) -> str:
    from pdrelay.timeutil import iso

    return iso(datetime.fromtimestamp(seconds, UTC))


def _span(seconds: float) -> str:
    return format_duration(timedelta(seconds=max(1, int(seconds))))


def heartbeat_alert(name: str, heartbeat: Heartbeat, item: HeartbeatItem, action: str, now: float) -> Alert:
    """The incident a silence opens (``trigger``), or its resolve: which monitor, since when, what it last sent."""
    since = item.since
    sent = item.last_sent
    who = f" from {sent['caller']} ({sent['format']})" if sent.get("caller") else ""
    if action == "trigger":
        last = f"last contact{who} at {_iso(since)}" if item.last_contact else f"no contact since {_iso(since)}"
        summary = (
            f"Heartbeat missed: route {name} silent for {_span(now - since)} (expected every "
            f"{format_duration(heartbeat.every)}); {last}"
        )
    else:
        summary = f"Heartbeat back: route {name} heard{who} at {_iso(item.last_contact or now)}"
    details: dict[str, Any] = {
        "route": name,
        "every": format_duration(heartbeat.every),
        "silent_since": _iso(since if action == "trigger" else item.silent_since or since),
        "last_contact": _iso(item.last_contact) if item.last_contact else "never",
        "last_sent": sent,
    }
    if heartbeat.when.root:
        details["counts_only"] = " and ".join(f"{p} {t.describe()}" for p, t in heartbeat.when.root.items())
    return Alert.model_validate(
        {
            "format": FORMAT,
            "identity": name,
            "action": action,
            "occurred_at": datetime.fromtimestamp(now, UTC),
            "summary": truncate(summary, SUMMARY_LIMIT),
            "source": "pdrelay",
            "severity": heartbeat.severity,
            "custom_details": details,
            "client": "pdrelay heartbeat",
        }
    )


def heartbeat_messages(name: str, route: Route, alert: Alert, now: float) -> list[QueueMessage]:
    """One message per destination: a trigger to the route's default destinations, a resolve to all."""
    from pdrelay.models import make_message

    targets = route.targets
    names = route.defaults if alert.action == "trigger" else tuple(targets)
    at = datetime.fromtimestamp(now, UTC)
    return [
        make_message(
            alert,
            route=name,
            routing_key=targets[d],
            destination=d,
            received_at=at,
            request_id=f"heartbeat-{name}-{int(now)}",
        )
        for d in names
    ]


def _open_incidents(store: DedupStore) -> dict[str, dict[str, str]]:
    """The heartbeats whose incident is open: route -> {destination: routing key}."""
    from pdrelay.table import SILENT_HEARTBEATS_KEY

    doc, _version = store.get_doc(SILENT_HEARTBEATS_KEY)
    routes = doc.get("routes")
    return {str(k): dict(v) for k, v in routes.items()} if isinstance(routes, dict) else {}


def _note_incident(store: DedupStore, name: str, targets: dict[str, str] | None) -> None:
    """List ``name``'s open incident with where it went (``targets``), or take it off (None)."""
    from pdrelay.table import SILENT_HEARTBEATS_KEY, read_modify_write

    def step() -> None:
        doc, version = store.get_doc(SILENT_HEARTBEATS_KEY)
        routes = dict(doc.get("routes") or {})
        if targets is None:
            if name not in routes:
                return
            routes.pop(name)
        else:
            routes[name] = targets
        store.put_doc(SILENT_HEARTBEATS_KEY, {"routes": routes}, version, expires=False)

    read_modify_write(step, "the list of open heartbeat incidents")


def _unconfigured_alert(name: str, now: float) -> Alert:
    return Alert.model_validate(
        {
            "format": FORMAT,
            "identity": name,
            "action": "resolve",
            "occurred_at": datetime.fromtimestamp(now, UTC),
            "summary": f"Heartbeat removed: route {name} no longer expects a heartbeat",
            "source": "pdrelay",
            "severity": "info",
            "custom_details": {"route": name},
            "client": "pdrelay heartbeat",
        }
    )


def check(
    store: DedupStore, config: RelayConfig, sqs: SQSClient, queue_url: str, now: datetime | None = None
) -> HeartbeatResult:
    """Each configured heartbeat: silent for too long and not yet paged, queue its trigger; paged
    and heard from again, queue its resolve. Reads one item per heartbeat and the list of open
    heartbeat incidents; writes only on changes. An open incident of a heartbeat no longer
    configured is resolved where it went."""
    from pdrelay.errors import EnqueueError
    from pdrelay.ingest.enqueue import enqueue
    from pdrelay.models import make_message
    from pdrelay.observability import HEARTBEAT_AGE, HEARTBEAT_SILENT, gauge, logger

    t = (now or store.clock.now()).timestamp()
    result = HeartbeatResult()
    open_incidents = _open_incidents(store)
    for name, targets in open_incidents.items():
        route = config.routes.get(name)
        if route is not None and route.heartbeat is not None:
            continue
        at = datetime.fromtimestamp(t, UTC)
        alert = _unconfigured_alert(name, t)
        messages = [
            make_message(
                alert,
                route=name,
                routing_key=key,
                destination=d,
                received_at=at,
                request_id=f"heartbeat-{name}-{int(t)}",
            )
            for d, key in targets.items()
        ]
        try:
            enqueue(messages, sqs, queue_url)
        except EnqueueError as exc:
            result.failed += 1
            logger.warning("heartbeat removed: could not queue its resolve", extra={"route": name, "error": str(exc)})
            continue
        _note_incident(store, name, None)
        item = store.get_heartbeat(name)
        if item is not None and item.state == "silent":
            store.set_heartbeat_state(name, item.version, "ok", None)
        result.resolved += 1
        logger.info("heartbeat removed while silent: resolve queued", extra={"route": name})
    for name, route in config.routes.items():
        heartbeat = route.heartbeat
        if heartbeat is None:
            continue
        result.checked += 1
        item = store.get_heartbeat(name)
        if item is None or item.first_seen is None:
            # First sighting of this heartbeat: silence counts from now, not from the epoch.
            store.start_heartbeat(name, t)
            item = store.get_heartbeat(name)
            if item is None:
                continue
        silent = heartbeat.silent(item.since, t)
        gauge(HEARTBEAT_AGE, t - item.since, "Seconds", Route=name)
        gauge(HEARTBEAT_SILENT, float(silent), "None", Route=name)
        result.silent += silent
        if silent == (item.state == "silent"):
            continue  # nothing changed: no write, nothing queued
        action = "trigger" if silent else "resolve"
        # Claim the change first (two sweeps never both queue), then queue; a failed enqueue
        # puts the state back so the next sweep tries again.
        state, silent_since = ("silent", item.since) if silent else ("ok", None)
        version = store.set_heartbeat_state(name, item.version, state, silent_since)
        if version is None:
            continue
        alert = heartbeat_alert(name, heartbeat, item, action, t)
        try:
            enqueue(heartbeat_messages(name, route, alert, t), sqs, queue_url)
        except EnqueueError as exc:
            store.set_heartbeat_state(name, version, item.state, item.silent_since)
            result.failed += 1
            logger.warning("heartbeat: could not queue", extra={"route": name, "action": action, "error": str(exc)})
            continue
        # Where the incident is open, so that it is resolved even if the heartbeat is removed.
        _note_incident(store, name, {d: route.targets[d] for d in route.defaults} if silent else None)
        if silent:
            result.triggered += 1
        else:
            result.resolved += 1
        logger.info(
            "heartbeat silent: trigger queued" if silent else "heartbeat back: resolve queued",
            extra={"route": name, "since": _iso(item.since)},
        )
    return result
