"""Dispatch: one queue message → one decision in the dedup table → at most one Events API call.

``functions/dispatch/app.py`` runs :meth:`Dispatcher.process` for each SQS record through
Powertools' ``BatchProcessor``; a raised exception makes that record a batch item failure, which
SQS redelivers (after a back-off set here through the message's visibility timeout) until its
``maxReceiveCount``, then moves to the dead-letter queue.

Outcomes: delivered; skipped (stale/duplicate/unchanged/unknown: no call); permanent failure (sent
to the DLQ at once with PagerDuty's error text, not retried); retryable failure (raised).
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from pdrelay.dedup import DedupStore, item_key
from pdrelay.errors import ConcurrentUpdate, PermanentDelivery, RetryableDelivery, StoreError
from pdrelay.events_api import EventsClient, build_event, payload_snapshot
from pdrelay.lifecycle import Decision, Event, decide
from pdrelay.models import QueueMessageV1, parse_message
from pdrelay.observability import DELIVERY_FAILED, EVENTS_SENT, EVENTS_SKIPPED, count, logger
from pdrelay.settings import Settings
from pdrelay.timeutil import to_micros

WRITE_ATTEMPTS = 3


def content_hash(message: QueueMessageV1) -> str:
    """What makes a repeat notification different (times excluded: they move on every repeat)."""
    a = message.alert
    doc = a.model_dump(mode="json", by_alias=True,
                       exclude={"occurred_at", "timestamp", "identity", "format", "action", "client_url"})
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:32]


def to_event(message: QueueMessageV1) -> Event:
    return Event(
        pk=item_key(message.routing_key, message.dedup_key),
        dedup_key=message.dedup_key,
        action=message.alert.action,
        at=to_micros(message.alert.occurred_at),
        content_hash=content_hash(message),
        route=message.route,
        format=message.alert.format,
        identity=message.alert.identity,
        payload=payload_snapshot(message),
    )


@dataclass(frozen=True)
class Outcome:
    result: str  # delivered | skipped | dead-lettered
    reason: str
    action: str | None = None
    status: int | None = None


@dataclass
class Dispatcher:
    settings: Settings
    store: DedupStore
    events: EventsClient
    sqs: Any

    def process(self, body: str, *, receipt_handle: str = "", receive_count: int = 1,
                message_attributes: dict[str, Any] | None = None) -> Outcome:
        try:
            message = parse_message(body)
        except (ValueError, ValidationError) as exc:
            reason = f"unreadable queue message: {type(exc).__name__}"
            self._dead_letter(body, reason, None, receive_count, message_attributes)
            return Outcome("dead-lettered", reason)
        logger.append_keys(correlation_id=message.request_id, dedup_key=message.dedup_key,
                           route=message.route)
        try:
            return self._process(message, body, receipt_handle, receive_count, message_attributes)
        finally:
            logger.remove_keys(["correlation_id", "dedup_key", "route"])

    def _decide(self, message: QueueMessageV1) -> tuple[Decision, dict[str, Any] | None]:
        event = to_event(message)
        for _attempt in range(WRITE_ATTEMPTS):
            current = self.store.get(event.pk)
            decision = decide(current, event)
            if decision.write and decision.record is not None:
                try:
                    self.store.write(decision.record, current.version if current else None)
                except ConcurrentUpdate:
                    continue
            return decision, (current.payload if current else None)
        raise StoreError(f"lost {WRITE_ATTEMPTS} races for one dedup item; retrying later")

    def _process(self, message: QueueMessageV1, body: str, receipt_handle: str, receive_count: int,
                 message_attributes: dict[str, Any] | None) -> Outcome:
        decision, stored_payload = self._decide(message)
        if decision.send is None:
            count(EVENTS_SKIPPED, Reason=decision.reason)
            logger.info("skipped", extra={"reason": decision.reason, "action": message.alert.action})
            return Outcome("skipped", decision.reason)
        event = build_event(message, decision.send, stored_payload)
        try:
            delivered = self.events.send(event)
        except PermanentDelivery as exc:
            count(EVENTS_SENT, Action=decision.send, Status=str(exc.status))
            count(DELIVERY_FAILED, Kind="permanent")
            reason = "; ".join([str(exc), *exc.errors])
            self._dead_letter(body, reason, exc.status, receive_count, message_attributes)
            logger.warning("rejected by PagerDuty, sent to the DLQ", extra={"reason": reason})
            return Outcome("dead-lettered", reason, decision.send, exc.status)
        except RetryableDelivery as exc:
            count(EVENTS_SENT, Action=decision.send, Status=str(exc.status or "network"))
            count(DELIVERY_FAILED, Kind="retryable")
            delay = self.backoff_seconds(receive_count)
            self._delay(receipt_handle, delay)
            logger.warning("delivery failed, will retry",
                           extra={"error": str(exc), "attempt": receive_count, "retry_in_s": delay})
            raise
        count(EVENTS_SENT, Action=decision.send, Status=str(delivered.status))
        if decision.record is not None:
            self.store.mark_delivered(decision.record.pk, decision.record.version)
        logger.info("delivered", extra={"action": decision.send, "reason": decision.reason,
                                        "status": delivered.status})
        return Outcome("delivered", decision.reason, decision.send, delivered.status)

    def backoff_seconds(self, receive_count: int) -> int:
        """Exponential back-off with ±20 % jitter, capped (SQS allows up to 12 hours)."""
        base = self.settings.retry_base_seconds * 2 ** max(0, min(receive_count - 1, 16))
        capped = min(self.settings.retry_max_seconds, base)
        return max(0, int(capped * random.uniform(0.8, 1.2)))

    def _delay(self, receipt_handle: str, seconds: int) -> None:
        if not receipt_handle or not self.settings.queue_url:
            return
        try:
            self.sqs.change_message_visibility(
                QueueUrl=self.settings.queue_url, ReceiptHandle=receipt_handle,
                VisibilityTimeout=min(seconds, 43200),
            )
        except (ClientError, BotoCoreError) as exc:
            # The message still comes back after the queue's own visibility timeout.
            logger.warning("could not set the retry delay", extra={"error": type(exc).__name__})

    def _dead_letter(self, body: str, reason: str, status: int | None, receive_count: int,
                     message_attributes: dict[str, Any] | None) -> None:
        attributes = dict(message_attributes or {})
        attributes.update({
            "failure_reason": {"DataType": "String", "StringValue": reason[:1000] or "unknown"},
            "http_status": {"DataType": "Number", "StringValue": str(status or 0)},
            "attempts": {"DataType": "Number", "StringValue": str(receive_count)},
        })
        try:
            self.sqs.send_message(QueueUrl=self.settings.dlq_url, MessageBody=body,
                                  MessageAttributes=attributes)
        except (ClientError, BotoCoreError) as exc:
            # Not in the DLQ: fail the record so SQS keeps it (and moves it there eventually).
            raise StoreError(f"could not send to the dead-letter queue: {type(exc).__name__}") from exc


def attributes_from_event(attributes: dict[str, Any] | None) -> dict[str, Any]:
    """Lambda's SQS record attributes (camelCase) in SendMessage's shape (PascalCase)."""
    result: dict[str, Any] = {}
    for name, attr in (attributes or {}).items():
        value = attr.get("stringValue") or attr.get("StringValue")
        data_type = attr.get("dataType") or attr.get("DataType") or "String"
        if value is not None and not data_type.startswith("Binary"):
            result[name] = {"DataType": data_type, "StringValue": value}
    return result


_DISPATCHER: Dispatcher | None = None


def get_dispatcher() -> Dispatcher:
    """One dispatcher (pooled HTTP session, AWS clients) per execution environment."""
    global _DISPATCHER
    if _DISPATCHER is None:
        from pdrelay.aws import client
        from pdrelay.settings import get_settings

        settings = get_settings()
        _DISPATCHER = Dispatcher(
            settings=settings,
            store=DedupStore(client("dynamodb"), settings.table_name, settings.record_ttl_days),
            events=EventsClient(settings.events_url, connect_timeout=settings.connect_timeout_seconds,
                                read_timeout=settings.read_timeout_seconds),
            sqs=client("sqs"),
        )
    return _DISPATCHER


def reset_dispatcher() -> None:
    global _DISPATCHER
    _DISPATCHER = None
