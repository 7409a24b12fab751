"""The resolve sweeper: resolves recorded but never confirmed delivered are sent again.

Resolves are what other tools lose (a retry that gave up, a message that ended in the DLQ, a
crash). The dedup table marks each resolve not yet confirmed with ``pending = "resolve"``; every
few minutes the sweeper re-sends the resolves pending for longer than
``PDRELAY_SWEEP_AFTER_SECONDS`` (so it never races the dispatcher) and marks them delivered. A
resolve PagerDuty refuses (400) is set aside as ``pending = "rejected"``, not retried forever.

The same pass ends holds: alerts a maintenance window kept from PagerDuty (``pending = "held"``)
go back on the alert queue once no window holds them (:func:`release_held`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pdrelay.delivery.decisions import Record
from pdrelay.delivery.events_api import EventsClient
from pdrelay.errors import PermanentDelivery, RetryableDelivery
from pdrelay.models import QueueMessage
from pdrelay.observability import RESOLVES_SWEPT, count, logger
from pdrelay.policy.judge import Policy
from pdrelay.table import DedupStore
from pdrelay.timeutil import iso, to_micros

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


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
        "custom_details": {
            "pdrelay_note": "resolve re-sent by pdrelay's sweeper: its first delivery was not confirmed"
        },
    }
    for key in ("component", "group", "class"):
        if record.payload.get(key):
            payload[key] = record.payload[key]
    return {
        "routing_key": record.routing_key,
        "event_action": "resolve",
        "dedup_key": record.dedup_key,
        "payload": payload,
        "client": "pdrelay",
    }


LEASE_SECONDS = 30


def sweep(store: DedupStore, events: EventsClient, *, older_than_seconds: int, limit: int = 100) -> SweepResult:
    result = SweepResult()
    for record in store.pending_resolves(older_than_seconds, limit):
        result.found += 1
        if not record.routing_key or record.hold == "rollup":
            continue  # a rolled-up alert's resolve is its roll-up's business (its message retries)
        # The index is eventually consistent and sends take time: claim the item on the table
        # first, so a resolve is never sent over an alert that has re-opened meanwhile.
        version = store.claim_resolve(record, to_micros(store.clock.now()), LEASE_SECONDS * 1_000_000)
        if version is None:
            continue
        try:
            events.send(resolve_event(record))
        except PermanentDelivery as exc:
            store.set_aside(record.pk, version)
            store.release(record.pk, version)
            result.rejected += 1
            logger.warning(
                "sweeper: PagerDuty refused a resolve", extra={"dedup_key": record.dedup_key, "error": str(exc)}
            )
            continue
        except RetryableDelivery as exc:
            store.release(record.pk, version)
            result.failed += 1
            logger.warning(
                "sweeper: resolve not delivered, next sweep retries",
                extra={"dedup_key": record.dedup_key, "error": str(exc)},
            )
            continue
        store.mark_delivered(record.pk, version)
        result.resolved += 1
        result.dedup_keys.append(record.dedup_key)
        count(RESOLVES_SWEPT)
        logger.info(
            "sweeper: resolve delivered", extra={"dedup_key": record.dedup_key, "resolved_at": iso(store.clock.now())}
        )
    return result


@dataclass
class ReleaseResult:
    held: int = 0
    released: int = 0
    dropped: int = 0
    still_held: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"held": self.held, "released": self.released, "dropped": self.dropped, "still_held": self.still_held}


def release_held(
    store: DedupStore, policy: Policy, sqs: SQSClient, queue_url: str, now: datetime | None = None, limit: int = 10000
) -> ReleaseResult:
    """Alerts held by a maintenance window that has ended (or was removed): their message goes back
    on the alert queue, where the dispatcher sends it like any trigger (unless the alert resolved
    meanwhile). A window with ``send_held_at_end: false`` lets them go unpaged instead."""
    from botocore.exceptions import BotoCoreError, ClientError

    from pdrelay.models import parse_message
    from pdrelay.observability import HELD_RELEASED

    now = now or store.clock.now()
    result = ReleaseResult()
    windows = policy.windows()
    by_name = {w.name: w for w in windows}
    for record in store.held(limit):
        result.held += 1
        if not record.message:
            continue
        try:
            message = parse_message(record.message)
        except ValueError:
            logger.warning("a held alert's message is unreadable", extra={"dedup_key": record.dedup_key})
            continue
        if isinstance(message, QueueMessage) and policy.holding(message, now, windows) is not None:
            result.still_held += 1
            continue
        # The window's setting now, or as it was when the alert was held if the window is gone
        # (ended with `pdrelay maintenance end`, or taken out of the configuration).
        window = by_name.get(record.hold.removeprefix("window:"))
        if record.drop_at_end if window is None else not window.send_held_at_end:
            if store.let_go(record):
                result.dropped += 1
            continue
        try:
            # Held for as long as the window ran: the hold limit (PDRELAY_MAX_HOLD_SECONDS) counts
            # from now, as after an operator's redrive, not from when the monitor sent it.
            sqs.send_message(
                QueueUrl=queue_url,
                MessageBody=record.message,
                MessageAttributes={
                    "redriven_at": {"DataType": "Number", "StringValue": str(int(now.timestamp()))},
                    "released_from": {"DataType": "String", "StringValue": record.hold[:200] or "-"},
                },
            )
        except (ClientError, BotoCoreError) as exc:
            logger.warning("could not put a held alert back on the queue", extra={"error": type(exc).__name__})
            continue
        result.released += 1
        count(HELD_RELEASED)
        logger.info(
            "maintenance over: held alert back on the queue",
            extra={"dedup_key": record.dedup_key, "window": record.hold},
        )
    return result


def refresh_rollups(policy: Policy, events: EventsClient) -> int:
    """Roll-up incidents whose list of alerts grew after their last send (a burst within the
    route's ``rollup_update_seconds``) are sent again with the full list. A failed send is left
    for the next sweep."""
    try:
        sent = policy.refresh_rollups(events.send)
    except (PermanentDelivery, RetryableDelivery) as exc:
        logger.warning("sweeper: a roll-up update was not delivered; the next sweep retries", extra={"error": str(exc)})
        return 0
    if sent:
        logger.info("sweeper: roll-up incidents updated", extra={"rollups": sent})
    return sent
