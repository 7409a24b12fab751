"""An alert's state in the dedup table, per destination, as operators see it: what
``GET /v1/alerts/{dedup_key}`` answers and ``pdrelay trace`` ends with.

The table keeps one item per (routing key, dedup key) under the routing key's hash
(:func:`pdrelay.table.item_key`). The items of one alert are found without a scan: for each route
looked at, the hashes of the routing keys it has paged with (its history,
:meth:`~pdrelay.table.DedupStore.route_key_hashes`) and of the keys it has now, read in one batch.
What is shown never holds a routing key: its last four characters at most (:func:`~pdrelay.observability.mask`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pdrelay.delivery.decisions import Record
from pdrelay.observability import mask
from pdrelay.table import DedupStore, key_hash


def _iso(micros: int) -> str | None:
    if not micros:
        return None
    return datetime.fromtimestamp(micros / 1_000_000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def items_of(
    store: DedupStore, dedup_key: str, routes: Iterable[str | None], routing_keys: Iterable[str] = ()
) -> list[Record]:
    """The alert's items under the routing keys these routes have paged with (and these keys),
    each route's own items only (two routes may share a routing key: the item says whose it is)."""
    wanted = list(dict.fromkeys(routes))
    hashes = [key_hash(k) for k in routing_keys]
    for route in wanted:
        hashes.extend(store.route_key_hashes(route))
    if not hashes:
        return []
    return [r for r in store.alert_items(dedup_key, hashes) if r.route in wanted]


def describe(record: Record, now: datetime) -> dict[str, Any]:
    """One item as operators read it (no routing key: its last four characters)."""
    now_us = int(now.timestamp() * 1_000_000)
    doc: dict[str, Any] = {
        "route": record.route,
        "destination": record.destination,
        "routing_key": mask(record.routing_key),
        "state": record.state,
        "last_action": record.last_action,
        "delivered": record.delivered,
        "paged": record.paged,
        "episode_started_at": _iso(record.started_at),
        "last_event_at": _iso(record.event_at),
        "last_received_at": _iso(record.last_received),
        "last_sent_at": _iso(record.sent_at),
        "events": record.events,
        "sends": record.sends,
        "summary": (record.payload or {}).get("summary"),
        "format": record.format,
        "identity": record.identity,
    }
    if record.lease_until > now_us:
        doc["sending_until"] = _iso(record.lease_until)
    if record.send_at and not record.delivered:
        doc["due_at"] = _iso(record.send_at)
    if record.hold:
        doc["hold"] = record.hold
    if record.rollup:
        doc["rollup"] = record.rollup
    if record.suppressed:
        doc["suppressed"] = record.suppressed
    if record.before_paged:
        doc["resolved_before_paged"] = record.before_paged
    if record.pd_resolved_at:  # reconcile found its incident resolved at PagerDuty: the next trigger pages
        doc["resolved_at_pagerduty"] = _iso(record.pd_resolved_at)
    if record.updated_at:
        doc["updated_at"] = datetime.fromtimestamp(record.updated_at, UTC).isoformat().replace("+00:00", "Z")
    return doc
