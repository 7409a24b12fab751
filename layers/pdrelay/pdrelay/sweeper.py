"""The resolve sweeper: resolves recorded but never confirmed delivered are sent again.

Resolves are what other tools lose (a retry that gave up, a message that ended in the DLQ, a
crash). The dedup table marks each resolve not yet confirmed with ``pending = "resolve"``; every
few minutes the sweeper re-sends the resolves pending for longer than
``PDRELAY_SWEEP_AFTER_SECONDS`` (so it never races the dispatcher) and marks them delivered. A
resolve PagerDuty refuses (400) is set aside as ``pending = "rejected"``, not retried forever.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pdrelay.dedup import DedupStore
from pdrelay.errors import PermanentDelivery, RetryableDelivery
from pdrelay.events_api import EventsClient
from pdrelay.lifecycle import Record
from pdrelay.models import utcnow
from pdrelay.observability import RESOLVES_SWEPT, count, logger
from pdrelay.timeutil import iso, to_micros


@dataclass
class SweepResult:
    found: int = 0
    resolved: int = 0
    failed: int = 0
    rejected: int = 0
    dedup_keys: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"found": self.found, "resolved": self.resolved, "failed": self.failed, "rejected": self.rejected}


def resolve_event(record: Record) -> dict[str, Any]:
    payload = {
        "summary": record.payload.get("summary") or f"{record.format} alert {record.identity}",
        "source": record.payload.get("source") or "pdrelay",
        "severity": record.payload.get("severity") or "error",
        "custom_details": {"pdrelay_note": "resolve re-sent by pdrelay's sweeper: its first delivery was "
                                            "not confirmed"},
    }
    for key in ("component", "group", "class"):
        if record.payload.get(key):
            payload[key] = record.payload[key]
    return {"routing_key": record.routing_key, "event_action": "resolve", "dedup_key": record.dedup_key,
            "payload": payload, "client": "pdrelay"}


LEASE_SECONDS = 30


def sweep(store: DedupStore, events: EventsClient, *, older_than_seconds: int, limit: int = 100) -> SweepResult:
    result = SweepResult()
    for record in store.pending_resolves(older_than_seconds, limit):
        result.found += 1
        if not record.routing_key:
            continue
        # The index is eventually consistent and sends take time: claim the item on the table
        # first, so a resolve is never sent over an alert that has re-opened meanwhile.
        version = store.claim_resolve(record, to_micros(utcnow()), LEASE_SECONDS * 1_000_000)
        if version is None:
            continue
        try:
            events.send(resolve_event(record))
        except PermanentDelivery as exc:
            store.set_aside(record.pk, version)
            store.release(record.pk, version)
            result.rejected += 1
            logger.warning("sweeper: PagerDuty refused a resolve", extra={"dedup_key": record.dedup_key,
                                                                            "error": str(exc)})
            continue
        except RetryableDelivery as exc:
            store.release(record.pk, version)
            result.failed += 1
            logger.warning("sweeper: resolve not delivered, next sweep retries",
                           extra={"dedup_key": record.dedup_key, "error": str(exc)})
            continue
        store.mark_delivered(record.pk, version)
        result.resolved += 1
        result.dedup_keys.append(record.dedup_key)
        count(RESOLVES_SWEPT)
        logger.info("sweeper: resolve delivered", extra={"dedup_key": record.dedup_key,
                                                         "resolved_at": iso(utcnow())})
    return result
