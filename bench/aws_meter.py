"""Count the AWS requests a boto3 client makes and estimate DynamoDB's on-demand bill for them.

    meter = AwsMeter(admin)        # admin: a DynamoDB client the meter is NOT attached to
    meter.attach(dynamodb_client)  # and any SQS client (low-level clients): counted from now on
    ...
    meter.summary()                # {(service, operation): Usage(requests, failed, wru, index_wru, rru)}
    meter.calls                    # each call in order: operation, table, key, units, error code, params
    meter.reset()

**Hooks.** The meter registers on the client's event system for ``before-parameter-build`` (the
operation's parameters as the caller passed them, kept in the call's context), ``before-call``
(about to send: the items a write will touch are read here) and ``after-call`` (the parsed answer,
also when it is an error such as a failed condition). These fire once per API call, with the
operation's name and its parameters in the low-level client's shape, so nothing has to parse the
signed wire request back (``before-send`` fires per HTTP attempt and sees only bytes). The cost: a
call botocore retries (throttling, 5xx) is billed by AWS per attempt and counted here once; moto
never throttles, so against it the two agree.

**Billing rules (on-demand, approximate):**

- write request units: ``ceil(item size / 1 KB)`` per item written, the larger of the item before
  and after the write (PutItem, UpdateItem, DeleteItem, BatchWriteItem); at least 1. A write whose
  condition fails still costs (the stored item's size, 1 if none) but writes no index.
- plus, per global or local secondary index, what the write does to the item's index entry (the
  table's and the index's key attributes and the projected ones): entering or leaving the index (a
  sparse index) is one write of the entry's size, a changed index key is two (delete, put), a
  changed projected attribute alone is one; an unchanged entry costs nothing. The indexes are read
  from the table's DescribeTable, so they follow whatever template.yaml defines.
- read request units: ``ceil(size / 4 KB)`` for a strongly consistent read, half for an eventually
  consistent one, at least one such unit: GetItem and BatchGetItem on each item's full size (a
  projection does not lower the bill); Query and Scan on the summed size of the items returned
  (items a filter dropped are billed by AWS but unseen here).
- transactions: twice the units of the same reads or writes.
- item size: attribute name lengths plus value sizes: strings and binaries their bytes, numbers
  about one byte per two significant digits plus one, booleans and nulls 1, lists and maps 3 plus
  1 per element plus the elements (map keys included), sets the sum of their elements. The index
  entries' 100 bytes of storage overhead are not counted in their write units.

The items before and after a write are read with ``read_item`` (default: ``admin``'s GetItem,
strongly consistent); in-process moto, :func:`moto_item_reader` reads its backend directly, a few
hundred times faster.

SQS calls are counted per operation, one billed request each (messages under 64 KB).
"""

from __future__ import annotations

import base64
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

Item = dict[str, Any]  # the low-level client's shape: {"name": {"S": "value"}, ...}
ItemReader = Callable[[str, Item], Item | None]  # (table name, key) -> the stored item or None

WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")
_CONTEXT = "aws_meter"  # where a call's parameters and images wait in botocore's call context


# -- item sizes ---------------------------------------------------------------------------------
def _number_size(text: str) -> int:
    digits = text.lstrip("+-").lower().split("e")[0].replace(".", "").strip("0")
    return (len(digits) + 1) // 2 + 1


def _binary_size(value: bytes | bytearray | str) -> int:
    return len(base64.b64decode(value)) if isinstance(value, str) else len(value)


def value_size(value: Mapping[str, Any]) -> int:
    """The billed size of one attribute value (``{"S": ...}``, ``{"M": {...}}``, ...)."""
    ((kind, data),) = value.items()
    if kind == "S":
        return len(str(data).encode())
    if kind == "N":
        return _number_size(str(data))
    if kind == "B":
        return _binary_size(data)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in data)
    if kind == "NS":
        return sum(_number_size(str(n)) for n in data)
    if kind == "BS":
        return sum(_binary_size(b) for b in data)
    if kind == "M":
        return 3 + sum(len(k.encode()) + value_size(v) + 1 for k, v in data.items())
    if kind == "L":
        return 3 + sum(value_size(v) + 1 for v in data)
    raise ValueError(f"not an attribute value: {kind}")


def item_size(item: Item | None) -> int:
    """Attribute name lengths plus value sizes (0 for no item)."""
    return sum(len(name.encode()) + value_size(value) for name, value in (item or {}).items())


def write_units(size: int) -> int:
    return max(1, math.ceil(size / 1024))


def read_units(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / 4096))
    return float(units) if consistent else units / 2


