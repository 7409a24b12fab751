"""Does PagerDuty agree? What the relay's table says is open, beside what PagerDuty has open.

PagerDuty's state drifts from the table's: a person resolves an incident by hand, an incident was
opened before pdrelay existed, a resolve was lost, the table was restored. Per routing key the relay
pages with (the configured routes' destinations, and every key the routes' histories remember),
:func:`reconcile` finds the key's service through PagerDuty's REST API
(:mod:`pdrelay.ops.pagerduty_api`), lists the service's open incidents (``incident_key`` is the
dedup key) and compares them with the table's alert items. Each difference is one :class:`Drift`:

=========================  ======================================================================
kind                       what it means, and what ``fix`` does
=========================  ======================================================================
``resolved-here``          open at PagerDuty, resolved at the source per the table (its resolve was
                           lost, or PagerDuty dropped it), or a roll-up incident the table shows
                           closed: the resolve is sent again
``unknown-here``           open at PagerDuty, no item in the table (opened before pdrelay, the item
                           lost, or another sender on the integration): reported; resolved only
                           with ``resolve_unknown`` (the monitor may still be firing)
``resolved-at-pagerduty``  open in the table, resolved at PagerDuty (by a person): the item is
                           marked, so the monitor's next trigger, even an identical repeat, opens
                           a new incident (:mod:`pdrelay.delivery.decisions`)
``missing-at-pagerduty``   open and paged in the table, no incident at PagerDuty with its key:
                           marked the same way, so the next trigger is sent again
=========================  ======================================================================

Why a resolve goes straight to the Events API and not through the queue: the dispatcher decides
against the alert's item, which already says resolved and delivered, so a queued resolve would be a
``duplicate`` and go nowhere; making it go would need a new kind of queue message for a rare
repair. Reconcile takes the sweeper's path instead (:mod:`pdrelay.ops.sweeper`): it claims the item
on the table (undelivered, ``pending = "resolve"``, under a lease), sends, and marks it delivered;
a send that fails leaves it pending, so the sweeper retries it, and the table records it either
way. It sends at most ``max_sends`` resolves a run and stops sending on a routing key at its first
429 or 5xx (the rest wait for the sweep or the next run): a repair never floods an integration.

What is left alone: alerts whose trigger is not delivered yet or being sent, those sent within
``grace_seconds`` (PagerDuty processes events after answering 202), alerts never paged (held,
rolled up), and routing keys no Events API v2 integration visible to the API key has (counted).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from pdrelay.delivery.decisions import Record
from pdrelay.errors import PermanentDelivery, RetryableDelivery
from pdrelay.observability import RECONCILE_DRIFT, count, logger, mask
from pdrelay.ops.pagerduty_api import Incident, RestClient
from pdrelay.ops.sweeper import LEASE_SECONDS, resolve_event
from pdrelay.policy.judge import ROLLUP_PREFIX
from pdrelay.table import DedupStore, item_key, key_hash, rollup_key
from pdrelay.timeutil import to_micros

if TYPE_CHECKING:
    from pdrelay.config import RelayConfig
    from pdrelay.delivery.events_api import EventsClient

KINDS = ("resolved-here", "unknown-here", "resolved-at-pagerduty", "missing-at-pagerduty")
GRACE_SECONDS = 120
MAX_SENDS = 100
SERVICES_PER_QUERY = 25  # service_ids[] per incidents query (the URL stays short)

_ACTIONS = {  # kind → (what fix does, what it did)
    "resolved-here": ("send the resolve again", "resolve sent"),
    "unknown-here": ("resolve it (asked with --resolve-unknown)", "resolve sent"),
    "resolved-at-pagerduty": (
        "mark it: the next trigger opens a new incident",
        "marked: the next trigger opens a new incident",
    ),
    "missing-at-pagerduty": ("mark it: the next trigger is sent again", "marked: the next trigger is sent again"),
}
REPORT_ONLY = "reported only (--fix --resolve-unknown resolves it)"


@dataclass
class Drift:
    kind: str
    routing_key: str  # masked
    dedup_key: str
    route: str | None = None
    incident: str = ""  # PagerDuty's incident id
    incident_number: int = 0
    pagerduty_status: str = ""  # open there: triggered | acknowledged; else resolved | none
    table_state: str = ""  # the item's state, or none
    action: str = ""  # what fix does (would do, in a dry run), or did
    done: bool = False
    acts: bool = True  # False: fix leaves it alone (reported only)
    # What fix acts on; never shown (the key is a secret, the item is the table's).
    key: str = field(default="", repr=False)
    record: Record | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k not in ("key", "record", "acts")}


@dataclass
class KeyReport:
    routing_key: str  # masked
    service: str
    open_at_pagerduty: int = 0
    open_here: int = 0


@dataclass
class ReconcileReport:
    fix: bool
    keys: list[KeyReport] = field(default_factory=list)
    not_at_pagerduty: list[str] = field(default_factory=list)  # masked keys (or hashes) with no visible integration
    drifts: list[Drift] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)  # why open items were not compared
    api_requests: int = 0

    def counts(self) -> dict[str, int]:
        found = dict.fromkeys(KINDS, 0)
        for d in self.drifts:
            found[d.kind] += 1
        return found

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": "fix" if self.fix else "dry-run",
            "routing_keys": [asdict(k) for k in self.keys],
            "not_at_pagerduty": self.not_at_pagerduty,
            "drift": self.counts(),
            "differences": [d.as_dict() for d in self.drifts],
            "skipped": self.skipped,
            "api_requests": self.api_requests,
        }


@dataclass(frozen=True)
class Options:
    fix: bool = False
    resolve_unknown: bool = False
    grace_seconds: int = GRACE_SECONDS
    max_sends: int = MAX_SENDS


def _configured_keys(config: RelayConfig | None) -> dict[str, str]:
    """Routing key → route, for every destination of every configured route."""
    found: dict[str, str] = {}
    for name, route in (config.routes if config is not None else {}).items():
        for key in route.targets.values():
            found.setdefault(key, name)
    return found


def reconcile(
    store: DedupStore,
    api: RestClient,
    events: EventsClient | None,
    config: RelayConfig | None = None,
    options: Options | None = None,
) -> ReconcileReport:
    """Compare, report, and with ``options.fix`` act (``events`` sends the resolves)."""
    options = options or Options()
    report = ReconcileReport(fix=options.fix)
    now = to_micros(store.clock.now())
    open_records, history = store.open_alerts_and_route_keys()
    configured = _configured_keys(config)
    wanted = (
        history | {key_hash(k) for k in configured} | {key_hash(r.routing_key) for r in open_records if r.routing_key}
    )
    services = {k: s for k, s in api.services_by_integration_key().items() if key_hash(k) in wanted}
    seen = {key_hash(k) for k in services}
    known_keys = {key_hash(k): k for k in [*configured, *(r.routing_key for r in open_records if r.routing_key)]}
    report.not_at_pagerduty = sorted(mask(known_keys[h]) if h in known_keys else f"#{h[:8]}" for h in wanted - seen)

    open_at_pd: list[Incident] = []
    service_ids = sorted(set(services.values()))
    for start in range(0, len(service_ids), SERVICES_PER_QUERY):
        open_at_pd.extend(api.incidents(service_ids[start : start + SERVICES_PER_QUERY]))
    sides = Sides(services, open_at_pd, store.records(candidate_items(services, open_at_pd)), open_records)

    def last_incident(service: str, dedup_key: str) -> Incident | None:
        # Any status: on a service that groups alerts, an alert's key is found on the incident it
        # joined (PagerDuty matches incident_key against its alerts' keys), which may be open.
        found = api.incidents([service], ("triggered", "acknowledged", "resolved"), incident_key=dedup_key)
        return max(found, key=lambda i: (i.status != "resolved", i.number)) if found else None

    def rollup_open(dedup_key: str, keys: list[str]) -> bool:
        return _rollup_open(store, dedup_key, keys)

    def alert_open(incident: Incident, dedup_key: str) -> bool:
        statuses = api.alert_statuses(incident.id, dedup_key)
        return not statuses or any(s != "resolved" for s in statuses)  # none listed: take it as open

    report.keys, report.drifts, report.skipped = compare(
        sides, now, options.grace_seconds, last_incident, rollup_open, alert_open
    )
    for drift in report.drifts:
        if drift.kind == "unknown-here" and not options.resolve_unknown:
            drift.acts, drift.action = False, REPORT_ONLY

    if options.fix:
        _fix(store, events, report, options)
    report.api_requests = api.requests
    return report


@dataclass(frozen=True)
class Sides:
    """What reconcile compares, as read from PagerDuty and the table."""

    services: dict[str, str]  # each of the relay's routing keys PagerDuty has → its service
    open_at_pagerduty: list[Incident]  # those services' open incidents
    items: dict[str, Record]  # the table's items for them (:func:`candidate_items`), by pk
    open_here: list[Record]  # the table's open alerts


def _keys_of(services: dict[str, str]) -> dict[str, list[str]]:
    """Service → the relay's routing keys on it (a service may have several integrations)."""
    keys: dict[str, list[str]] = defaultdict(list)
    for key, service in sorted(services.items()):
        keys[service].append(key)
    return keys


