"""Operators' view of the dead-letter queue: inspect it, move messages back, purge it.

SQS's own ``StartMessageMoveTask`` cannot filter by routing key (and moto lacks it), so pdrelay
reads messages: receive, re-send to the alert queue, delete, in that order, so a crash mid-redrive
duplicates at worst (dispatch dedups) and never loses. Messages keep their body, hence their
dedup key: a redriven alert still lands on its incident. Messages that do not match a filter are
made visible again when the pass ends.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from pdrelay.errors import EnqueueError
from pdrelay.observability import mask

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

READ_VISIBILITY_SECONDS = 60
DROPPED_ON_REDRIVE = ("failure_reason", "http_status", "attempts", "deferrals", "redriven_at")


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    receipt_handle: str
    body: str
    attributes: dict[str, Any]  # SendMessage's shape
    sent_at: int = 0  # ms since the epoch

    @property
    def doc(self) -> dict[str, Any]:
        try:
            value = json.loads(self.body)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def attr(self, name: str, default: str = "") -> str:
        return str(self.attributes.get(name, {}).get("StringValue", default))

    @property
    def routing_key(self) -> str:
        return str(self.doc.get("routing_key", ""))

    @property
    def route(self) -> str:
        return str(self.doc.get("route") or self.attr("route") or "(unlisted)")

    @property
    def reason(self) -> str:
        return self.attr("failure_reason") or "moved by SQS after the maximum receives (retryable failures)"

    def summary(self) -> dict[str, Any]:
        alert = self.doc.get("alert") or {}
        return {
            "message_id": self.message_id,
            "route": self.route,
            "routing_key": mask(self.routing_key),
            "dedup_key": self.doc.get("dedup_key"),
            "action": alert.get("action"),
            "summary": alert.get("summary"),
            "reason": self.reason,
            "http_status": int(self.attr("http_status", "0") or 0) or None,
            "attempts": int(self.attr("attempts", "0") or 0) or None,
            "received_at": self.doc.get("received_at"),
        }


def read(
    sqs: SQSClient, queue_url: str, limit: int | None = None, visibility: int = READ_VISIBILITY_SECONDS
) -> Iterator[DeadLetter]:
    """Every message once (up to ``limit``), each left invisible for ``visibility`` seconds."""
    seen: set[str] = set()
    empty_rounds = 0
    while limit is None or len(seen) < limit:
        answer = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=visibility,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            WaitTimeSeconds=0,
        )
        batch = [m for m in answer.get("Messages", []) if m["MessageId"] not in seen]
        if not batch:
            empty_rounds += 1
            if empty_rounds >= 2:
                return
            continue
        empty_rounds = 0
        for message in batch:
            if limit is not None and len(seen) >= limit:
                release(sqs, queue_url, [message["ReceiptHandle"]])
                continue
            seen.add(message["MessageId"])
            yield DeadLetter(
                message_id=message["MessageId"],
                receipt_handle=message["ReceiptHandle"],
                body=message["Body"],
                attributes={
                    k: {"DataType": v["DataType"], "StringValue": v["StringValue"]}
                    for k, v in message.get("MessageAttributes", {}).items()
                    if "StringValue" in v
                },
                sent_at=int(message.get("Attributes", {}).get("SentTimestamp", 0)),
            )


def release(sqs: SQSClient, queue_url: str, receipt_handles: list[str]) -> None:
    for start in range(0, len(receipt_handles), 10):
        chunk = receipt_handles[start : start + 10]
        sqs.change_message_visibility_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0} for i, h in enumerate(chunk)],
        )


@dataclass
class Filter:
    route: str | None = None
    routing_key: str | None = None

    def matches(self, message: DeadLetter) -> bool:
        if self.route and message.route != self.route:
            return False
        return not (self.routing_key and message.routing_key != self.routing_key)


@dataclass
class Inspection:
    total: int = 0
    by_route: Counter[tuple[str, str]] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    messages: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "by_route": [{"route": r, "routing_key": k, "count": n} for (r, k), n in self.by_route.most_common()],
            "reasons": [{"reason": r, "count": n} for r, n in self.reasons.most_common()],
            "messages": self.messages,
        }


def inspect(sqs: SQSClient, dlq_url: str, limit: int | None = None, keep: int = 100) -> Inspection:
    """Counts by route and reason (routing keys masked); the first ``keep`` messages summarised."""
    result = Inspection()
    handles = []
    try:
        for message in read(sqs, dlq_url, limit):
            handles.append(message.receipt_handle)
            result.total += 1
            result.by_route[(message.route, mask(message.routing_key))] += 1
            result.reasons[_reason_group(message.reason)] += 1
            if len(result.messages) < keep:
                result.messages.append(message.summary())
    finally:
        release(sqs, dlq_url, handles)
    return result


def _reason_group(reason: str) -> str:
    """Reasons grouped: PagerDuty's message without per-event detail."""
    return reason.split("; ", 1)[0][:200]