# -- indexes ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Index:
    name: str
    keys: tuple[str, ...]  # the index's key attributes
    projected: frozenset[str] | None  # besides every key; None: all attributes

    def entry(self, item: Item | None, table_keys: tuple[str, ...]) -> Item | None:
        """The item's entry in this index, or None when the item is not in it (sparse index)."""
        if item is None or any(k not in item for k in self.keys):
            return None
        if self.projected is None:
            return item
        names = self.projected | set(self.keys) | set(table_keys)
        return {k: v for k, v in item.items() if k in names}

    def write_units(self, old: Item | None, new: Item | None, table_keys: tuple[str, ...]) -> int:
        before, after = self.entry(old, table_keys), self.entry(new, table_keys)
        if before == after:
            return 0
        if before is None or after is None:
            return write_units(item_size(before or after))
        if any(before[k] != after[k] for k in self.keys):
            return write_units(item_size(before)) + write_units(item_size(after))  # delete, then put
        return write_units(max(item_size(before), item_size(after)))


@dataclass(frozen=True)
class Table:
    keys: tuple[str, ...]
    indexes: tuple[Index, ...]

    @classmethod
    def from_description(cls, table: Mapping[str, Any]) -> Table:
        indexes = []
        for index in [*table.get("GlobalSecondaryIndexes", []), *table.get("LocalSecondaryIndexes", [])]:
            projection = index.get("Projection", {})
            kind = projection.get("ProjectionType", "ALL")
            indexes.append(
                Index(
                    index["IndexName"],
                    tuple(k["AttributeName"] for k in index["KeySchema"]),
                    None if kind == "ALL" else frozenset(projection.get("NonKeyAttributes", [])),
                )
            )
        return cls(tuple(k["AttributeName"] for k in table["KeySchema"]), tuple(indexes))

    def key_of(self, item: Item) -> Item:
        return {k: item[k] for k in self.keys}

    def write_cost(self, old: Item | None, new: Item | None, failed: bool) -> tuple[int, int]:
        """Units of one item's write: (the table's, the indexes'); a failed condition writes no index."""
        if failed:
            return write_units(item_size(old)), 0
        table = write_units(max(item_size(old), item_size(new)))
        return table, sum(i.write_units(old, new, self.keys) for i in self.indexes)


# -- the meter ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Call:
    service: str  # "dynamodb", "sqs", ...
    operation: str  # "GetItem", "SendMessage", ...
    table: str = ""
    key: str = ""  # the first key attribute's value of the (first) item, or the index queried
    error: str = ""  # the error code of a failed call ("ConditionalCheckFailedException")
    wru: float = 0.0  # all write units, the indexes' included
    index_wru: float = 0.0  # of which written to secondary indexes
    rru: float = 0.0
    size: int = 0  # bytes of the item written (as it is after the write) or read; of all a Query returned
    at: float = 0.0  # time.time() when the answer came
    params: Mapping[str, Any] = field(default_factory=dict, repr=False)  # as the caller passed them
    took: float = 0.0  # seconds from sending the request to its parsed answer (retries included)


@dataclass
class Usage:
    requests: int = 0
    failed: int = 0
    wru: float = 0.0
    index_wru: float = 0.0
    rru: float = 0.0

    def add(self, call: Call) -> None:
        self.requests += 1
        self.failed += bool(call.error)
        self.wru += call.wru
        self.index_wru += call.index_wru
        self.rru += call.rru


@dataclass(frozen=True)
class _Write:
    table: str
    key: Item
    transactional: bool = False


def moto_item_reader(admin: Any) -> ItemReader:
    """Read items straight from in-process moto's backend (found from each table's ARN, which
    names its account and region; ``admin``: a client of that moto, for DescribeTable)."""
    from moto.dynamodb.models import dynamodb_backends

    backends: dict[str, Any] = {}

    def read(table: str, key: Item) -> Item | None:
        if table not in backends:
            arn = admin.describe_table(TableName=table)["Table"]["TableArn"]
            _arn, _partition, _service, region, account, _name = arn.split(":", 5)
            backends[table] = dynamodb_backends[account][region]
        found = backends[table].get_item(table, key)
        return None if found is None else dict(found.to_json()["Attributes"])

    return read


