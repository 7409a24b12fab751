"""Putting queue messages on SQS: ``SendMessageBatch`` in chunks, failed entries retried once.

Raises :class:`~pdrelay.errors.EnqueueError` unless every message was accepted by SQS, so ingest
never answers 202 for an alert that is not durably queued. Message attributes carry what operators
filter on (route, format, action), never the routing key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from pdrelay.errors import EnqueueError
from pdrelay.models import AnyMessage, QueueMessage

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef, SendMessageBatchRequestEntryTypeDef

    Entry = SendMessageBatchRequestEntryTypeDef

MAX_BATCH_ENTRIES = 10
MAX_BATCH_BYTES = 256 * 1024


def _attributes(message: AnyMessage) -> dict[str, MessageAttributeValueTypeDef]:
    alert = message.alert if isinstance(message, QueueMessage) else None
    attrs = {
        "format": alert.format if alert else "change",
        "action": alert.action if alert else "change",
        "route": message.route or "(unlisted)",
        "request_id": message.request_id or "-",
    }
    if message.destination:
        attrs["destination"] = message.destination
    return {k: {"DataType": "String", "StringValue": v} for k, v in attrs.items()}


def _chunks(entries: list[Entry]) -> list[list[Entry]]:
    chunks: list[list[Entry]] = []
    current: list[Entry] = []
    size = 0
    for entry in entries:
        entry_size = len(entry["MessageBody"].encode()) + 512
        if current and (len(current) == MAX_BATCH_ENTRIES or size + entry_size > MAX_BATCH_BYTES):
            chunks.append(current)
            current, size = [], 0
        current.append(entry)
        size += entry_size
    if current:
        chunks.append(current)
    return chunks


def enqueue(messages: Sequence[AnyMessage], sqs: SQSClient, queue_url: str) -> None:
    entries: list[Entry] = [
        {"Id": str(i), "MessageBody": m.to_json(), "MessageAttributes": _attributes(m)} for i, m in enumerate(messages)
    ]
    for chunk in _chunks(entries):
        pending = chunk
        for _attempt in range(2):
            try:
                answer = sqs.send_message_batch(QueueUrl=queue_url, Entries=pending)
            except (ClientError, BotoCoreError) as exc:
                raise EnqueueError(f"SQS refused the batch: {type(exc).__name__}") from exc
            failed_ids = {f["Id"] for f in answer.get("Failed", [])}
            pending = [e for e in pending if e["Id"] in failed_ids]
            if not pending:
                break
        if pending:
            raise EnqueueError(f"SQS did not accept {len(pending)} of {len(messages)} messages")