def candidate_items(services: dict[str, str], open_at_pagerduty: list[Incident]) -> list[str]:
    """The table keys an open incident's alert may have: its dedup key under each of its service's
    routing keys (PagerDuty's incident does not say which integration opened it)."""
    keys_of = _keys_of(services)
    return [item_key(k, i.incident_key) for i in open_at_pagerduty if i.incident_key for k in keys_of[i.service_id]]


def compare(
    sides: Sides,
    now: int,
    grace_seconds: int,
    last_incident: Callable[[str, str], Incident | None],
    rollup_open: Callable[[str, list[str]], bool],
    alert_open: Callable[[Incident, str], bool] = lambda _incident, _dedup: True,
) -> tuple[list[KeyReport], list[Drift], dict[str, int]]:
    """The differences (no I/O but the lookups: PagerDuty's incident for a service and dedup key,
    an open one first, else the last resolved; whether the table has a roll-up incident open;
    whether an open incident's own alert with a dedup key is still open there), a row per routing
    key, and why alerts were not compared. ``now`` in µs."""
    keys_of = _keys_of(sides.services)
    per_key = {k: KeyReport(mask(k), s) for k, s in sorted(sides.services.items(), key=lambda i: (i[1], mask(i[0])))}
    drifts: list[Drift] = []
    skipped: dict[str, int] = {}
    open_at_pd = {(i.service_id, i.incident_key): i for i in sides.open_at_pagerduty if i.incident_key}

    # PagerDuty's open incidents, beside the table's items under each of the service's keys.
    for (service, dedup), incident in sorted(open_at_pd.items(), key=lambda i: i[1].number):
        per_key[keys_of[service][0]].open_at_pagerduty += 1
        if dedup.startswith(ROLLUP_PREFIX):
            if not rollup_open(dedup, keys_of[service]):
                drifts.append(_drift("resolved-here", keys_of[service][0], dedup, incident, None))
            continue
        found = [sides.items[pk] for pk in (item_key(k, dedup) for k in keys_of[service]) if pk in sides.items]
        if any(r.state != "resolved" for r in found):
            continue  # open on both sides
        sending = [r for r in found if not r.delivered or r.lease_until > now]
        recent = [
            r
            for r in found
            if grace_seconds and r.updated_at and now - r.updated_at * 1_000_000 < grace_seconds * 1_000_000
        ]
        if sending:  # its resolve is on the way (the dispatcher's, or pending for the sweeper)
            skipped["resolve on the way"] = skipped.get("resolve on the way", 0) + 1
        elif recent:  # PagerDuty applies events after its 202: the incident may not show it yet
            skipped["resolved moments ago"] = skipped.get("resolved moments ago", 0) + 1
        elif found and not alert_open(incident, dedup):
            # The alert this key opened the incident with is resolved there; others grouped into the
            # incident keep it open. Nothing to send: the incident closes with its last alert.
            skipped["open for other alerts"] = skipped.get("open for other alerts", 0) + 1
        elif found:
            drifts.extend(_drift("resolved-here", r.routing_key, dedup, incident, r) for r in found)
        else:
            drifts.append(_drift("unknown-here", keys_of[service][0], dedup, incident, None))

    # The table's open alerts PagerDuty does not show open.
    for record in sorted(sides.open_here, key=lambda r: (r.routing_key, r.dedup_key)):
        key = record.routing_key
        if key not in sides.services:
            continue
        per_key[key].open_here += 1
        why = _not_comparable(record, now, grace_seconds)
        if why:
            skipped[why] = skipped.get(why, 0) + 1
            continue
        if (sides.services[key], record.dedup_key) in open_at_pd:
            continue
        last = last_incident(sides.services[key], record.dedup_key)
        if last is not None and last.status != "resolved":
            continue  # open, as an alert grouped into another incident
        kind = "resolved-at-pagerduty" if last else "missing-at-pagerduty"
        drifts.append(_drift(kind, key, record.dedup_key, last, record))
    return list(per_key.values()), drifts, skipped