@dataclass
class AwsMeter:
    admin: Any  # a DynamoDB client the meter is not attached to
    read_item: ItemReader | None = None
    calls: list[Call] = field(default_factory=list)
    _tables: dict[str, Table] = field(default_factory=dict)

    def attach(self, client: Any) -> None:
        events = client.meta.events
        tag = f"aws-meter-{id(self)}"
        events.register("before-parameter-build", self._keep_params, unique_id=f"{tag}-params")
        events.register("before-call", self._before, unique_id=f"{tag}-before")
        events.register("after-call", self._after, unique_id=f"{tag}-after")

    def reset(self) -> None:
        self.calls.clear()

    def summary(self, calls: list[Call] | None = None) -> dict[tuple[str, str], Usage]:
        usage: dict[tuple[str, str], Usage] = {}
        for call in self.calls if calls is None else calls:
            usage.setdefault((call.service, call.operation), Usage()).add(call)
        return usage

    # -- hooks ------------------------------------------------------------------------------
    def _keep_params(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context[_CONTEXT] = {"params": params}

    def _before(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        kept = context.get(_CONTEXT)
        if kept is None:
            return
        if model.service_model.service_name == "dynamodb" and model.name in WRITES:
            writes = list(self._writes(model.name, kept["params"]))
            kept["writes"] = writes
            kept["before"] = [self.read(w.table, w.key) for w in writes]
        kept["started"] = time.perf_counter()  # after the meter's own reads

    def _after(self, model: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        kept = context.pop(_CONTEXT, None)
        if kept is None:
            return
        took = time.perf_counter() - kept.get("started", time.perf_counter())
        service, operation, params = model.service_model.service_name, model.name, kept["params"]
        error = str(parsed.get("Error", {}).get("Code", ""))
        if service != "dynamodb":
            self.calls.append(Call(service, operation, error=error, at=time.time(), params=params, took=took))
            return
        wru = index_wru = rru = 0.0
        size = 0
        if operation in WRITES:
            wru, index_wru, size = self._write_cost(kept, error)
        elif not error:
            rru, size = self._read_cost(operation, params, parsed)
        table, key = _target(operation, params, kept.get("writes", []))
        self.calls.append(
            Call(service, operation, table, key, error, wru, index_wru, rru, size, time.time(), params, took)
        )

    # -- pricing ----------------------------------------------------------------------------
    def _table(self, name: str) -> Table:
        if name not in self._tables:
            self._tables[name] = Table.from_description(self.admin.describe_table(TableName=name)["Table"])
        return self._tables[name]

    def read(self, table: str, key: Item) -> Item | None:
        """The stored item, read without being counted."""
        if self.read_item is not None:
            return self.read_item(table, key)
        found: Item | None = self.admin.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
        return found

    def _writes(self, operation: str, params: dict[str, Any]) -> Iterator[_Write]:
        if operation == "PutItem":
            yield _Write(params["TableName"], self._table(params["TableName"]).key_of(params["Item"]))
        elif operation in ("UpdateItem", "DeleteItem"):
            yield _Write(params["TableName"], params["Key"])
        elif operation == "BatchWriteItem":
            for name, requests in params["RequestItems"].items():
                for request in requests:
                    if "PutRequest" in request:
                        yield _Write(name, self._table(name).key_of(request["PutRequest"]["Item"]))
                    else:
                        yield _Write(name, request["DeleteRequest"]["Key"])
        else:  # TransactWriteItems
            for entry in params["TransactItems"]:
                ((kind, action),) = entry.items()
                name = action["TableName"]
                key = action["Key"] if kind != "Put" else self._table(name).key_of(action["Item"])
                yield _Write(name, key, transactional=True)

    def _write_cost(self, kept: dict[str, Any], error: str) -> tuple[float, float, int]:
        """(all write units, the indexes' part, the largest item's size after) of a write call."""
        if error and error not in ("ConditionalCheckFailedException", "TransactionCanceledException"):
            return 0.0, 0.0, 0  # refused before any work (validation, throttling): not billed
        total = indexes = 0.0
        size = 0
        for write, before in zip(kept["writes"], kept["before"], strict=True):
            after = before if error else self.read(write.table, write.key)
            table, index = self._table(write.table).write_cost(before, after, failed=bool(error))
            times = 2 if write.transactional else 1
            total += (table + index) * times
            indexes += index * times
            size = max(size, item_size(after))
        return total, indexes, size

    def _read_cost(self, operation: str, params: dict[str, Any], parsed: dict[str, Any]) -> tuple[float, int]:
        """(read units, bytes read) of a read call."""
        consistent = bool(params.get("ConsistentRead"))
        if operation == "GetItem":
            size = item_size(self.read(params["TableName"], params["Key"]))
            return read_units(size, consistent), size
        if operation in ("Query", "Scan"):
            size = sum(item_size(i) for i in parsed.get("Items", []))
            return read_units(size, consistent), size
        if operation == "BatchGetItem":
            reads = [
                (item_size(self.read(name, key)), bool(request.get("ConsistentRead")))
                for name, request in params["RequestItems"].items()
                for key in request["Keys"]
            ]
            return sum(read_units(size, c) for size, c in reads), sum(size for size, _c in reads)
        if operation == "TransactGetItems":
            sizes = [item_size(self.read(e["Get"]["TableName"], e["Get"]["Key"])) for e in params["TransactItems"]]
            return sum(2 * read_units(size, True) for size in sizes), sum(sizes)
        return 0.0, 0  # DescribeTable and other control-plane calls


def _target(operation: str, params: dict[str, Any], writes: list[_Write]) -> tuple[str, str]:
    """The table and a short description of the item (or index) a call is about."""
    if operation in ("Query", "Scan"):
        return params.get("TableName", ""), f"index {params['IndexName']}" if "IndexName" in params else "table"
    key = writes[0].key if writes else params.get("Key")
    table = writes[0].table if writes else params.get("TableName", "")
    if not key:
        return table, ""
    ((_kind, value),) = next(iter(key.values())).items()
    return table, str(value)
