"""The table: the only module that talks to DynamoDB, and the only one that builds its keys.

Alert items: one per (routing key, alert identity), keyed by ``pk`` = a hash of the routing key and
the dedup key (:func:`item_key`). Writes are conditional on the item's ``version``, so two dispatchers cannot both
apply a change; the loser decides again on the item the failed write returns
(:func:`read_modify_write` is the one retry loop for every such change). A resolve whose send did
not complete (failed, put back, in the DLQ) carries ``pending = "resolve"``, which puts it in the
sparse ``PendingResolves`` index the sweeper reads; one being sent under a lease does not (its queue
message is still there), so the common path writes no index entry. Each route's item
``routekeys#<route>`` remembers the hashes of every routing key the route has sent triggers under
(written when a dispatcher first meets a set of keys: rarely), so a resolve reaches the incidents
its alert opened under a destination since removed or a key since rotated by reading those items
directly (:meth:`DedupStore.copies_of`), without an index written for every alert.

Control items, in the same table, all versioned the same way:

=================================  ==================================================================
``<hash>#<dedup key>``             an alert (:func:`item_key`)
``pace#<hash>``                    a routing key's send schedule (:func:`pace_key`), or a caller's
                                   rate-limit bucket (the hash of ``caller:<name>``, :func:`caller_bucket`)
``breaker#events-api``             the Events API circuit breaker (:data:`BREAKER_KEY`)
``storm#<route>#<hash>``           new incidents this minute, per route and key (:func:`storm_key`)
``rollup#<route>#<hash>``          a storm's roll-up incident and its members (:func:`rollup_key`)
``maintenance#windows``            windows added with ``pdrelay maintenance`` (:data:`WINDOWS_KEY`)
``probe#<id>``                     a ``pdrelay test`` run's answers (:func:`probe_key`)
``routekeys#<route>``              the hashes of the routing keys a route has paged with (:func:`route_keys_key`)
``replay#...``                     ingest's replay records (:mod:`pdrelay.ingest.replay`, :data:`REPLAY_PREFIX`)
``heartbeats#silent``              the heartbeats whose incident is open and its routing keys
                                   (:data:`SILENT_HEARTBEATS_KEY`): resolved even if the heartbeat is removed
``heartbeat#<route>``              a route's heartbeat: last contact, first sighting, silent or not
                                   (:func:`heartbeat_key`, :mod:`pdrelay.policy.heartbeats`)
=================================  ==================================================================

``<hash>`` is the first 20 hex digits of the routing key's SHA-256: routing keys never appear in the
table's keys. Alerts held by a maintenance window carry ``pending = "held"``, so
the sweeper finds them in the same sparse index when their window ends.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from pdrelay.delivery.decisions import DEAD_LETTERED, OPEN_STATES, Record
from pdrelay.delivery.pacing import Breaker, Schedule
from pdrelay.errors import ConcurrentUpdate, StoreError
from pdrelay.timeutil import SYSTEM_CLOCK, Clock

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

PENDING_INDEX = "PendingResolves"
ROUTE_KEYS_KEPT = 32  # routing keys a route's history remembers (the oldest forgotten first)
PENDING_PAGE = 1000  # items per query page of the pending index
CONTROL_TTL_SECONDS = 7 * 86400
WRITE_ATTEMPTS = 5  # lost races before a read-modify-write gives up

T = TypeVar("T")

_SER = TypeSerializer()
_DES = TypeDeserializer()
_FIELDS = set(Record.__dataclass_fields__)


def read_modify_write(step: Callable[[], T], what: str, attempts: int = WRITE_ATTEMPTS) -> T:
    """The one retry loop for the table's versioned changes: run ``step`` (read, compute, write on
    condition of the version read) until its write goes through. A lost race
    (:class:`ConcurrentUpdate`) runs it again; after ``attempts`` lost races the last
    :class:`ConcurrentUpdate` is raised with ``what`` in its message (a :class:`StoreError`: the
    caller's message is retried later, or the caller falls back)."""
    for attempt in range(attempts):
        try:
            return step()
        except ConcurrentUpdate as exc:
            if attempt == attempts - 1:
                raise ConcurrentUpdate(f"{what} kept changing ({attempts} lost races)", exc.current) from exc
    raise AssertionError("unreachable")


# -- the key layout: every key of the table is built here ---------------------------------------
BREAKER_KEY = "breaker#events-api"
WINDOWS_KEY = "maintenance#windows"
REPLAY_PREFIX = "replay"
HEARTBEAT_PREFIX = "heartbeat"


def _hash(routing_key: str) -> str:
    return hashlib.sha256(routing_key.encode()).hexdigest()[:20]


def item_key(routing_key: str, dedup_key: str) -> str:
    return _hash(routing_key) + "#" + dedup_key


def pace_key(bucket: str) -> str:
    """The pacing bucket of a routing key, or of :func:`caller_bucket`."""
    return "pace#" + _hash(bucket)


def caller_bucket(caller: str) -> str:
    """What a caller's rate limit is named by in :meth:`DedupStore.take_caller_slot`."""
    return f"caller:{caller}"


def storm_key(route: str | None, routing_key: str) -> str:
    return f"storm#{route or '-'}#{_hash(routing_key)}"


def rollup_key(route: str | None, routing_key: str) -> str:
    return f"rollup#{route or '-'}#{_hash(routing_key)}"


def probe_key(probe: str) -> str:
    return f"probe#{probe}"


ROUTE_KEYS_PREFIX = "routekeys"


def route_keys_key(route: str | None) -> str:
    return f"{ROUTE_KEYS_PREFIX}#{route or '-'}"


def heartbeat_key(route: str) -> str:
    return f"{HEARTBEAT_PREFIX}#{route}"


SILENT_HEARTBEATS_KEY = "heartbeats#silent"  # the heartbeats whose incident is open, and where it is


def key_hash(routing_key: str) -> str:
    """The hash of a routing key that alert items are keyed by (:func:`item_key`)."""
    return _hash(routing_key)


@dataclass(frozen=True)
class AlertCopy:
    """Where one alert item was sent: what :meth:`DedupStore.copies_of` reads of it."""

    pk: str
    routing_key: str
    route: str | None
    destination: str | None


@dataclass(frozen=True)
class HeartbeatItem:
    """A route's heartbeat item. Ingest writes ``last_contact`` (epoch seconds, only ever forward)
    and ``last_sent``; the sweep writes ``first_seen`` once and ``state`` (``ok`` or ``silent``,
    with the ``silent_since`` it paged for) on changes, conditional on ``version``."""

    route: str
    first_seen: float | None = None
    last_contact: float | None = None
    last_sent: dict[str, str] = field(default_factory=dict)
    state: str = "ok"
    silent_since: float | None = None
    version: int = 0

    @property
    def since(self) -> float:
        """What silence is counted from: the last contact, or the first sighting if later (or no contact)."""
        return max(self.last_contact or 0.0, self.first_seen or 0.0)


def _heartbeat_from(doc: dict[str, Any]) -> HeartbeatItem:
    def number(name: str) -> float | None:
        return float(doc[name]) if doc.get(name) is not None else None

    return HeartbeatItem(
        route=str(doc["pk"]).split("#", 1)[1],
        first_seen=number("first_seen"),
        last_contact=number("last_contact"),
        last_sent=json.loads(str(doc.get("last_sent") or "{}")),
        state=str(doc.get("state") or "ok"),
        silent_since=number("silent_since"),
        version=int(doc.get("version", 0)),
    )


def _to_item(record: Record, now: int, ttl_seconds: int) -> dict[str, Any]:
    doc: dict[str, Any] = {k: v for k, v in asdict(record).items() if v is not None}
    if record.state == "resolved":
        # Only resolved items expire: an alert open for months must still find its incident.
        doc["expires_at"] = now + ttl_seconds
    doc["updated_at"] = now
    if record.state == "resolved" and not record.delivered and record.lease_until <= 0:
        doc["pending"] = "resolve"  # its send is not under way: the sweeper's to make sure of
    elif record.state in OPEN_STATES and record.hold.startswith("window:") and not record.paged:
        doc["pending"] = "held"
    return {k: _SER.serialize(v) for k, v in doc.items()}


def _from_item(item: dict[str, Any]) -> Record:
    doc = {k: _DES.deserialize(v) for k, v in item.items() if k in _FIELDS}
    for name in (
        "started_at",
        "event_at",
        "version",
        "events",
        "sends",
        "lease_until",
        "last_received",
        "updated_at",
        "sent_at",
        "suppressed",
        "send_at",
        "pd_resolved_at",
    ):
        if name in doc:
            doc[name] = int(doc[name])
    return Record(**doc)


class DedupStore:
    def __init__(
        self, client: DynamoDBClient, table_name: str, ttl_days: int = 30, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self._client = client
        self._table = table_name
        self._ttl_seconds = ttl_days * 86400
        self.clock = clock  # stamps updated_at and expiry times

    def get(self, pk: str) -> Record | None:
        try:
            answer = self._client.get_item(TableName=self._table, Key={"pk": {"S": pk}}, ConsistentRead=True)
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(f"reading the dedup table failed: {_code(exc)}") from exc
        item = answer.get("Item")
        return _from_item(item) if item else None

    def write(self, record: Record, previous_version: int | None) -> None:
        """Put ``record`` if the stored version is still ``previous_version`` (None: no item). A
        lost race raises :class:`ConcurrentUpdate` with the item as it is (``current``: a Record, or
        None when there is none), so the caller decides again without reading it."""
        item = _to_item(record, int(self.clock.time()), self._ttl_seconds)
        try:
            if previous_version is None:
                self._put(item, "attribute_not_exists(pk)", {}, return_old=True)
            else:
                self._put(item, "version = :v", {":v": {"N": str(previous_version)}}, return_old=True)
        except ConcurrentUpdate as exc:
            exc.current = _from_item(exc.current) if exc.current else None
            raise

    def _put(self, item: dict[str, Any], condition: str, values: dict[str, Any], *, return_old: bool = False) -> None:
        """A conditional put; a lost condition is :class:`ConcurrentUpdate` (with ``return_old``,
        carrying the stored item DynamoDB returns, in its wire shape)."""
        kwargs: dict[str, Any] = {"TableName": self._table, "Item": item, "ConditionExpression": condition}
        if values:
            kwargs["ExpressionAttributeValues"] = values
        if return_old:
            kwargs["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        try:
            self._client.put_item(**kwargs)
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                current = exc.response.get("Item") if return_old else None
                raise ConcurrentUpdate(f"{item['pk']['S'].split('#')[0]} item changed under us", current) from exc
            raise StoreError(f"writing the dedup table failed: {_code(exc)}") from exc
        except BotoCoreError as exc:
            raise StoreError(f"writing the dedup table failed: {type(exc).__name__}") from exc

    def _update_at_version(
        self,
        pk: str,
        version: int,
        expression: str,
        values: dict[str, Any],
        condition: str = "",
        names: dict[str, str] | None = None,
    ) -> bool:
        """Apply ``expression`` if the item is still at ``version``; False when it has moved on."""
        return self._update_if(
            pk,
            expression,
            "version = :v" + (f" AND {condition}" if condition else ""),
            {**values, ":v": {"N": str(version)}},
            names,
        )

    def mark_delivered(self, pk: str, version: int, *, trigger_sent_at: int | None = None, sent: bool = True) -> bool:
        """Record that the event applied at ``version`` reached PagerDuty (or, with ``sent`` false,
        was dealt with without a call); False if superseded. ``trigger_sent_at`` (µs) marks a
        trigger: the episode's incident is then open on PagerDuty."""
        expression = "SET delivered = :t, lease_until = :z"
        values: dict[str, Any] = {":t": {"BOOL": True}, ":z": {"N": "0"}}
        if sent:
            expression += ", sends = if_not_exists(sends, :z) + :one"
            values[":one"] = {"N": "1"}
        if trigger_sent_at is not None:
            expression += ", paged = :t, sent_at = :s"
            values[":s"] = {"N": str(trigger_sent_at)}
        return self._update_at_version(pk, version, expression + " REMOVE pending", values)

    def dead_lettered(self, pk: str, version: int) -> None:
        """The trigger applied at ``version`` went to the DLQ: end its lease and mark it, so the
        alert's resolve or acknowledge does not wait for it (a redrive sends it as a retry)."""
        self._update_at_version(
            pk,
            version,
            "SET lease_until = :z, #h = :d",
            {":z": {"N": "0"}, ":d": {"S": DEAD_LETTERED}},
            names={"#h": "hold"},
        )

    def release(self, pk: str, version: int, *, send_at: int = 0, resolve: bool = False) -> None:
        """End the lease taken for ``version`` after a send that did not happen or failed, so a retry
        need not wait for it. ``send_at`` (µs) is when the event is due to be tried again (what the
        alert's later events wait for); a ``resolve`` goes into the sweeper's index until delivered."""
        expression = "SET lease_until = :z, send_at = :s"
        values = {":z": {"N": "0"}, ":s": {"N": str(send_at)}}
        if resolve:
            expression += ", pending = :p"
            values[":p"] = {"S": "resolve"}
        self._update_at_version(pk, version, expression, values)

    def claim_resolve(self, record: Record, now: int, lease: int) -> int | None:
        """Take the lease on a pending resolve, as a dispatcher would before sending; the new
        version, or None when the item moved on (re-opened, delivered, or being sent)."""
        claimed = self._update_at_version(
            record.pk,
            record.version,
            "SET lease_until = :l, version = :nv",
            {
                ":l": {"N": str(now + lease)},
                ":nv": {"N": str(record.version + 1)},
                ":p": {"S": "resolve"},
                ":now": {"N": str(now)},
            },
            condition="pending = :p AND lease_until < :now",
        )
        return record.version + 1 if claimed else None

    def let_go(self, record: Record) -> bool:
        """A held alert whose window ended with ``send_held_at_end: false``: no longer held, not paged."""
        return self._update_at_version(
            record.pk,
            record.version,
            "SET #h = :e, #m = :e REMOVE pending",
            {":e": {"S": ""}},
            names={"#h": "hold", "#m": "message"},
        )

    def set_aside(self, pk: str, version: int) -> None:
        """Take a resolve PagerDuty refused out of the sweeper's index."""
        self._update_at_version(pk, version, "SET pending = :r", {":r": {"S": "rejected"}})

    def pending_resolves(self, older_than_seconds: int, limit: int = 100) -> list[Record]:
        """Resolves recorded but not confirmed delivered for at least ``older_than_seconds``."""
        return self._pending("resolve", int(self.clock.time()) - older_than_seconds, limit)

    def held(self, limit: int = 10000) -> list[Record]:
        """Alerts whose trigger a maintenance window holds (every page, up to ``limit``: those a
        long window still holds must not hide those whose window has ended)."""
        return self._pending("held", int(self.clock.time()) + 86400, limit)

    def route_key_hashes(self, route: str | None) -> list[str]:
        """The hashes of the routing keys ``route`` has sent triggers under, oldest first."""
        doc, _version = self.get_doc(route_keys_key(route))
        return [str(h) for h in doc.get("keys", [])]

    def remember_route_keys(self, route: str | None, hashes: set[str]) -> None:
        """Add ``hashes`` to the route's history (no write when it holds them all)."""

        def step() -> None:
            doc, version = self.get_doc(route_keys_key(route))
            known = [str(h) for h in doc.get("keys", [])]
            if hashes <= set(known):
                return
            kept = ([h for h in known if h not in hashes] + sorted(hashes))[-ROUTE_KEYS_KEPT:]
            self.put_doc(route_keys_key(route), {"keys": kept}, version, expires=False)

        read_modify_write(step, "the route's routing keys")

    def copies_of(self, dedup_key: str, hashes: list[str]) -> list[AlertCopy]:
        """The items of this alert under each of these routing-key hashes that exist."""
        copies = []
        for item in self._alert_items(dedup_key, hashes, "pk, routing_key, #r, destination", {"#r": "route"}):
            doc = {k: _DES.deserialize(v) for k, v in item.items()}
            copies.append(
                AlertCopy(
                    pk=str(doc["pk"]),
                    routing_key=str(doc.get("routing_key") or ""),
                    route=doc.get("route"),
                    destination=doc.get("destination"),
                )
            )
        return copies

    def alert_items(self, dedup_key: str, hashes: list[str]) -> list[Record]:
        """This alert's items, whole, under each of these routing-key hashes that exist (for
        operators: ``GET /v1/alerts/{dedup_key}`` and ``pdrelay trace``)."""
        return [_from_item(item) for item in self._alert_items(dedup_key, hashes)]

    def find_alert_items(self, dedup_key: str, limit: int = 100) -> list[Record]:
        """This alert's items under any routing key, by scanning the whole table: for operators
        only, when no route's history names the key it went to (a slow read on a large table)."""
        return self._scan("dedup_key = :d", {":d": {"S": dedup_key}}, {}, limit)

    def _alert_items(
        self, dedup_key: str, hashes: list[str], projection: str = "", names: dict[str, str] | None = None
    ) -> list[dict[str, Any]]:
        keys = [{"pk": {"S": f"{h}#{dedup_key}"}} for h in dict.fromkeys(hashes)]
        items: list[dict[str, Any]] = []  # in DynamoDB's wire shape
        for start in range(0, len(keys), 100):
            wanted: dict[str, Any] = {"Keys": keys[start : start + 100]}
            if projection:
                wanted["ProjectionExpression"] = projection
            if names:
                wanted["ExpressionAttributeNames"] = names
            request: dict[str, Any] = {self._table: wanted}
            for _attempt in range(5):  # unprocessed keys (throttling) are asked for again
                try:
                    answer = self._client.batch_get_item(RequestItems=request)
                except (ClientError, BotoCoreError) as exc:
                    raise StoreError(f"reading an alert's other items failed: {_code(exc)}") from exc
                items.extend(answer.get("Responses", {}).get(self._table, []))
                request = answer.get("UnprocessedKeys") or {}
                if not request:
                    break
            else:
                raise StoreError("reading an alert's other items failed: keys left unprocessed")
        return sorted(items, key=lambda item: str(item["pk"]["S"]))

    # -- reconcile: what the table says is open, and the marks reconcile leaves ----------------
    def open_alerts_and_route_keys(self, limit: int = 100000) -> tuple[list[Record], set[str]]:
        """The alerts open as far as pdrelay knows and the routing-key hashes every route's history
        holds (also of routes since removed), in one scan (``pdrelay reconcile``, not the hot path)."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": "(#s IN (:a, :b) AND attribute_exists(dedup_key)) OR begins_with(pk, :rk)",
            "ExpressionAttributeValues": {
                ":a": {"S": OPEN_STATES[0]},
                ":b": {"S": OPEN_STATES[1]},
                ":rk": {"S": ROUTE_KEYS_PREFIX + "#"},
            },
            "ExpressionAttributeNames": {"#s": "state"},
        }
        records: list[Record] = []
        hashes: set[str] = set()
        try:
            while len(records) < limit:
                answer = self._client.scan(**kwargs)
                for item in answer.get("Items", []):
                    if "dedup_key" in item:
                        records.append(_from_item(item))
                    else:
                        doc = json.loads(str(_DES.deserialize(item.get("doc", {"S": "{}"})) or "{}"))
                        hashes.update(str(h) for h in doc.get("keys", []))
                if "LastEvaluatedKey" not in answer:
                    break
                kwargs["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(f"scanning the dedup table failed: {_code(exc)}") from exc
        return records[:limit], hashes

    def records(self, pks: list[str]) -> dict[str, Record]:
        """The alert items with these keys that exist (strongly consistent BatchGetItem)."""
        found: dict[str, Record] = {}
        keys = [{"pk": {"S": pk}} for pk in dict.fromkeys(pks)]
        for start in range(0, len(keys), 100):
            request: dict[str, Any] = {self._table: {"Keys": keys[start : start + 100], "ConsistentRead": True}}
            for _attempt in range(5):  # unprocessed keys (throttling) are asked for again
                try:
                    answer = self._client.batch_get_item(RequestItems=request)
                except (ClientError, BotoCoreError) as exc:
                    raise StoreError(f"reading alert items failed: {_code(exc)}") from exc
                for item in answer.get("Responses", {}).get(self._table, []):
                    if "dedup_key" in item:
                        record = _from_item(item)
                        found[record.pk] = record
                request = answer.get("UnprocessedKeys") or {}
                if not request:
                    break
            else:
                raise StoreError("reading alert items failed: keys left unprocessed")
        return found

    def mark_resolved_at_pagerduty(self, record: Record, at: int) -> bool:
        """Reconcile found the alert's incident resolved at PagerDuty while it is open here: its next
        trigger opens a new incident (:mod:`pdrelay.delivery.decisions`). Only if the item is still
        as read (``version``); False when it moved on."""
        return self._update_at_version(
            record.pk,
            record.version,
            "SET pd_resolved_at = :t, version = :nv",
            {":t": {"N": str(at)}, ":nv": {"N": str(record.version + 1)}},
        )

    def claim_reconcile_resolve(self, record: Record, now: int, lease: int) -> int | None:
        """Take a resolved alert whose incident PagerDuty still shows open, to send its resolve again:
        marked undelivered and pending (so the sweeper re-sends it should this send fail or the
        sender die) under a lease; the new version, or None when the item moved on."""
        claimed = self._update_at_version(
            record.pk,
            record.version,
            "SET delivered = :f, pending = :p, lease_until = :l, version = :nv",
            {
                ":f": {"BOOL": False},
                ":t": {"BOOL": True},
                ":p": {"S": "resolve"},
                ":l": {"N": str(now + lease)},
                ":nv": {"N": str(record.version + 1)},
                ":r": {"S": "resolved"},
                ":now": {"N": str(now)},
            },
            condition="#s = :r AND delivered = :t AND lease_until < :now",
            names={"#s": "state"},
        )
        return record.version + 1 if claimed else None

    def _pending(self, kind: str, until: int, limit: int) -> list[Record]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": PENDING_INDEX,
            "Limit": min(limit, PENDING_PAGE),
            "KeyConditionExpression": "pending = :p AND updated_at <= :t",
            "ExpressionAttributeValues": {":p": {"S": kind}, ":t": {"N": str(until)}},
        }
        records: list[Record] = []
        try:
            while len(records) < limit:
                answer = self._client.query(**kwargs)
                records.extend(_from_item(i) for i in answer.get("Items", []))
                if "LastEvaluatedKey" not in answer:
                    break
                kwargs["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(f"querying the pending index failed: {_code(exc)}") from exc
        return records[:limit]

    # -- a caller's rate limit: one conditional update per request, no read -----------------------
    def take_caller_slot(
        self, key: str, now: float, interval: float, tolerance: float, *, busy_first: bool = False
    ) -> tuple[float, float]:
        """Take one request from the GCRA of ``key`` (its theoretical arrival time ``tat``):
        (0, tat after) when taken, else (seconds until one is free, tat). One conditional
        UpdateItem, no read: an idle key (``tat`` in the past) restarts at ``now + interval``, a
        busy one moves ``tat`` on by ``interval`` while it stays within ``tolerance`` of now. The
        caller says which case it expects (``busy_first``: the last tat it saw is ahead of now); a
        wrong guess costs a second update."""
        pk = pace_key(key)
        tat = 0.0
        for busy in (busy_first, not busy_first):
            if busy:
                expression, condition = "SET tat = tat + :t", "tat > :now AND tat <= :latest"
                values = {":t": interval, ":now": now, ":latest": now + tolerance}
            else:
                expression, condition = "SET tat = :next", "attribute_not_exists(tat) OR tat <= :now"
                values = {":next": now + interval, ":now": now}
            expiry = int(self.clock.time()) + CONTROL_TTL_SECONDS
            try:
                answer = self._client.update_item(
                    TableName=self._table,
                    Key={"pk": {"S": pk}},
                    UpdateExpression=expression + ", expires_at = :exp",
                    ConditionExpression=condition,
                    ExpressionAttributeValues={
                        **{k: {"N": repr(round(v, 6))} for k, v in values.items()},
                        ":exp": {"N": str(expiry)},
                    },
                    ReturnValues="UPDATED_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except ClientError as exc:
                if _code(exc) != "ConditionalCheckFailedException":
                    raise StoreError(f"updating the dedup table failed: {_code(exc)}") from exc
                stored: dict[str, Any] = dict(exc.response.get("Item") or {})  # type: ignore[call-overload]
                tat = float(stored.get("tat", {}).get("N", 0))
                if tat > now + tolerance:  # over the limit: no update can take a slot now
                    return tat - tolerance - now, tat
                continue  # the other case applies
            except BotoCoreError as exc:
                raise StoreError(f"updating the dedup table failed: {type(exc).__name__}") from exc
            return 0.0, float(answer["Attributes"]["tat"]["N"])
        return 0.0, tat  # moved between the two updates (the caller's other requests): let this one through

    # -- heartbeats: ingest moves last_contact forward, the sweep changes the state -------------
    def get_heartbeat(self, route: str) -> HeartbeatItem | None:
        doc = self._get_control(heartbeat_key(route))
        return _heartbeat_from(doc) if doc else None

    def touch_heartbeat(self, route: str, at: float, last_sent: dict[str, str]) -> bool:
        """Contact at ``at`` (epoch seconds): one UpdateItem, only ever moving the time forward
        (False when a later contact is recorded already)."""
        return self._update_if(
            heartbeat_key(route),
            "SET last_contact = :t, last_sent = :s",
            "attribute_not_exists(last_contact) OR last_contact < :t",
            {":t": {"N": repr(round(at, 3))}, ":s": {"S": json.dumps(last_sent, separators=(",", ":"))}},
        )

    def start_heartbeat(self, route: str, at: float) -> bool:
        """The sweep's first sighting of the route's heartbeat (kept: silence counts from it)."""
        return self._update_if(
            heartbeat_key(route),
            "SET first_seen = :t",
            "attribute_not_exists(first_seen)",
            {":t": {"N": repr(round(at, 3))}},
        )

    def set_heartbeat_state(self, route: str, version: int, state: str, silent_since: float | None) -> int | None:
        """Change the heartbeat's state if it is still at ``version``; the new version, or None."""
        values: dict[str, Any] = {":s": {"S": state}, ":nv": {"N": str(version + 1)}}
        expression = "SET #st = :s, version = :nv"
        if silent_since is None:
            expression += " REMOVE silent_since"
        else:
            expression += ", silent_since = :since"
            values[":since"] = {"N": repr(round(silent_since, 3))}
        if version:
            condition = "version = :v"
            values[":v"] = {"N": str(version)}
        else:
            condition = "attribute_not_exists(version)"
        done = self._update_if(heartbeat_key(route), expression, condition, values, names={"#st": "state"})
        return version + 1 if done else None

    def heartbeats(self, limit: int = 1000) -> list[HeartbeatItem]:
        """Every heartbeat item, in one scan (for operators' status, not the hot path)."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": "begins_with(pk, :h)",
            "ExpressionAttributeValues": {":h": {"S": HEARTBEAT_PREFIX + "#"}},
        }
        found: list[HeartbeatItem] = []
        try:
            while len(found) < limit:
                answer = self._client.scan(**kwargs)
                found.extend(_heartbeat_from({k: _DES.deserialize(v) for k, v in i.items()}) for i in answer["Items"])
                if "LastEvaluatedKey" not in answer:
                    break
                kwargs["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(f"scanning the dedup table failed: {_code(exc)}") from exc
        return sorted(found[:limit], key=lambda h: h.route)

    def _update_if(
        self, pk: str, expression: str, condition: str, values: dict[str, Any], names: dict[str, str] | None = None
    ) -> bool:
        """One conditional UpdateItem; False when the condition does not hold."""
        kwargs: dict[str, Any] = {"ExpressionAttributeNames": names} if names else {}
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": pk}},
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
                **kwargs,
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return False
            raise StoreError(f"updating the dedup table failed: {_code(exc)}") from exc
        except BotoCoreError as exc:
            raise StoreError(f"updating the dedup table failed: {type(exc).__name__}") from exc
        return True

    # -- control items ----------------------------------------------------------------------
    def _get_control(self, pk: str, *, consistent: bool = True) -> dict[str, Any] | None:
        try:
            answer = self._client.get_item(TableName=self._table, Key={"pk": {"S": pk}}, ConsistentRead=consistent)
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(f"reading the dedup table failed: {_code(exc)}") from exc
        item = answer.get("Item")
        return {k: _DES.deserialize(v) for k, v in item.items()} if item else None

    def _put_control(self, pk: str, values: dict[str, Any], previous_version: int, expires: bool = True) -> None:
        item = {k: _SER.serialize(v) for k, v in values.items()}
        item["pk"] = {"S": pk}
        if expires:
            item["expires_at"] = {"N": str(int(self.clock.time()) + CONTROL_TTL_SECONDS)}
        self._put(item, "attribute_not_exists(pk) OR version = :v", {":v": {"N": str(previous_version)}})

    def get_doc(self, pk: str, *, consistent: bool = True) -> tuple[dict[str, Any], int]:
        """A control document (JSON-shaped) and its version (0: none yet)."""
        doc = self._get_control(pk, consistent=consistent)
        if doc is None:
            return {}, 0
        return json.loads(str(doc.get("doc") or "{}")), int(doc.get("version", 0))

    def put_doc(self, pk: str, doc: dict[str, Any], previous_version: int, *, expires: bool = True) -> int:
        """Write a control document if it is still at ``previous_version``; the new version.
        Raises :class:`ConcurrentUpdate` when another writer got there first."""
        self._put_control(
            pk,
            {"doc": json.dumps(doc, separators=(",", ":"), default=str), "version": previous_version + 1},
            previous_version,
            expires,
        )
        return previous_version + 1

    def get_schedule(self, routing_key: str) -> Schedule | None:
        doc = self._get_control(pace_key(routing_key))
        if doc is None or "next_at" not in doc:
            return None
        return Schedule(
            next_at=float(doc["next_at"]),
            priority_at=float(doc.get("priority_at", 0)),
            shift=float(doc.get("shift", 0)),
            locked_until=float(doc.get("locked_until", 0)),
            inserts=tuple((float(a), float(b)) for a, b in json.loads(str(doc.get("inserts") or "[]"))),
            paused_until=float(doc.get("paused_until", 0)),
            throttles=int(doc.get("throttles", 0)),
            version=int(doc["version"]),
        )

    def put_schedule(self, routing_key: str, schedule: Schedule, previous_version: int) -> None:
        self._put_control(
            pace_key(routing_key),
            {
                "next_at": _decimal(schedule.next_at),
                "priority_at": _decimal(schedule.priority_at),
                "shift": _decimal(schedule.shift),
                "locked_until": _decimal(schedule.locked_until),
                "inserts": json.dumps([[round(a, 6), round(b, 6)] for a, b in schedule.inserts]),
                "paused_until": _decimal(schedule.paused_until),
                "throttles": schedule.throttles,
                "version": schedule.version,
            },
            previous_version,
        )

    def get_breaker(self) -> Breaker | None:
        doc = self._get_control(BREAKER_KEY)
        if doc is None:
            return None
        return Breaker(
            failures=int(doc["failures"]),
            open_until=float(doc["open_until"]),
            cooldown=float(doc["cooldown"]),
            probe_until=float(doc["probe_until"]),
            version=int(doc["version"]),
        )

    def put_breaker(self, breaker: Breaker, previous_version: int) -> None:
        self._put_control(
            BREAKER_KEY,
            {
                "failures": breaker.failures,
                "open_until": _decimal(breaker.open_until),
                "cooldown": _decimal(breaker.cooldown),
                "probe_until": _decimal(breaker.probe_until),
                "version": breaker.version,
            },
            previous_version,
        )

    def open_or_recent(self, since_epoch: int, limit: int = 5000) -> list[Record]:
        """Alerts open on PagerDuty as far as pdrelay knows, or changed since ``since_epoch``, in one
        scan (for operators' status, not the hot path)."""
        return self._scan(
            "#s IN (:a, :b) OR updated_at >= :t",
            {":a": {"S": OPEN_STATES[0]}, ":b": {"S": OPEN_STATES[1]}, ":t": {"N": str(since_epoch)}},
            {"#s": "state"},
            limit,
        )

    def _scan(self, condition: str, values: dict[str, Any], names: dict[str, str], limit: int) -> list[Record]:
        records: list[Record] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": f"({condition}) AND attribute_exists(dedup_key)",
            "ExpressionAttributeValues": values,
        }
        if names:
            kwargs["ExpressionAttributeNames"] = names
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


def _decimal(value: float) -> Any:
    from decimal import Decimal

    return Decimal(str(round(value, 6)))


def _code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "Unknown"))
    return type(exc).__name__