def _rollup_open(store: DedupStore, dedup: str, keys: list[str]) -> bool:
    """Whether the table has this roll-up incident open (its route's roll-up under one of the keys)."""
    route = dedup.removeprefix(ROLLUP_PREFIX).split(":", 1)[0]
    for key in keys:
        doc, _version = store.get_doc(rollup_key(None if route == "-" else route, key))
        if doc.get("state") == "open" and doc.get("dedup_key") == dedup:
            return True
    return False


def _not_comparable(record: Record, now: int, grace_seconds: int) -> str:
    """Why an open item cannot be compared with PagerDuty now ("" when it can)."""
    if not record.paged:
        return "never paged (held, rolled up, waiting)"
    if record.pd_resolved_at:
        return "already marked"
    if not record.delivered or record.lease_until > now:
        return "being sent"
    if grace_seconds and record.sent_at and now - record.sent_at < grace_seconds * 1_000_000:
        return "sent moments ago"
    return ""


def _drift(kind: str, key: str, dedup: str, incident: Incident | None, record: Record | None) -> Drift:
    return Drift(
        kind=kind,
        routing_key=mask(key),
        dedup_key=dedup,
        route=record.route if record else None,
        incident=incident.id if incident else "",
        incident_number=incident.number if incident else 0,
        pagerduty_status=incident.status if incident else "none",
        table_state=record.state if record else "none",
        action=_ACTIONS[kind][0],
        key=key,
        record=record,
    )


