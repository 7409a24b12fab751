"""Dispatch: one queue message → one decision in the dedup table → at most one Events API call.

:mod:`pdrelay.handlers.dispatch` runs :meth:`Dispatcher.process` for each SQS record of a batch and
reports the records that raised as the batch's failures. Outcomes:

- ``delivered``: PagerDuty answered 2xx; the item is marked delivered.
- ``skipped``: nothing to send (stale, duplicate, unchanged, unknown): no call.
- ``deferred``: not sent now, without spending a delivery attempt: the key's schedule gave it a
  later slot or is paused after a 429, the circuit breaker is open, another dispatcher is sending
  for the same alert, or (a resolve or acknowledge) its trigger has not reached PagerDuty yet. The
  message is put back on the queue once, for the moment it is due (up to SQS's 15 minutes), and
  this copy completes.
- ``dead-lettered``: PagerDuty answered 400, the message is unreadable, or it was held longer than
  ``PDRELAY_MAX_HOLD_SECONDS``: sent to the DLQ with the reason, never retried by itself.
- a raised :class:`~pdrelay.errors.RetryableDelivery` (5xx, timeout, connection error): a batch
  item failure; the message's visibility timeout is set to the back-off, SQS redelivers it, and
  after ``maxReceiveCount`` deliveries moves it to the DLQ.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from pdrelay.config import RelayConfig, Route, config_reader
from pdrelay.delivery import pacing
from pdrelay.delivery.decisions import Decision, Event, Record, Unpaged, decide
from pdrelay.delivery.events_api import EventsClient, build_event, change_event, payload_snapshot
from pdrelay.errors import ConcurrentUpdate, PermanentDelivery, RetryableDelivery, StoreError
from pdrelay.models import SUMMARY_LIMIT, ChangeEvent, ChangeMessage, QueueMessage, parse_message, truncate
from pdrelay.observability import (
    ALERTS_HELD,
    CHANGES_SENT,
    DELIVERY_FAILED,
    DELIVERY_LATENCY,
    EVENTS_DEFERRED,
    EVENTS_SENT,
    EVENTS_SKIPPED,
    RESOLVED_BEFORE_PAGED,
    count,
    logger,
    measure,
)
from pdrelay.policy.judge import Policy, Verdict, rollup_event
from pdrelay.settings import Settings
from pdrelay.table import DedupStore, item_key, key_hash, read_modify_write
from pdrelay.timeutil import SYSTEM_CLOCK, Clock, to_micros

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

WRITE_ATTEMPTS = 3
MAX_SQS_DELAY = 900
BREAKER_CACHE_SECONDS = 1.0
START_WITHIN_SECONDS = 4.0  # the lease allows the client's timeouts plus a margin
UNEXPECTED_ERROR_RECEIVES = 5
IN_FLIGHT_RECHECK_SECONDS = 3
KNOWN_ITEMS = 10_000  # alert items a process remembers it saw (a trigger for another is tried as new)
SLOT_ATTRIBUTE = "slot"  # message attribute: "<at> <shift> <firm>", the send time the schedule gave
FIRST_APPLIED = ("resolve", "forward", "acknowledge", "unpaged")  # decisions that end or ack an episode


def content_hash(message: QueueMessage) -> str:
    """What makes a repeat notification different (times excluded: they move on every repeat)."""
    a = message.alert
    doc = a.model_dump(
        mode="json",
        by_alias=True,
        exclude={"occurred_at", "timestamp", "identity", "format", "action", "client_url", "test"},
    )
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:32]


def to_event(message: QueueMessage, *, unpaged: Unpaged = "page", targets: str = "") -> Event:
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
        routing_key=message.routing_key,
        received=to_micros(message.received_at),
        own_time=message.alert.occurred_at != message.received_at,
        destination=message.destination,
        unpaged=unpaged,
        targets=targets,
    )


def slot_of(delivery: Delivery) -> pacing.Slot | None:
    """The send time a message was put back for, if the schedule gave it one."""
    raw = delivery.attributes.get(SLOT_ATTRIBUTE, {}).get("StringValue", "")
    try:
        at, shift, firm = raw.split()
        return pacing.Slot(float(at), float(shift), firm == "1")
    except ValueError:
        return None


Result = Literal[
    "delivered",  # PagerDuty answered 2xx
    "skipped",  # nothing to send (stale, duplicate, unchanged, unknown, rolled-up member, never paged)
    "deferred",  # put back on the queue for later without spending a delivery attempt
    "dead-lettered",  # in the DLQ with the reason (PagerDuty's 400, unreadable, held too long)
    "held",  # kept back by a maintenance window; the sweep releases it when the window ends
    "suppressed",  # an update within the route's min_resend_seconds: counted, not sent
    "rolled-up",  # joined a storm's roll-up incident instead of opening its own
    "rejected",  # a test probe PagerDuty refused: the answer is the result, nothing to keep
]


@dataclass(frozen=True)
class Outcome:
    result: Result
    reason: str
    action: str | None = None
    status: int | None = None
    delay: int = 0


@dataclass(frozen=True)
class Delivery:
    """One SQS record as the dispatcher sees it."""

    body: str
    receipt_handle: str = ""
    receive_count: int = 1
    attributes: dict[str, Any] = field(default_factory=dict)  # SendMessage's shape

    def attr(self, name: str, default: int = 0) -> int:
        try:
            return int(self.attributes.get(name, {}).get("StringValue", default))
        except ValueError:
            return default

    @property
    def attempts(self) -> int:
        """Delivery attempts so far, across the times this alert was put back on the queue."""
        return self.attr("attempts") + self.receive_count


class Decided(NamedTuple):
    verdict: Verdict | None
    decision: Decision
    current: Record | None  # the item the decision was made on
    gate: Gate
    route: Route | None  # the message's route in the configuration read for it


@dataclass(frozen=True)
class Gate:
    """Whether an event may go to PagerDuty now: ``reason`` "send", or why not and for how long."""

    reason: str
    wait: float = 0.0  # open: a fraction of a second to wait before sending; else: until it is due
    slot: pacing.Slot | None = None  # the send time the schedule handed out, carried by the message

    @property
    def open(self) -> bool:
        return self.reason == "send"


SEND = Gate("send")


@dataclass(frozen=True)
class Answer:
    """What came of one Events API call, as far as pacing and the breaker are concerned."""

    kind: Literal["delivered", "refused", "throttled", "failed"]
    status: int | None = None
    error: str = ""
    wait: float = 0.0  # throttled: the key's pause; failed: until the open breaker's next probe (0: closed)
    ms: int = 0  # how long the call took

    def logged(self) -> dict[str, Any]:
        """What a log line says of the call: PagerDuty's status (none: no answer), error and time."""
        return {"status": self.status, **({"error": self.error} if self.error else {}), "call_ms": self.ms}