KEYS_LISTED = 100  # dedup keys a redrive's result lists (its log line: what `pdrelay trace` finds it by)


@dataclass
class RedriveResult:
    matched: int = 0
    moved: int = 0
    skipped: int = 0
    dry_run: bool = False
    dedup_keys: list[str] = field(default_factory=list)  # of the messages moved (or that would be), the first 100

    def as_dict(self) -> dict[str, Any]:
        return {
            "matched": self.matched,
            "moved": self.moved,
            "skipped": self.skipped,
            "dry_run": self.dry_run,
            "dedup_keys": self.dedup_keys,
        }


def redrive(
    sqs: SQSClient,
    dlq_url: str,
    queue_url: str,
    *,
    where: Filter | None = None,
    dry_run: bool = False,
    limit: int | None = None,
    progress: Callable[[RedriveResult], None] | None = None,
) -> RedriveResult:
    """Move matching DLQ messages back to the alert queue: receive, re-send, delete."""
    where = where or Filter()
    result = RedriveResult(dry_run=dry_run)
    untouched: list[str] = []
    try:
        for message in read(sqs, dlq_url):
            if not where.matches(message) or (limit is not None and result.matched >= limit):
                result.skipped += 1
                untouched.append(message.receipt_handle)
                continue
            result.matched += 1
            key = message.doc.get("dedup_key")
            if isinstance(key, str) and len(result.dedup_keys) < KEYS_LISTED:
                result.dedup_keys.append(key)
            if dry_run:
                untouched.append(message.receipt_handle)
            else:
                _move(sqs, message, queue_url, dlq_url)
                result.moved += 1
            if progress is not None:
                progress(result)
    finally:
        release(sqs, dlq_url, untouched)
    return result


def _move(sqs: SQSClient, message: DeadLetter, queue_url: str, dlq_url: str) -> None:
    attributes = {k: v for k, v in message.attributes.items() if k not in DROPPED_ON_REDRIVE}
    redriven = int(message.attr("redriven", "0") or 0) + 1
    attributes["redriven"] = {"DataType": "Number", "StringValue": str(redriven)}
    # The hold limit counts from here: an operator's redrive gives the alert a fresh day.
    attributes["redriven_at"] = {"DataType": "Number", "StringValue": str(int(time.time()))}
    try:
        sqs.send_message(QueueUrl=queue_url, MessageBody=message.body, MessageAttributes=attributes)
    except (ClientError, BotoCoreError) as exc:
        raise EnqueueError(f"could not put a message back on the alert queue: {type(exc).__name__}") from exc
    sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message.receipt_handle)


def count(sqs: SQSClient, dlq_url: str) -> int:
    """SQS's approximate count of messages in the DLQ (no message is read)."""
    attributes = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def purge(sqs: SQSClient, dlq_url: str) -> int:
    """Empty the DLQ; returns how many messages SQS counted in it just before."""
    before = count(sqs, dlq_url)
    sqs.purge_queue(QueueUrl=dlq_url)
    return before