def _fix(
    store: DedupStore,
    events: EventsClient | None,
    report: ReconcileReport,
    options: Options,
) -> None:
    sends = 0
    stopped: set[str] = set()  # routing keys PagerDuty said to slow down for (429, 5xx)
    for drift in report.drifts:
        record = drift.record
        # Read the clock for each: a run can outlast a lease, and a claim's lease starts when it is taken.
        now = to_micros(store.clock.now())
        if drift.kind in ("resolved-at-pagerduty", "missing-at-pagerduty") and record is not None:
            drift.done = store.mark_resolved_at_pagerduty(record, now)
        elif drift.kind == "resolved-here" and events is not None:
            if sends >= options.max_sends or drift.routing_key in stopped:
                continue
            sends += 1
            if record is not None:
                drift.done = _resend_resolve(store, events, record, now, stopped)
            else:  # a roll-up incident: its document has no alert item to claim
                drift.done = _send_resolve(events, _unknown_resolve(drift.key, drift), drift, stopped)
        elif drift.kind == "unknown-here" and drift.acts and events is not None:
            if sends >= options.max_sends or drift.routing_key in stopped:
                continue
            sends += 1
            drift.done = _send_resolve(events, _unknown_resolve(drift.key, drift), drift, stopped)
        if drift.done:
            drift.action = _ACTIONS[drift.kind][1]
            logger.info(
                "reconcile: drift fixed",
                extra={"kind": drift.kind, "dedup_key": drift.dedup_key, "incident": drift.incident},
            )


def _resend_resolve(store: DedupStore, events: EventsClient, record: Record, now: int, stopped: set[str]) -> bool:
    version = store.claim_reconcile_resolve(record, now, LEASE_SECONDS * 1_000_000)
    if version is None:
        return False  # the alert moved on (re-opened, or someone else is sending)
    drift_key = mask(record.routing_key)
    event = resolve_event(record)
    event["payload"]["custom_details"] = {"pdrelay_note": "resolve re-sent by pdrelay reconcile: PagerDuty had it open"}
    try:
        events.send(event)
    except PermanentDelivery as exc:
        store.set_aside(record.pk, version)
        store.release(record.pk, version)
        logger.warning(
            "reconcile: PagerDuty refused a resolve", extra={"dedup_key": record.dedup_key, "error": str(exc)}
        )
        return False
    except RetryableDelivery as exc:
        store.release(record.pk, version, resolve=True)  # pending: the sweeper retries it
        stopped.add(drift_key)
        logger.warning(
            "reconcile: resolve not delivered; the sweeper retries it",
            extra={"dedup_key": record.dedup_key, "error": str(exc)},
        )
        return False
    store.mark_delivered(record.pk, version)
    return True


def _unknown_resolve(routing_key: str, drift: Drift) -> dict[str, Any]:
    return {
        "routing_key": routing_key,
        "event_action": "resolve",
        "dedup_key": drift.dedup_key,
        "payload": {
            "summary": f"resolved by pdrelay reconcile (incident {drift.incident})",
            "source": "pdrelay",
            "severity": "info",
            "custom_details": {"pdrelay_note": "the relay has no open alert for this incident"},
        },
        "client": "pdrelay",
    }


def _send_resolve(events: EventsClient, event: dict[str, Any], drift: Drift, stopped: set[str]) -> bool:
    try:
        events.send(event)
    except PermanentDelivery as exc:
        logger.warning(
            "reconcile: PagerDuty refused a resolve", extra={"dedup_key": drift.dedup_key, "error": str(exc)}
        )
        return False
    except RetryableDelivery as exc:
        stopped.add(drift.routing_key)
        logger.warning("reconcile: resolve not delivered", extra={"dedup_key": drift.dedup_key, "error": str(exc)})
        return False
    return True


def count_drift(report: ReconcileReport) -> None:
    """One ``ReconcileDrift`` value per kind (zeros too: a quiet run is a data point)."""
    for kind, n in report.counts().items():
        count(RECONCILE_DRIFT, value=n, Kind=kind)