@dataclass
class Dispatcher:
    settings: Settings
    store: DedupStore
    events: EventsClient
    sqs: SQSClient
    clock: Clock = SYSTEM_CLOCK  # every reading of "now" in dispatch; see ``use_clock``
    config: Callable[[], RelayConfig | None] | None = None  # routes' storm control, windows and limits
    _breaker_cache: tuple[float, pacing.Breaker | None] = (0.0, None)
    _answering: bool = False  # PagerDuty answered this process's last call (no need to read the breaker)
    _policy: Policy | None = None
    _allowance: pacing.Allowance = field(default_factory=pacing.Allowance)
    _noted_routes: dict[str, str] = field(default_factory=dict)  # route -> targets fingerprint in its history
    _known: OrderedDict[str, None] = field(default_factory=OrderedDict)  # alert items this process saw

    @property
    def policy(self) -> Policy:
        if self._policy is None:
            self._policy = Policy(
                self.store,
                self.config or (lambda: None),
                lambda: self.clock.time(),
                self.settings.windows_max_age_seconds,
            )
        return self._policy

    def use_clock(self, clock: Clock) -> None:
        """Read "now" from ``clock`` here, in the table store and in the Events API client (tests
        move such a clock instead of waiting or pinning dates)."""
        self.clock = clock
        self.store.clock = clock
        self.events.clock = clock

    @property
    def start_guard_ms(self) -> int:
        """Remaining invocation time below which no new record is started (a send's worst case)."""
        return int((self.settings.connect_timeout_seconds + self.settings.read_timeout_seconds + 10) * 1000)

    def schedule_policy(self, routing_key: str) -> pacing.SchedulePolicy:
        """The key's limit: the configuration's ``events_per_minute`` for it, else the settings'."""
        s = self.settings
        config = self.current_config()
        per_minute = config.events_per_minute(routing_key) if config is not None else None
        limit, window = (per_minute, 60.0) if per_minute else (s.rate_limit, s.rate_window_seconds)
        return pacing.SchedulePolicy(
            limit, window, s.throttle_pause_seconds, s.throttle_max_pause_seconds, s.dispatch_concurrency
        )

    @property
    def breaker_policy(self) -> pacing.BreakerPolicy:
        s = self.settings
        return pacing.BreakerPolicy(
            s.breaker_threshold,
            s.breaker_cooldown_seconds,
            s.breaker_max_cooldown_seconds,
            probe_seconds=s.connect_timeout_seconds + s.read_timeout_seconds + 5,
        )

    def current_config(self) -> RelayConfig | None:
        return self.config() if self.config is not None else None

    # -- entry point ----------------------------------------------------------------------------
    def process(
        self,
        body: str,
        *,
        receipt_handle: str = "",
        receive_count: int = 1,
        message_attributes: dict[str, Any] | None = None,
        message_id: str = "",
    ) -> Outcome:
        delivery = Delivery(body, receipt_handle, receive_count, dict(message_attributes or {}))
        try:
            message = parse_message(body)
        except (ValueError, ValidationError) as exc:
            reason = f"unreadable queue message: {type(exc).__name__}"
            self._dead_letter(delivery, reason, None)
            return Outcome("dead-lettered", reason)
        logger.append_keys(
            request_id=message.request_id,
            route=message.route,
            destination=message.destination,
            dedup_key=message.dedup_key if isinstance(message, QueueMessage) else None,
            message_id=message_id,
            receive_count=receive_count,
            redriven=delivery.attr("redriven") or None,  # moved back from the DLQ (how many times)
        )
        try:
            if isinstance(message, ChangeMessage):
                return self._change(message, delivery)
            return self._alert(message, delivery)
        except (RetryableDelivery, StoreError):
            raise
        except Exception as exc:
            # Not a failure of PagerDuty or AWS: retrying is unlikely to help. Give it a few
            # receives, then put it aside with the reason rather than let SQS drop it there mute.
            if receive_count < UNEXPECTED_ERROR_RECEIVES:
                raise
            reason = f"unexpected error after {receive_count} attempts: {type(exc).__name__}"
            logger.exception("putting a message aside after repeated unexpected errors")
            self._dead_letter(delivery, reason, None)
            return Outcome("dead-lettered", reason)
        finally:
            logger.remove_keys(
                ["request_id", "dedup_key", "route", "destination", "message_id", "receive_count", "redriven"]
            )

    # -- one alert event --------------------------------------------------------------------------
    def _decide(self, message: QueueMessage, delivery: Delivery, route: Route | None) -> Decided:
        """Read the item (or, for a trigger this process has not seen, try to create it without a
        read), decide, ask the policy, ask the schedule when it sends, and write the result on
        condition of the version read. A lost race decides again on the item the write returned."""
        event = to_event(
            message,
            unpaged=route.resolved_before_paged if route is not None else "page",
            targets=route.targets_fingerprint() if route is not None else "",
        )
        moment = self.clock.now()
        now = to_micros(moment)
        lease = int(self.settings.lease_seconds * 1_000_000)
        # A trigger for an alert this process has not seen is usually new: write first, read only
        # if the item exists (the failed write returns it).
        guess = event.action == "trigger" and event.pk not in self._known
        state: dict[str, Any] = {"current": None, "read": not guess, "gate": None}

        def step() -> Decided:
            current: Record | None = state["current"]
            if state["read"]:
                current = self.store.get(event.pk)
            state["read"] = True
            decision = decide(current, event, now, lease)
            verdict = None
            if decision.send is not None and decision.record is not None:
                verdict = self.policy.judge(current, decision, message, moment, delivery.body)
                decision = verdict.decision
            gate = SEND
            if (
                (verdict is None or verdict.kind == "send")
                and decision.send is not None
                and decision.record is not None
            ):
                if state["gate"] is None:  # asked once: a lost race does not take a second slot
                    state["gate"] = self._admit(message.routing_key, str(decision.send), delivery)
                gate = state["gate"]
                if not gate.open:
                    # Not now: recorded without a lease, with when it is due (later events wait for
                    # it); nothing to write when the item already says so.
                    due = now + int(gate.wait * 1_000_000)
                    waiting = replace(decision.record, lease_until=0, send_at=due)
                    decision = replace(decision, record=waiting, write=decision.reason != "retry")
            if decision.write and decision.record is not None:
                try:
                    self.store.write(decision.record, current.version if current else None)
                except ConcurrentUpdate as exc:
                    state["current"], state["read"] = exc.current, False
                    raise
                self._remember(event.pk)
            elif current is not None:
                self._remember(event.pk)
            return Decided(verdict, decision, current, gate, route)

        try:
            return read_modify_write(step, "the alert's item", attempts=WRITE_ATTEMPTS)
        except ConcurrentUpdate as exc:
            raise StoreError(str(exc)) from exc

    def _remember(self, pk: str) -> None:
        self._known[pk] = None
        self._known.move_to_end(pk)
        while len(self._known) > KNOWN_ITEMS:
            self._known.popitem(last=False)

    def _route(self, message: QueueMessage) -> Route | None:
        config = self.current_config()
        return config.routes.get(message.route or "") if config is not None else None

    def _note_route_keys(self, message: QueueMessage, route: Route | None) -> None:
        """Before a trigger can page: the route's history holds the routing keys it pages with, so a
        later resolve finds this incident even after the key is rotated or the destination removed
        (once per process and set of keys: a read, and a write only when the set is new)."""
        if route is None or message.alert.action != "trigger":
            return
        fingerprint = route.targets_fingerprint()
        if self._noted_routes.get(message.route or "") != fingerprint:
            self.store.remember_route_keys(message.route, {key_hash(k) for k in route.targets.values()})
            self._noted_routes[message.route or ""] = fingerprint

    def _alert(self, message: QueueMessage, delivery: Delivery) -> Outcome:
        route = self._route(message)  # one configuration read for the whole decision
        self._note_route_keys(message, route)
        decided_at = self.clock.monotonic()  # the lease starts about now
        verdict, decision, current, gate, route = self._decide(message, delivery, route)
        if decision.reason in FIRST_APPLIED:
            self._reach_orphans(message, current, route)
        if verdict is not None and verdict.kind != "send":
            return self._by_policy(message, delivery, verdict)
        if decision.reason in ("in-flight", "after-trigger"):
            # The holder usually finishes within a second or two (a dead holder's lease is checked
            # again until it expires). A resolve or acknowledge whose trigger waits comes back when
            # the trigger is due and goes right after it. Deferrals spend no delivery attempt.
            wait = float(IN_FLIGHT_RECHECK_SECONDS)
            if current is not None and current.send_at:
                wait = max(wait, (current.send_at - to_micros(self.clock.now())) / 1_000_000 + 1)
            return self._defer(message, delivery, decision.reason, wait)
        if decision.reason == "unpaged":
            return self._unpaged(message, decision)
        if decision.send is None or decision.record is None:
            count(EVENTS_SKIPPED, Reason=decision.reason)
            logger.info("skipped", extra={"reason": decision.reason, "action": message.alert.action})
            return Outcome("skipped", decision.reason)
        record = decision.record
        if not gate.open:
            outcome = self._defer(message, delivery, gate.reason, gate.wait, slot=gate.slot)
            if outcome.result == "dead-lettered":
                self._send_ended(decision, given_up=True)
            return outcome
        if self.clock.monotonic() - decided_at > START_WITHIN_SECONDS:
            # Slow table or schedule calls ate into the lease: do not start a send that could
            # outlast it (another dispatcher could then send a newer event first).
            self._send_ended(decision)
            return self._defer(message, delivery, "in-flight", 1)
        self.clock.sleep(gate.wait)  # a slot due in a fraction of a second
        try:
            answer = self._call(message.routing_key, build_event(message, decision.send, self._stored(current)))
        except Exception:
            self._send_ended(decision)  # whatever it was, the send is over
            raise
        self._probed(message, decision.send, answer.status, answer.error or None)
        count(EVENTS_SENT, Action=decision.send, Status=str(answer.status or "network"))
        if answer.kind == "delivered":
            self.store.mark_delivered(
                record.pk,
                record.version,
                trigger_sent_at=to_micros(self.clock.now()) if decision.send == "trigger" else None,
            )
            if record.before_paged == "page":
                count(RESOLVED_BEFORE_PAGED, Outcome="page")
            latency_ms = (self.clock.now() - message.received_at).total_seconds() * 1000
            measure(DELIVERY_LATENCY, latency_ms)
            logger.info(
                "delivered",
                extra={
                    "action": decision.send,
                    "reason": decision.reason,
                    "status": answer.status,
                    "call_ms": answer.ms,
                    "latency_ms": round(latency_ms),
                },
            )
            return Outcome("delivered", decision.reason, decision.send, answer.status)
        if answer.kind == "refused":
            self._send_ended(decision, given_up=True)  # it will never be sent as it is
            if message.probe:
                # A test that PagerDuty refused: the answer is the result; nothing to keep in the DLQ.
                return Outcome("rejected", answer.error, decision.send, answer.status)
            count(DELIVERY_FAILED, Kind="permanent")
            self._dead_letter(delivery, answer.error, answer.status, answer, action=decision.send)
            return Outcome("dead-lettered", answer.error, decision.send, answer.status)
        if answer.kind == "throttled":
            self._send_ended(decision, due=answer.wait)
            outcome = self._defer(message, delivery, "throttled", answer.wait, attempted=answer)
            if outcome.result == "dead-lettered":
                self._send_ended(decision, given_up=True)
            return outcome
        count(DELIVERY_FAILED, Kind="retryable")
        if answer.wait > 0:
            # PagerDuty is down for everyone: wait for the breaker's next probe like the others (an
            # attempt spent), not for this message's own back-off, which grows with each failed probe.
            self._send_ended(decision, due=answer.wait)
            outcome = self._defer(message, delivery, "circuit-open", answer.wait, attempted=answer)
            if outcome.result == "dead-lettered":
                self._send_ended(decision, given_up=True)
            return outcome
        if self._held_too_long(message, delivery):
            reason = f"not delivered within {self.settings.max_hold_seconds} s of receipt; last error: {answer.error}"
            self._dead_letter(delivery, reason, answer.status, answer, action=decision.send)
            self._send_ended(decision, given_up=True)
            return Outcome("dead-lettered", reason, decision.send, answer.status)
        delay = self.backoff_seconds(delivery.receive_count)
        self._send_ended(decision, due=delay)
        self._delay(delivery.receipt_handle, delay)
        logger.warning(
            "delivery failed, will retry",
            extra={"action": decision.send, **answer.logged(), "attempt": delivery.attempts, "retry_in_s": delay},
        )
        raise RetryableDelivery(answer.error, answer.status)

    @staticmethod
    def _stored(current: Record | None) -> dict[str, Any] | None:
        return current.payload if current is not None else None

    def _unpaged(self, message: QueueMessage, decision: Decision) -> Outcome:
        """An episode that resolved before its trigger reached PagerDuty, on a route that records
        (one change event: no one is notified) or drops such episodes."""
        record = decision.record
        assert record is not None
        mode = record.before_paged
        count(RESOLVED_BEFORE_PAGED, Outcome=mode)
        if mode == "record":
            fired = datetime.fromtimestamp(record.started_at / 1_000_000, tz=UTC).isoformat(timespec="seconds")
            summary = (record.payload or {}).get("summary") or message.alert.summary or message.dedup_key
            change = ChangeMessage(
                route=message.route,
                destination=message.destination,
                routing_key=message.routing_key,
                received_at=message.received_at,
                request_id=message.request_id,
                change=ChangeEvent(
                    summary=truncate(f"Resolved before paging: {summary}", SUMMARY_LIMIT),
                    source=(record.payload or {}).get("source") or "pdrelay",
                    timestamp=message.received_at,
                    custom_details={
                        "pdrelay_note": (
                            "This alert fired and resolved while its delivery to PagerDuty was held "
                            "(paced, PagerDuty unavailable, or retrying); the route's "
                            "resolved_before_paged is 'record', so no incident was opened."
                        ),
                        "dedup_key": message.dedup_key,
                        "fired_at": fired,
                        "resolved_at": message.alert.occurred_at.isoformat(timespec="seconds"),
                        "route": message.route,
                    },
                ),
            )
            self._queue(change.to_json(), "the change event of an episode resolved before paging")
        logger.info("resolved before its trigger reached PagerDuty: no incident", extra={"outcome": mode})
        return Outcome("skipped", f"unpaged: {mode}")

    def _reach_orphans(self, message: QueueMessage, current: Record | None, route: Route | None) -> None:
        """A resolve or acknowledge also goes to the incidents this alert opened under routing keys
        its route no longer has (a destination removed, a key rotated): PagerDuty only closes an
        incident for the key it was opened with. Each gets a copy of the message, sent like any.
        Only looked up when the route's keys changed since the trigger (or the item is unknown)."""
        if message.alert.action == "trigger" or route is None:
            return
        current_keys = set(route.targets.values())
        if message.routing_key not in current_keys:
            return  # itself such a copy, or sent to one routing key by name: nothing else to reach
        if current is not None and current.targets == route.targets_fingerprint():
            return  # the same keys as when it fired: every incident it opened gets this event
        current_hashes = {key_hash(k) for k in current_keys}
        others = [h for h in self.store.route_key_hashes(message.route) if h not in current_hashes]
        for copy in self.store.copies_of(message.dedup_key, others) if others else ():
            if copy.route != message.route or copy.routing_key in current_keys:
                continue
            body = message.model_copy(update={"routing_key": copy.routing_key, "destination": copy.destination})
            self._queue(body.to_json(), "the event for a removed destination")
            logger.info(
                "sent on to an incident opened under a routing key the route no longer has",
                extra={"action": message.alert.action, "destination": copy.destination},
            )

    def _queue(self, body: str, what: str) -> None:
        try:
            self.sqs.send_message(QueueUrl=self.settings.queue_url, MessageBody=body)
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(f"could not queue {what}: {type(exc).__name__}") from exc

    def _send_ended(self, decision: Decision, *, given_up: bool = False, due: float = 0.0) -> None:
        """End the lease a sending decision took. A trigger given up on (refused by PagerDuty, or
        put in the DLQ) is marked so that the alert's later events stop waiting for it; one to be
        tried again records when (``due`` seconds from now), and a resolve enters the sweeper's index."""
        record = decision.record
        assert record is not None
        if given_up and decision.send == "trigger":
            self.store.dead_lettered(record.pk, record.version)
            return
        send_at = to_micros(self.clock.now()) + int(due * 1_000_000) if due else 0
        self.store.release(record.pk, record.version, send_at=send_at, resolve=decision.send == "resolve")

    # -- alert policy: windows, storm control, roll-ups ---------------------------------------------
    def _by_policy(self, message: QueueMessage, delivery: Delivery, verdict: Verdict) -> Outcome:
        record = verdict.decision.record
        assert record is not None
        kind = verdict.kind
        if kind == "hold":
            window = verdict.window.name if verdict.window else "?"
            count(ALERTS_HELD, Reason="maintenance")
            logger.info("held by a maintenance window", extra={"window": window})
            return Outcome("held", f"maintenance window {window}", "trigger")
        if kind == "suppress":
            count(ALERTS_HELD, Reason="suppressed")
            logger.info(
                "update suppressed: the route's min_resend_seconds has not passed",
                extra={"suppressed": record.suppressed},
            )
            return Outcome("suppressed", "min_resend_seconds", "trigger")
        if kind in ("quiet", "local"):
            reason = "rolled-up" if kind == "quiet" else f"never paged: {message.alert.action} recorded only"
            count(EVENTS_SKIPPED, Reason="rolled-up" if kind == "quiet" else "never-paged")
            logger.info("recorded without a call", extra={"reason": reason})
            return Outcome("skipped", reason)
        # rollup / leave: the roll-up incident hears of it, the alert's own incident never exists
        try:
            if kind == "rollup":
                doc, action, _version = self.policy.join(message, record)
                self.store.write(replace(record, rollup=doc["dedup_key"], version=record.version + 1), record.version)
                record = replace(record, rollup=doc["dedup_key"], version=record.version + 1)
                count(ALERTS_HELD, Reason="rolled-up")
            else:
                doc, action, _version = self.policy.leave(message, record)
        except ConcurrentUpdate as exc:
            self.store.release(record.pk, record.version)
            raise StoreError(str(exc)) from exc
        if action is not None:
            # The roll-up incident's event is paced, throttled and retried like any other; the
            # member's message carries it (joining again is harmless).
            gate = self._admit(message.routing_key, action, delivery)
            if not gate.open:
                self.store.release(record.pk, record.version)
                return self._defer(message, delivery, gate.reason, gate.wait, slot=gate.slot)
            self.clock.sleep(gate.wait)
            answer = self._call(message.routing_key, rollup_event(doc, action, message.routing_key))
            count(EVENTS_SENT, Action=action, Status=str(answer.status or "network"))
            if answer.kind != "delivered":
                self.store.release(record.pk, record.version)
                return self._not_delivered(message, delivery, answer, f"roll-up incident: {answer.error}")
            self.policy.rollup_sent(message.route, message.routing_key, action, doc["dedup_key"])
        self.store.mark_delivered(record.pk, record.version, sent=False)
        logger.info(
            "rolled up" if kind == "rollup" else "left the roll-up",
            extra={"rollup": doc.get("dedup_key"), "members": len(doc.get("members", {})), "sent": action},
        )
        return Outcome("rolled-up" if kind == "rollup" else "skipped", f"roll-up {doc.get('dedup_key')}", action)

    def _not_delivered(
        self, message: QueueMessage | ChangeMessage, delivery: Delivery, answer: Answer, reason: str
    ) -> Outcome:
        """What happens to a message whose event PagerDuty did not take (roll-ups and change events;
        an alert's own event also ends its lease, see ``_alert``): refused → the DLQ with the reason;
        throttled → back on the queue after the key's pause; failed → retried after the back-off,
        or the DLQ once held too long."""
        action = message.alert.action if isinstance(message, QueueMessage) else "change"
        if answer.kind == "refused":
            self._dead_letter(delivery, reason, answer.status, answer, action=action)
            return Outcome("dead-lettered", reason, action, answer.status)
        if answer.kind == "throttled":
            return self._defer(message, delivery, "throttled", answer.wait, attempted=answer)
        if answer.wait > 0:  # the breaker opened: wait for its next probe like the others
            return self._defer(message, delivery, "circuit-open", answer.wait, attempted=answer)
        if self._held_too_long(message, delivery):
            held = f"not delivered within {self.settings.max_hold_seconds} s of receipt; last error: {answer.error}"
            self._dead_letter(delivery, held, answer.status, answer, action=action)
            return Outcome("dead-lettered", held, action, answer.status)
        delay = self.backoff_seconds(delivery.receive_count)
        self._delay(delivery.receipt_handle, delay)
        logger.warning(
            "delivery failed, will retry",
            extra={"action": action, **answer.logged(), "attempt": delivery.attempts, "retry_in_s": delay},
        )
        raise RetryableDelivery(answer.error, answer.status)

    # -- change events -------------------------------------------------------------------------------
    def _change(self, message: ChangeMessage, delivery: Delivery) -> Outcome:
        """A change event: no dedup state; paced and retried like alerts, 400 to the DLQ."""
        gate = self._admit(message.routing_key, "change", delivery)
        if not gate.open:
            return self._defer(message, delivery, gate.reason, gate.wait, slot=gate.slot)
        self.clock.sleep(gate.wait)
        answer = self._call(message.routing_key, change_event(message), path="/v2/change/enqueue")
        count(CHANGES_SENT, Status=str(answer.status or "network"))
        if answer.kind != "delivered":
            return self._not_delivered(message, delivery, answer, answer.error)
        logger.info("change event delivered", extra={"status": answer.status})
        return Outcome("delivered", "change", "change", answer.status)

    # -- test probes -----------------------------------------------------------------------------------
    def _probed(self, message: QueueMessage, action: str | None, status: int | None, error: str | None) -> None:
        """Record what PagerDuty answered a `pdrelay test` event, for the command to report."""
        if not message.probe or action is None:
            return
        from pdrelay.ops.probes import record_answer

        try:
            record_answer(self.store, message.probe, message.destination or message.route or "-", action, status, error)
        except (StoreError, ConcurrentUpdate) as exc:
            logger.warning("could not record a test answer", extra={"error": str(exc)})

    # -- the Events API: one reaction to every answer -------------------------------------------------
    def _call(self, routing_key: str, event: dict[str, Any], path: str = "/v2/enqueue") -> Answer:
        """Send one event and react to the answer the same way for alerts, roll-ups and change
        events: 2xx and 400 close the breaker (PagerDuty is up); 429 pauses the key; 5xx, timeouts
        and dropped connections count towards opening the breaker."""
        started = self.clock.monotonic()

        def took() -> int:
            return round((self.clock.monotonic() - started) * 1000)

        try:
            delivered = self.events.send(event, path=path)
        except PermanentDelivery as exc:
            ms = took()
            self._breaker_success()
            return Answer("refused", exc.status, "; ".join([str(exc), *exc.errors]), ms=ms)
        except RetryableDelivery as exc:
            ms = took()
            if exc.status == 429:
                return Answer("throttled", 429, str(exc), self._throttle(routing_key, exc.retry_after), ms)
            open_for = self._breaker_failure()
            return Answer("failed", exc.status, str(exc), open_for, ms)
        ms = took()
        self._breaker_success()
        return Answer("delivered", delivered.status, ms=ms)

    # -- pacing and the breaker ---------------------------------------------------------------------
    def _admit(self, routing_key: str, action: str, delivery: Delivery | None) -> Gate:
        """Whether an event may go now: the breaker, then the key's schedule."""
        now = self.clock.time()
        breaker = self._breaker(now)
        verdict, wait, claim = pacing.admit(breaker, now, self.breaker_policy)
        if verdict == "wait":
            return Gate("circuit-open", wait)
        gate = self._pace(routing_key, action in ("resolve", "acknowledge"), delivery, now)
        if not gate.open:
            return gate
        if claim is not None:
            # Claimed only once this event may really go, so a claimed probe is always sent.
            try:
                self.store.put_breaker(claim, breaker.version if breaker else 0)
            except ConcurrentUpdate:
                return Gate("circuit-open", 1.0)
            logger.info("circuit breaker: probing the Events API")
        return gate

    def _pace(self, routing_key: str, priority: bool, delivery: Delivery | None, now: float) -> Gate:
        """A message that brings its slot goes when it is due (a trigger whose lane resolves pushed
        back since goes once more, to its moved slot); else this dispatcher's own allowance; else
        the next slot of the shared schedule (see :mod:`pdrelay.delivery.pacing`)."""
        policy = self.schedule_policy(routing_key)
        slot = slot_of(delivery) if delivery is not None else None

        def due(at: float, reason: str = "paced", given: pacing.Slot | None = None) -> Gate:
            # Within a fraction of a second: wait for it here; else back on the queue for it.
            return Gate("send", max(0.0, at - now)) if at <= now + policy.early else Gate(reason, at - now, given)

        if slot is not None:
            if slot.firm or priority or slot.at > now + policy.early:
                return due(slot.at, given=slot)

            def check() -> pacing.Slot | None:
                schedule = self.store.get_schedule(routing_key)
                if schedule is not None and schedule.paused_until > now:
                    return None  # paused by a 429 since it was scheduled: a new slot after the pause
                later, after = pacing.moved(slot, schedule, policy)
                if after is not None and schedule is not None:
                    self.store.put_schedule(routing_key, after, schedule.version)
                return later

            try:
                later = read_modify_write(check, "the routing key's schedule")
            except ConcurrentUpdate:
                return Gate("paced", random.uniform(0.5, 1.5), slot)
            if later is not None:
                return due(later.at, given=later)
        elif self._allowance.take(routing_key, now, policy):
            return SEND

        def step() -> tuple[pacing.Slot, bool]:
            schedule = self.store.get_schedule(routing_key)
            got, after = pacing.reserve(schedule, now, policy, priority=priority)
            self.store.put_schedule(routing_key, after, schedule.version if schedule else 0)
            return got, schedule is not None and schedule.paused_until > now

        try:
            got, paused = read_modify_write(step, "the routing key's schedule")
        except ConcurrentUpdate:
            return Gate("paced", random.uniform(0.5, 1.5))
        return due(got.at, "throttled" if paused else "paced", got)

    def _throttle(self, routing_key: str, retry_after: float | None) -> float:
        """Pause the key after a 429, for every dispatcher; the seconds until it may send again."""
        policy = self.schedule_policy(routing_key)
        now = self.clock.time()

        def step() -> pacing.Schedule:
            schedule = self.store.get_schedule(routing_key)
            after = pacing.paused(schedule, now, retry_after, policy)
            self.store.put_schedule(routing_key, after, schedule.version if schedule else 0)
            return after

        try:
            after = read_modify_write(step, "the routing key's schedule")
            until, in_a_row = after.paused_until, after.throttles
        except ConcurrentUpdate:
            until, in_a_row = now + (retry_after if retry_after is not None else policy.throttle_pause_seconds), 0
        self._allowance.pause(routing_key, until)
        pause = until - now
        logger.warning(
            "PagerDuty throttled this routing key; pausing it",
            extra={"pause_s": round(pause, 1), "in_a_row": in_a_row},
        )
        return pause

    def _breaker(self, now: float) -> pacing.Breaker | None:
        """The shared breaker, read at most once a second, and not at all while PagerDuty answers
        this process's calls: when it fails for others it fails here too, and that failure reads it
        (so a process spends at most one call on an outage it did not see begin)."""
        read_at, cached = self._breaker_cache
        if self._answering and (cached is None or cached.is_closed(self.breaker_policy)):
            return cached
        if now - read_at > BREAKER_CACHE_SECONDS:
            cached = self.store.get_breaker()
            self._breaker_cache = (now, cached)
        return cached

    def _breaker_failure(self) -> float:
        """Count a retryable failure; the seconds until the next probe if the breaker is open now."""
        self._answering = False

        def step() -> pacing.Breaker:
            current = self.store.get_breaker()
            after = pacing.failed(current, self.clock.time(), self.breaker_policy)
            self.store.put_breaker(after, current.version if current else 0)
            return after

        try:
            after = read_modify_write(step, "the circuit breaker")
        except ConcurrentUpdate:
            return 0.0  # others are recording the same failures
        self._breaker_cache = (self.clock.time(), after)
        if after.is_closed(self.breaker_policy):
            return 0.0
        open_for = max(0.0, after.open_until - self.clock.time())
        logger.warning(
            "circuit breaker open: the Events API keeps failing",
            extra={"failures": after.failures, "open_for_s": round(open_for)},
        )
        return open_for

    def _breaker_success(self) -> None:
        self._answering = True
        _read_at, cached = self._breaker_cache
        if cached is None or (cached.failures == 0 and cached.open_until == 0):
            return
        current = self.store.get_breaker()
        after = pacing.succeeded(current)
        if after is not None and current is not None:
            try:
                self.store.put_breaker(after, current.version)
                logger.info("circuit breaker closed: the Events API answers again")
            except ConcurrentUpdate:
                pass  # another dispatcher's write: it moved on, and the next answer tells again
        self._breaker_cache = (self.clock.time(), after or current)

    # -- putting messages back, or aside --------------------------------------------------------------
    def _held_too_long(self, message: QueueMessage | ChangeMessage, delivery: Delivery) -> bool:
        """Held past the limit since receipt, or since an operator's redrive if later."""
        since = max(message.received_at.timestamp(), float(delivery.attr("redriven_at")))
        return self.clock.now().timestamp() - since > self.settings.max_hold_seconds

    def release_unstarted(self, receipt_handle: str) -> None:
        """A record the invocation had no time to start: visible again in a moment."""
        self._delay(receipt_handle, 2)

    def _defer(
        self,
        message: QueueMessage | ChangeMessage,
        delivery: Delivery,
        reason: str,
        wait: float,
        attempted: Answer | None = None,
        slot: pacing.Slot | None = None,
    ) -> Outcome:
        """Put the message back on the queue after ``wait`` seconds, without spending an attempt
        unless ``attempted`` (PagerDuty's answer to this message's call: 429, or a failure that
        opened the breaker); with ``slot``: the send time the schedule gave it, used when it comes back."""
        if self._held_too_long(message, delivery):
            held = f"not delivered within {self.settings.max_hold_seconds} s of receipt; last: {reason}"
            self._dead_letter(delivery, held, None)
            return Outcome("dead-lettered", held)
        if slot is not None:
            # Back up to a second early (SQS delays are whole seconds), it waits for the slot itself.
            delay = max(1, min(MAX_SQS_DELAY, math.floor(wait + 0.01)))
        elif reason == "throttled":
            delay = max(1, min(MAX_SQS_DELAY, math.ceil(wait)))  # the key's pause, exactly
        else:
            delay = max(1, min(MAX_SQS_DELAY, math.ceil(wait + random.uniform(0, 0.5))))
        attributes = dict(delivery.attributes)
        attempts = delivery.attempts if attempted is not None else delivery.attempts - 1
        attributes["attempts"] = {"DataType": "Number", "StringValue": str(max(0, attempts))}
        attributes["deferrals"] = {"DataType": "Number", "StringValue": str(delivery.attr("deferrals") + 1)}
        attributes.pop(SLOT_ATTRIBUTE, None)
        if slot is not None:
            value = f"{slot.at:.6f} {slot.shift:.6f} {int(slot.firm)}"
            attributes[SLOT_ATTRIBUTE] = {"DataType": "String", "StringValue": value}
        try:
            self.sqs.send_message(
                QueueUrl=self.settings.queue_url,
                MessageBody=delivery.body,
                DelaySeconds=delay,
                MessageAttributes=attributes,
            )
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(f"could not put the message back on the queue: {type(exc).__name__}") from exc
        count(EVENTS_DEFERRED, Reason=reason)
        said = attempted.logged() if attempted is not None else {}
        logger.info("deferred", extra={"reason": reason, "delay_s": delay, **said})
        return Outcome("deferred", reason, delay=delay)

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
                QueueUrl=self.settings.queue_url,
                ReceiptHandle=receipt_handle,
                VisibilityTimeout=min(seconds, 43200),
            )
        except (ClientError, BotoCoreError) as exc:
            # The message still comes back after the queue's own visibility timeout.
            logger.warning("could not set the retry delay", extra={"error": type(exc).__name__})

    def _dead_letter(
        self,
        delivery: Delivery,
        reason: str,
        status: int | None,
        answer: Answer | None = None,
        action: str | None = None,
    ) -> None:
        """Into the DLQ with the reason (and PagerDuty's status), said once in the log: the only line
        that tells an alert is there (``answer``: the call that put it there, if one did)."""
        attributes = dict(delivery.attributes)
        attributes.update(
            {
                "failure_reason": {"DataType": "String", "StringValue": reason[:1000] or "unknown"},
                "http_status": {"DataType": "Number", "StringValue": str(status or 0)},
                "attempts": {"DataType": "Number", "StringValue": str(delivery.attempts)},
            }
        )
        try:
            self.sqs.send_message(
                QueueUrl=self.settings.dlq_url, MessageBody=delivery.body, MessageAttributes=attributes
            )
        except (ClientError, BotoCoreError) as exc:
            # Not in the DLQ: fail the record so SQS keeps it (and moves it there eventually).
            raise StoreError(f"could not send to the dead-letter queue: {type(exc).__name__}") from exc
        extra: dict[str, Any] = {"reason": reason[:1000], "attempt": delivery.attempts}
        if action is not None:
            extra["action"] = action
        if answer is not None:
            extra.update({"status": answer.status, "call_ms": answer.ms})
        elif status:
            extra["status"] = status
        logger.warning("sent to the DLQ", extra=extra)


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
_CLOCK: Clock = SYSTEM_CLOCK


def set_clock(clock: Clock | None) -> None:
    """The clock this process's dispatcher reads (None: the system's). Tests set a ManualClock."""
    global _CLOCK
    _CLOCK = clock or SYSTEM_CLOCK
    if _DISPATCHER is not None:
        _DISPATCHER.use_clock(_CLOCK)


def get_dispatcher() -> Dispatcher:
    """One dispatcher (pooled HTTP session, AWS clients) per execution environment."""
    global _DISPATCHER
    if _DISPATCHER is None:
        from pdrelay.aws import client
        from pdrelay.settings import get_settings

        settings = get_settings()
        _DISPATCHER = Dispatcher(
            settings=settings,
            config=config_reader(settings),
            store=DedupStore(client("dynamodb"), settings.table_name, settings.record_ttl_days, _CLOCK),
            events=EventsClient(
                settings.events_url,
                connect_timeout=settings.connect_timeout_seconds,
                read_timeout=settings.read_timeout_seconds,
                clock=_CLOCK,
            ),
            sqs=client("sqs"),
            clock=_CLOCK,
        )
    return _DISPATCHER


def reset_dispatcher() -> None:
    global _DISPATCHER
    _DISPATCHER = None
