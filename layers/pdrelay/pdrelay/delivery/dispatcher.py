"""Dispatch: one queue message → one decision in the dedup table → at most one Events API call.

``functions/dispatch/app.py`` runs :meth:`Dispatcher.process` for each SQS record through
Powertools' ``BatchProcessor``. Outcomes:

- ``delivered``: PagerDuty answered 2xx; the item is marked delivered.
- ``skipped``: nothing to send (stale, duplicate, unchanged, unknown): no call.
- ``deferred``: not sent now, without spending a delivery attempt: the key is paced or paused after
  a 429, the circuit breaker is open, or another dispatcher is sending for the same alert. The
  message is put back on the queue with a delay (up to SQS's 15 minutes) and this copy completes.
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
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from pdrelay.config import RelayConfig
from pdrelay.delivery import pacing
from pdrelay.delivery.decisions import OPEN_STATES, Decision, Event, decide
from pdrelay.delivery.events_api import EventsClient, build_event, change_event, payload_snapshot
from pdrelay.errors import ConcurrentUpdate, PermanentDelivery, RetryableDelivery, StoreError
from pdrelay.models import ChangeMessage, QueueMessage, parse_message
from pdrelay.observability import (
    ALERTS_HELD,
    CHANGES_SENT,
    DELIVERY_FAILED,
    DELIVERY_LATENCY,
    EVENTS_DEFERRED,
    EVENTS_SENT,
    EVENTS_SKIPPED,
    count,
    logger,
    measure,
)
from pdrelay.policy.judge import Policy, Verdict, rollup_event
from pdrelay.settings import Settings
from pdrelay.table import DedupStore, item_key
from pdrelay.timeutil import SYSTEM_CLOCK, Clock, to_micros

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

WRITE_ATTEMPTS = 3
MAX_SQS_DELAY = 900
BREAKER_CACHE_SECONDS = 1.0
START_WITHIN_SECONDS = 4.0  # the lease allows the client's timeouts plus a margin
UNEXPECTED_ERROR_RECEIVES = 5
IN_FLIGHT_RECHECK_SECONDS = 3


def content_hash(message: QueueMessage) -> str:
    """What makes a repeat notification different (times excluded: they move on every repeat)."""
    a = message.alert
    doc = a.model_dump(
        mode="json",
        by_alias=True,
        exclude={"occurred_at", "timestamp", "identity", "format", "action", "client_url", "test"},
    )
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:32]


def to_event(message: QueueMessage) -> Event:
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
    )


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


@dataclass
class Dispatcher:
    settings: Settings
    store: DedupStore
    events: EventsClient
    sqs: SQSClient
    clock: Clock = SYSTEM_CLOCK  # every reading of "now" in dispatch; see ``use_clock``
    config: Callable[[], RelayConfig | None] | None = None  # routes' storm control and windows
    _breaker_cache: tuple[float, pacing.Breaker | None] = (0.0, None)
    _policy: Policy | None = None

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

    @property
    def pacing_policy(self) -> pacing.PacingPolicy:
        s = self.settings
        return pacing.PacingPolicy(
            s.rate_limit, s.rate_window_seconds, s.throttle_pause_seconds, s.throttle_max_pause_seconds
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
            correlation_id=message.request_id,
            route=message.route,
            destination=message.destination,
            dedup_key=message.dedup_key if isinstance(message, QueueMessage) else None,
            message_id=message_id,
            receive_count=receive_count,
        )
        try:
            if isinstance(message, ChangeMessage):
                return self._change(message, delivery)
            outcome = self._process(message, delivery)
            if message.alert.action != "trigger" and outcome.result != "deferred":
                self._reach_orphans(message)
            return outcome
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
            logger.remove_keys(["correlation_id", "dedup_key", "route", "destination", "message_id", "receive_count"])

    def _decide(self, message: QueueMessage, body: str) -> tuple[Verdict | None, Decision, dict[str, Any] | None]:
        event = to_event(message)
        moment = self.clock.now()
        now = to_micros(moment)
        lease = int(self.settings.lease_seconds * 1_000_000)
        for _attempt in range(WRITE_ATTEMPTS):
            current = self.store.get(event.pk)
            decision = decide(current, event, now, lease)
            verdict = None
            if decision.send is not None and decision.record is not None:
                verdict = self.policy.judge(current, decision, message, moment, body)
                decision = verdict.decision
            if decision.write and decision.record is not None:
                try:
                    self.store.write(decision.record, current.version if current else None)
                except ConcurrentUpdate:
                    continue
            return verdict, decision, (current.payload if current else None)
        raise StoreError(f"lost {WRITE_ATTEMPTS} races for one dedup item; retrying later")

    def _process(self, message: QueueMessage, delivery: Delivery) -> Outcome:
        decided_at = self.clock.monotonic()  # the lease starts about now
        verdict, decision, stored_payload = self._decide(message, delivery.body)
        if verdict is not None and verdict.kind != "send":
            return self._by_policy(message, delivery, verdict)
        if decision.reason in ("in-flight", "after-trigger"):
            # Usually the holder finishes within a second or two; a dead holder's lease is simply
            # checked again until it expires. A resolve or acknowledge whose trigger waits is checked
            # again the same way and goes right after it. Deferrals spend no delivery attempt.
            return self._defer(message, delivery, decision.reason, IN_FLIGHT_RECHECK_SECONDS)
        if decision.send is None or decision.record is None:
            count(EVENTS_SKIPPED, Reason=decision.reason)
            logger.info("skipped", extra={"reason": decision.reason, "action": message.alert.action})
            return Outcome("skipped", decision.reason)
        record = decision.record
        gate, wait = self._admit(message.routing_key)
        if gate != "send":
            return self._put_back(message, delivery, decision, gate, wait)
        if self.clock.monotonic() - decided_at > START_WITHIN_SECONDS:
            # Slow pacing/breaker calls ate into the lease: do not start a send that could outlast
            # it (another dispatcher could then send a newer event first).
            return self._put_back(message, delivery, decision, "in-flight", 1)
        event = build_event(message, decision.send, stored_payload)
        try:
            delivered = self.events.send(event)
        except PermanentDelivery as exc:
            self._send_ended(decision, given_up=True)  # refused: it will never be sent as it is
            self._breaker_success()  # PagerDuty answered: it is up
            count(EVENTS_SENT, Action=decision.send, Status=str(exc.status))
            reason = "; ".join([str(exc), *exc.errors])
            if message.probe:
                # A test that PagerDuty refused: the answer is the result; nothing to keep in the DLQ.
                self._probed(message, decision.send, exc.status, reason)
                return Outcome("rejected", reason, decision.send, exc.status)
            count(DELIVERY_FAILED, Kind="permanent")
            self._dead_letter(delivery, reason, exc.status)
            logger.warning("rejected by PagerDuty, sent to the DLQ", extra={"reason": reason})
            return Outcome("dead-lettered", reason, decision.send, exc.status)
        except RetryableDelivery as exc:
            self.store.release(record.pk, record.version)
            count(EVENTS_SENT, Action=decision.send, Status=str(exc.status or "network"))
            self._probed(message, decision.send, exc.status, f"{exc} (retrying)")
            if exc.status == 429:
                pause = self._throttle(message.routing_key, exc.retry_after)
                return self._put_back(message, delivery, decision, "throttled", pause, attempted=True, released=True)
            count(DELIVERY_FAILED, Kind="retryable")
            self._breaker_failure()
            if self._held_too_long(message, delivery):
                reason = f"not delivered within {self.settings.max_hold_seconds} s of receipt; last error: {exc}"
                self._dead_letter(delivery, reason, exc.status)
                self._send_ended(decision, given_up=True)
                return Outcome("dead-lettered", reason, decision.send, exc.status)
            delay = self.backoff_seconds(delivery.receive_count)
            self._delay(delivery.receipt_handle, delay)
            logger.warning(
                "delivery failed, will retry",
                extra={"error": str(exc), "attempt": delivery.attempts, "retry_in_s": delay},
            )
            raise
        except Exception:
            self.store.release(record.pk, record.version)  # whatever it was, the send is over
            raise
        self.store.mark_delivered(
            record.pk,
            record.version,
            trigger_sent_at=to_micros(self.clock.now()) if decision.send == "trigger" else None,
        )
        self._breaker_success()
        self._probed(message, decision.send, delivered.status, None)
        count(EVENTS_SENT, Action=decision.send, Status=str(delivered.status))
        latency_ms = (self.clock.now() - message.received_at).total_seconds() * 1000
        measure(DELIVERY_LATENCY, latency_ms)
        logger.info(
            "delivered",
            extra={
                "action": decision.send,
                "reason": decision.reason,
                "status": delivered.status,
                "latency_ms": round(latency_ms),
            },
        )
        return Outcome("delivered", decision.reason, decision.send, delivered.status)

    def _reach_orphans(self, message: QueueMessage) -> None:
        """A resolve or acknowledge also goes to the incidents this alert opened under routing keys
        its route no longer has (a destination removed, a key rotated): PagerDuty only closes an
        incident for the key it was opened with. Each gets a copy of the message, sent like any."""
        config = self.config() if self.config is not None else None
        route = config.routes.get(message.route or "") if config is not None else None
        if route is None:
            return
        current = set(route.targets.values())
        if message.routing_key not in current:
            return  # itself such a copy, or sent to one routing key by name: nothing else to reach
        for copy in self.store.copies_of(message.dedup_key):
            if copy.route != message.route or copy.routing_key in current or copy.state not in OPEN_STATES:
                continue
            body = message.model_copy(update={"routing_key": copy.routing_key, "destination": copy.destination})
            try:
                self.sqs.send_message(QueueUrl=self.settings.queue_url, MessageBody=body.to_json())
            except (ClientError, BotoCoreError) as exc:
                raise StoreError(f"could not queue the event for a removed destination: {type(exc).__name__}") from exc
            logger.info(
                "sent on to an incident opened under a routing key the route no longer has",
                extra={"action": message.alert.action, "destination": copy.destination},
            )

    def _send_ended(self, decision: Decision, *, given_up: bool = False) -> None:
        """End the lease a sending decision took. A trigger given up on (refused by PagerDuty, or
        put in the DLQ) is marked so that the alert's later events stop waiting for it."""
        record = decision.record
        assert record is not None
        if given_up and decision.send == "trigger":
            self.store.dead_lettered(record.pk, record.version)
        else:
            self.store.release(record.pk, record.version)

    def _put_back(
        self,
        message: QueueMessage,
        delivery: Delivery,
        decision: Decision,
        reason: str,
        wait: float,
        *,
        attempted: bool = False,
        released: bool = False,
    ) -> Outcome:
        """Not sent now: end the lease and put the message back on the queue (or in the DLQ once held too long)."""
        if not released:
            self._send_ended(decision)
        outcome = self._defer(message, delivery, reason, wait, attempted=attempted)
        if outcome.result == "dead-lettered":
            self._send_ended(decision, given_up=True)
        return outcome

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
            if action is not None:
                self._send_rollup(message, doc, action)
        except PermanentDelivery as exc:
            self.store.release(record.pk, record.version)
            reason = "; ".join([f"roll-up incident: {exc}", *exc.errors])
            self._dead_letter(delivery, reason, exc.status)
            return Outcome("dead-lettered", reason, message.alert.action, exc.status)
        except (RetryableDelivery, ConcurrentUpdate) as exc:
            self.store.release(record.pk, record.version)
            if isinstance(exc, ConcurrentUpdate):
                raise StoreError(str(exc)) from exc
            delay = self.backoff_seconds(delivery.receive_count)
            self._delay(delivery.receipt_handle, delay)
            raise
        self.store.mark_delivered(record.pk, record.version, sent=False)
        logger.info(
            "rolled up" if kind == "rollup" else "left the roll-up",
            extra={"rollup": doc.get("dedup_key"), "members": len(doc.get("members", {})), "sent": action},
        )
        return Outcome("rolled-up" if kind == "rollup" else "skipped", f"roll-up {doc.get('dedup_key')}", action)

    def _send_rollup(self, message: QueueMessage, doc: dict[str, Any], action: str) -> None:
        delivered = self.events.send(rollup_event(doc, action, message.routing_key))
        count(EVENTS_SENT, Action=action, Status=str(delivered.status))
        self.policy.rollup_sent(message.route, message.routing_key, action, doc["dedup_key"])

    # -- change events -------------------------------------------------------------------------------
    def _change(self, message: ChangeMessage, delivery: Delivery) -> Outcome:
        """A change event: no dedup state; paced and retried like alerts, 400 to the DLQ."""
        gate, wait = self._admit(message.routing_key)
        if gate != "send":
            return self._defer(message, delivery, gate, wait)
        try:
            delivered = self.events.send(change_event(message), path="/v2/change/enqueue")
        except PermanentDelivery as exc:
            self._breaker_success()
            count(CHANGES_SENT, Status=str(exc.status))
            reason = "; ".join([str(exc), *exc.errors])
            self._dead_letter(delivery, reason, exc.status)
            return Outcome("dead-lettered", reason, "change", exc.status)
        except RetryableDelivery as exc:
            count(CHANGES_SENT, Status=str(exc.status or "network"))
            if exc.status == 429:
                pause = self._throttle(message.routing_key, exc.retry_after)
                return self._defer(message, delivery, "throttled", pause, attempted=True)
            self._breaker_failure()
            if self._held_too_long(message, delivery):
                reason = f"not delivered within {self.settings.max_hold_seconds} s of receipt; last error: {exc}"
                self._dead_letter(delivery, reason, exc.status)
                return Outcome("dead-lettered", reason, "change", exc.status)
            self._delay(delivery.receipt_handle, self.backoff_seconds(delivery.receive_count))
            raise
        self._breaker_success()
        count(CHANGES_SENT, Status=str(delivered.status))
        logger.info("change event delivered", extra={"status": delivered.status})
        return Outcome("delivered", "change", "change", delivered.status)

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

    # -- pacing and the breaker ---------------------------------------------------------------------
    def _admit(self, routing_key: str) -> tuple[str, float]:
        """('send', 0) or (reason to defer, seconds to wait)."""
        now = self.clock.time()
        breaker = self._breaker(now)
        verdict, wait, claim = pacing.admit(breaker, now, self.breaker_policy)
        if verdict == "wait":
            return "circuit-open", wait
        paced, wait = self._take_token(routing_key, now)
        if paced != "send":
            return paced, wait
        if claim is not None:
            # Claimed only once this alert may really go, so a claimed probe is always sent.
            try:
                self.store.put_breaker(claim, breaker.version if breaker else 0)
            except ConcurrentUpdate:
                return "circuit-open", 1.0
            logger.info("circuit breaker: probing the Events API")
        return "send", 0.0

    def _take_token(self, routing_key: str, now: float) -> tuple[str, float]:
        for _attempt in range(WRITE_ATTEMPTS):
            bucket = self.store.get_bucket(routing_key)
            wait, after = pacing.take_token(bucket, now, self.pacing_policy)
            if wait > 0:
                return ("throttled" if bucket and bucket.paused_until > now else "paced"), wait
            try:
                self.store.put_bucket(routing_key, after, bucket.version if bucket else 0)
            except ConcurrentUpdate:
                now = self.clock.time()
                continue
            return "send", 0.0
        return "paced", random.uniform(0.5, 1.5)

    def _throttle(self, routing_key: str, retry_after: float | None) -> float:
        """Pause the key after a 429; the seconds until it may send again."""
        now = self.clock.time()
        for _attempt in range(WRITE_ATTEMPTS):
            bucket = self.store.get_bucket(routing_key)
            after = pacing.throttled(bucket, now, retry_after, self.pacing_policy)
            try:
                self.store.put_bucket(routing_key, after, bucket.version if bucket else 0)
            except ConcurrentUpdate:
                now = self.clock.time()
                continue
            pause = after.paused_until - now
            logger.warning(
                "PagerDuty throttled this routing key; pausing it",
                extra={"pause_s": round(pause, 1), "in_a_row": after.throttles},
            )
            return pause
        return retry_after if retry_after is not None else self.settings.throttle_pause_seconds

    def _breaker(self, now: float) -> pacing.Breaker | None:
        read_at, cached = self._breaker_cache
        if now - read_at > BREAKER_CACHE_SECONDS:
            cached = self.store.get_breaker()
            self._breaker_cache = (now, cached)
        return cached

    def _breaker_failure(self) -> None:
        for _attempt in range(WRITE_ATTEMPTS):
            current = self.store.get_breaker()
            after = pacing.failed(current, self.clock.time(), self.breaker_policy)
            try:
                self.store.put_breaker(after, current.version if current else 0)
            except ConcurrentUpdate:
                continue
            self._breaker_cache = (self.clock.time(), after)
            if not after.is_closed(self.breaker_policy):
                open_for = round(after.open_until - self.clock.time())
                logger.warning(
                    "circuit breaker open: the Events API keeps failing",
                    extra={"failures": after.failures, "open_for_s": open_for},
                )
            return

    def _breaker_success(self) -> None:
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
                pass
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
        attempted: bool = False,
    ) -> Outcome:
        """Put the message back on the queue after ``wait`` seconds, without spending an attempt."""
        if self._held_too_long(message, delivery):
            held = f"not delivered within {self.settings.max_hold_seconds} s of receipt; last: {reason}"
            self._dead_letter(delivery, held, None)
            return Outcome("dead-lettered", held)
        delay = max(1, min(MAX_SQS_DELAY, math.ceil(wait + random.uniform(0, 0.5))))
        attributes = dict(delivery.attributes)
        attempts = delivery.attempts if attempted else delivery.attempts - 1
        attributes["attempts"] = {"DataType": "Number", "StringValue": str(max(0, attempts))}
        attributes["deferrals"] = {"DataType": "Number", "StringValue": str(delivery.attr("deferrals") + 1)}
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
        logger.info("deferred", extra={"reason": reason, "delay_s": delay})
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

    def _dead_letter(self, delivery: Delivery, reason: str, status: int | None) -> None:
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


def config_reader(settings: Settings) -> Callable[[], RelayConfig | None]:
    """The configuration, re-read per its cache age; None (no policy) when there is none."""
    from pdrelay.config import load_config
    from pdrelay.errors import ConfigError

    def read() -> RelayConfig | None:
        try:
            return load_config(settings, with_credentials=False)
        except ConfigError as exc:
            logger.warning("no readable configuration: windows and storm control are off", extra={"error": str(exc)})
            return None

    return read


def reset_dispatcher() -> None:
    global _DISPATCHER
    _DISPATCHER = None
