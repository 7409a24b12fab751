"""The dedup table: the only module that talks to DynamoDB.

One item per (routing key, alert identity), keyed by ``pk`` = a hash of the routing key (never the
key itself) and the dedup key. Writes are conditional on the item's ``version``, so two
dispatchers cannot both apply a change; the loser re-reads and decides again.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from pdrelay.errors import ConcurrentUpdate, StoreError
from pdrelay.lifecycle import OPEN_STATES, Record

_SER = TypeSerializer()
_DES = TypeDeserializer()
_FIELDS = set(Record.__dataclass_fields__)


def item_key(routing_key: str, dedup_key: str) -> str:
    return hashlib.sha256(routing_key.encode()).hexdigest()[:20] + "#" + dedup_key


def _to_item(record: Record, expires_at: int) -> dict[str, Any]:
    doc = {k: v for k, v in asdict(record).items() if v is not None}
    doc["expires_at"] = expires_at
    doc["updated_at"] = int(time.time())
    return {k: _SER.serialize(v) for k, v in doc.items()}


def _from_item(item: dict[str, Any]) -> Record:
    doc = {k: _DES.deserialize(v) for k, v in item.items() if k in _FIELDS}
    for name in ("started_at", "event_at", "version", "events", "sends"):
        if name in doc:
            doc[name] = int(doc[name])
    return Record(**doc)


class DedupStore:
    def __init__(self, client: Any, table_name: str, ttl_days: int = 30) -> None:
        self._client = client
        self._table = table_name
        self._ttl_seconds = ttl_days * 86400

    def get(self, pk: str) -> Record | None:
        try:
            answer = self._client.get_item(TableName=self._table, Key={"pk": {"S": pk}}, ConsistentRead=True)
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(f"reading the dedup table failed: {_code(exc)}") from exc
        item = answer.get("Item")
        return _from_item(item) if item else None

    def write(self, record: Record, previous_version: int | None) -> None:
        """Put ``record`` if the stored version is still ``previous_version`` (None: no item)."""
        if previous_version is None:
            condition, values = "attribute_not_exists(pk)", {}
        else:
            condition, values = "version = :v", {":v": {"N": str(previous_version)}}
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "Item": _to_item(record, int(time.time()) + self._ttl_seconds),
            "ConditionExpression": condition,
        }
        if values:
            kwargs["ExpressionAttributeValues"] = values
        try:
            self._client.put_item(**kwargs)
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                raise ConcurrentUpdate(f"item changed under us (expected version {previous_version})") from exc
            raise StoreError(f"writing the dedup table failed: {_code(exc)}") from exc
        except BotoCoreError as exc:
            raise StoreError(f"writing the dedup table failed: {type(exc).__name__}") from exc

    def mark_delivered(self, pk: str, version: int) -> bool:
        """Record that the event applied at ``version`` reached PagerDuty; False if superseded."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": pk}},
                UpdateExpression="SET delivered = :t, sends = if_not_exists(sends, :z) + :one",
                ConditionExpression="version = :v",
                ExpressionAttributeValues={":t": {"BOOL": True}, ":v": {"N": str(version)},
                                           ":z": {"N": "0"}, ":one": {"N": "1"}},
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return False
            raise StoreError(f"updating the dedup table failed: {_code(exc)}") from exc
        except BotoCoreError as exc:
            raise StoreError(f"updating the dedup table failed: {type(exc).__name__}") from exc
        return True

    def open_alerts(self, limit: int = 1000) -> list[Record]:
        """Alerts the table says are open on PagerDuty (a scan: for operators, not the hot path)."""
        records: list[Record] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": "#s IN (:a, :b)",
            "ExpressionAttributeNames": {"#s": "state"},
            "ExpressionAttributeValues": {":a": {"S": OPEN_STATES[0]}, ":b": {"S": OPEN_STATES[1]}},
        }
        try:
            while len(records) < limit:
                answer = self._client.scan(**kwargs)
                records.extend(_from_item(i) for i in answer.get("Items", []))
                if "LastEvaluatedKey" not in answer:
                    break
                kwargs["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(f"scanning the dedup table failed: {_code(exc)}") from exc
        return records[:limit]


def _code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "Unknown"))
    return type(exc).__name__
