"""Pacing per routing key and the circuit breaker for the Events API (pure logic, no I/O).

**Pacing: a schedule, not retries.** PagerDuty allows about ``limit`` events per routing key over a
sliding ``window`` (120 per 60 s by default; settable per destination). pdrelay keeps, per key, a
schedule in the dedup table (a GCRA) that hands out send times one ``interval`` apart. A message
that cannot go now is put back on the queue once, for the moment its slot comes, with the slot in
its message attributes; when it comes back (SQS delays are whole seconds: up to a second early,
and it waits the rest) it goes without asking again. Resolves and acknowledges take the first free
slot from now on, ahead of the triggers already scheduled, whose lane moves back one interval
(``shift``); a trigger that comes back for its slot and finds the lane moved is promised a slot for
good (``locked_until``: no later resolve takes it) and goes then. So at most two deferrals per
message, and resolves before new triggers.

**Far below the limit, no shared item at all.** Of ``burst = max(1, limit // 20)``, each of the
dispatchers that may run at once (``processes``) may send ``(burst - 1) // processes`` events per
window on its own count, without reading or writing the schedule, so a key that sends a few events
a minute never touches it. What they leave is the schedule's burst (its tolerance). In any window a
key sees at most ``burst - 1 + window / interval + 1 = limit`` events, with
``interval = (window + 0.25 s) / (limit - burst)`` (the last slot is room for a send that comes back
late, the quarter second for sends that arrive a little early or late): in the long run about
``limit - burst`` per window from the schedule alone (95 % of the limit), up to ``limit - 1`` with
the dispatchers' own shares.

**429.** A 429 pauses the key in the schedule until ``paused_until``: for ``Retry-After`` when PagerDuty
sends one; else briefly (``throttle_pause_seconds``, 2 s by default), doubling only while 429s keep
coming (a 429 within ``window`` of the last pause's end), up to ``throttle_max_pause_seconds``. A
dispatcher that sees the 429 also stops using its own allowance until the pause ends.

**Circuit breaker.** ``threshold`` consecutive retryable failures (5xx, timeouts, connection
errors; not 429, which is one key's business) open the breaker for ``cooldown`` seconds (5 s by default), doubling
up to ``max_cooldown`` (10 s) on each failed probe, so PagerDuty is probed at least every 10 s however
long it is down. While open, nobody calls PagerDuty: messages are put
back on the queue with a delay, without spending delivery attempts. After the cooldown one
dispatcher claims the probe; a success closes the breaker.

The 429 pause is worked out on a plain token bucket (:class:`Bucket`, :func:`throttled`); callers'
rate limits at the edge are a GCRA of their own (:class:`pdrelay.ingest.auth.CallerPolicy`).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Protocol


@dataclass(frozen=True)
class PacingPolicy:
    limit: int = 120
    window_seconds: float = 60.0
    throttle_pause_seconds: float = 2.0  # the first pause after a 429 without Retry-After
    throttle_max_pause_seconds: float = 60.0  # the longest, after 429s in a row

    @property
    def capacity(self) -> float:
        return float(max(1, self.limit // 6))

    @property
    def rate(self) -> float:
        # A limit no larger than the burst (1 to 11) still refills: that many per window.
        return max(self.limit - self.capacity, 0.0) / self.window_seconds or self.limit / self.window_seconds


@dataclass(frozen=True)
class Bucket:
    tokens: float
    updated: float
    paused_until: float = 0.0
    throttles: int = 0  # 429s in a row (each within the window of the last pause's end)
    version: int = 0


def take_token(bucket: Bucket | None, now: float, policy: PacingPolicy) -> tuple[float, Bucket]:
    """(seconds to wait, the bucket after): wait 0 means a token was taken."""
    if bucket is None:
        bucket = Bucket(tokens=policy.capacity, updated=now)
    if bucket.paused_until > now:
        return bucket.paused_until - now, bucket
    tokens = min(policy.capacity, bucket.tokens + max(0.0, now - bucket.updated) * policy.rate)
    if tokens >= 1.0:
        return 0.0, replace(bucket, tokens=tokens - 1.0, updated=now, version=bucket.version + 1)
    wait = (1.0 - tokens) / policy.rate if policy.rate > 0 else policy.window_seconds
    return wait, bucket


def throttled(bucket: Bucket | None, now: float, retry_after: float | None, policy: PacingPolicy) -> Bucket:
    """The bucket after a 429: emptied and paused for ``retry_after`` seconds, or, without one, for
    the first pause doubled for each 429 in a row before it (up to the longest pause)."""
    base = bucket or Bucket(tokens=0.0, updated=now)
    in_a_row = base.throttles + 1 if base.throttles and now <= base.paused_until + policy.window_seconds else 1
    if retry_after is not None:
        pause = retry_after
    else:
        pause = min(policy.throttle_max_pause_seconds, policy.throttle_pause_seconds * 2 ** min(in_a_row - 1, 16))
    return replace(
        base,
        tokens=0.0,
        updated=now,
        paused_until=max(base.paused_until, now + pause),
        throttles=in_a_row,
        version=base.version + 1,
    )


# -- the send schedule of a routing key -----------------------------------------------------------
ARRIVAL_JITTER_SECONDS = 0.25  # the schedule's room for sends arriving early or late (see interval)


@dataclass(frozen=True)
class SchedulePolicy:
    limit: int = 120
    window_seconds: float = 60.0
    throttle_pause_seconds: float = 2.0
    throttle_max_pause_seconds: float = 60.0
    processes: int = 5  # dispatchers that may send at once (the template's DispatchMaxConcurrency)

    @property
    def burst(self) -> int:
        return max(1, self.limit // 20)

    @property
    def interval(self) -> float:
        """Seconds between two slots of the shared schedule."""
        # One slot short of the exact share: room for a send that comes late (the queue hands a
        # message back a little after its slot); and the window taken ARRIVAL_JITTER longer:
        # PagerDuty counts events as they arrive, and sends that leave on their slots arrive a few
        # tens of milliseconds early or late (measured: +-20 ms on 127.0.0.1; more over the internet).
        return (self.window_seconds + ARRIVAL_JITTER_SECONDS) / max(1, self.limit - self.burst)

    @property
    def own_allowance(self) -> int:
        """Events per window one dispatcher may send on its own count (0: always ask the schedule)."""
        # Leaves the schedule at least its one immediate slot.
        return (self.burst - 1) // max(1, self.processes) if self.limit > self.burst else 0

    @property
    def tolerance(self) -> float:
        """How far ahead of its lane a slot may be taken: the part of the burst not shared out."""
        return max(0, self.burst - self.own_allowance * max(1, self.processes) - 1) * self.interval

    # A slot this close is waited for in the dispatcher: a message is put back for whole seconds
    # (SQS's delays), so one put back for its slot comes back up to a second early and waits here.
    early: float = 1.0

    def pacing(self) -> PacingPolicy:
        return PacingPolicy(
            self.limit, self.window_seconds, self.throttle_pause_seconds, self.throttle_max_pause_seconds
        )


@dataclass(frozen=True)
class Schedule:
    """A routing key's send schedule, in the dedup table (times in seconds since the epoch)."""

    next_at: float = 0.0  # the trigger lane's next free slot
    priority_at: float = 0.0  # the resolve/acknowledge lane's next free slot
    shift: float = 0.0  # seconds the trigger lane was pushed back by resolves and acknowledges, in all
    locked_until: float = 0.0  # after the last slot promised to a trigger that was moved once (never moves again)
    inserts: tuple[tuple[float, float], ...] = ()  # the last resolves put ahead of triggers: (shift after, slot)
    paused_until: float = 0.0
    throttles: int = 0
    version: int = 0


@dataclass(frozen=True)
class Slot:
    """A send time handed out by the schedule, carried by the message that waits for it."""

    at: float
    shift: float = 0.0  # the trigger lane's shift when it was handed out
    firm: bool = False  # already moved once: goes at ``at`` whatever happens to the lane


def reserve(schedule: Schedule | None, now: float, policy: SchedulePolicy, *, priority: bool) -> tuple[Slot, Schedule]:
    """The next free slot (``priority``: the resolve lane's) and the schedule after handing it out."""
    s = schedule or Schedule()
    base = max(now, s.paused_until)
    step, tau = policy.interval, policy.tolerance
    if priority and s.next_at - tau > base:
        # Triggers are scheduled ahead: take the first slot from now on that no resolve and no
        # promised trigger holds; the triggers not yet promised each move back one slot (``shift``).
        # Not a slot a trigger may be taking right now: one due within ``early`` is on its way back.
        soon = base + policy.early
        ahead = (s.next_at - soon) % step
        front = soon + (ahead if 0.001 < ahead < step - 0.001 else step)
        at = _on_grid(front, max(s.priority_at, s.locked_until), step)
        if at < s.next_at:
            inserted = ((s.shift + step, at),)
            after = replace(
                s, next_at=s.next_at + step, shift=s.shift + step, inserts=(s.inserts + inserted)[-KEPT_INSERTS:]
            )
        else:
            after = replace(s, next_at=at + step)
        after = replace(after, priority_at=at + step, version=s.version + 1)
        return Slot(at, after.shift), after
    at = max(base, s.next_at - tau)
    after = replace(s, next_at=max(s.next_at, at) + step, version=s.version + 1)
    if priority:
        after = replace(after, priority_at=max(s.priority_at, at + step))
    return Slot(at, s.shift), after


def _on_grid(slot: float, not_before: float, step: float) -> float:
    """``slot``, or the first slot of its grid (``step`` apart) at or after ``not_before``: every send
    time stays a whole number of intervals from the others, so no two come closer than ``step``."""
    if not_before <= slot:
        return slot
    return slot + math.ceil((not_before - slot) / step - 1e-6) * step


def moved(slot: Slot, schedule: Schedule | None, policy: SchedulePolicy) -> tuple[Slot, Schedule | None]:
    """A trigger back for its slot: the slot, if no resolve was put ahead of it since; else the slot
    the resolves put ahead of it moved it to, promised for good (``firm``), and the schedule after
    promising it (None: nothing to write)."""
    step = policy.interval
    near = step / 1000  # times and shifts are stored to the microsecond
    if slot.firm or schedule is None or schedule.shift <= slot.shift + near:
        return slot, None
    later = [(shift, at) for shift, at in schedule.inserts if shift > slot.shift + near]
    forgotten = round((schedule.shift - slot.shift) / step) - len(later)  # too old to be kept: ahead of it
    at = slot.at + max(0, forgotten) * step
    for _shift, inserted in later:
        if inserted <= at + near:  # put at or before where it stood then: it moved back one slot
            at += step
    if at <= slot.at + near:
        return slot, None
    # Its place in the lane is its own (no other trigger and no resolve has it); a resolve put
    # ahead later would move it again, so none may be, until after it.
    after = replace(schedule, locked_until=max(schedule.locked_until, at + step), version=schedule.version + 1)
    return Slot(at, schedule.shift, firm=True), after


def paused(schedule: Schedule | None, now: float, retry_after: float | None, policy: SchedulePolicy) -> Schedule:
    """The schedule after a 429: paused (see :func:`throttled`), its lanes starting after the pause."""
    s = schedule or Schedule()
    bucket = throttled(Bucket(0.0, now, s.paused_until, s.throttles), now, retry_after, policy.pacing())
    return replace(s, paused_until=bucket.paused_until, throttles=bucket.throttles, version=s.version + 1)


class Shares(Protocol):
    """A limit shared out among processes: how many each may take per window on its own count."""

    @property
    def own_allowance(self) -> int: ...
    @property
    def window_seconds(self) -> float: ...


@dataclass
class Allowance:
    """One dispatcher's own count of sends per routing key, for :attr:`SchedulePolicy.own_allowance`."""

    sent: dict[str, deque[float]] = field(default_factory=dict)
    paused_until: dict[str, float] = field(default_factory=dict)

    def take(self, key: str, now: float, policy: Shares) -> bool:
        """Whether this process may send (or admit) one more for ``key`` without the shared item."""
        if policy.own_allowance <= 0 or self.paused_until.get(key, 0.0) > now:
            return False
        times = self.sent.setdefault(key, deque())
        while times and now - times[0] >= policy.window_seconds:
            times.popleft()
        if len(times) >= policy.own_allowance:
            return False
        times.append(now)
        return True

    def pause(self, key: str, until: float) -> None:
        self.paused_until[key] = max(until, self.paused_until.get(key, 0.0))
        if len(self.paused_until) > 1000:  # keys come and go: forget ended pauses
            self.paused_until = {k: v for k, v in self.paused_until.items() if v > until - 3600}


PROBE_RECHECK_SECONDS = 3.0
KEPT_INSERTS = 64  # resolves put ahead of triggers that the schedule remembers the place of


@dataclass(frozen=True)
class BreakerPolicy:
    threshold: int = 5
    cooldown_seconds: float = 5.0
    max_cooldown_seconds: float = 10.0
    probe_seconds: float = 20.0  # how long one probe may take before another dispatcher may probe


@dataclass(frozen=True)
class Breaker:
    failures: int = 0
    open_until: float = 0.0
    cooldown: float = 0.0
    probe_until: float = 0.0
    version: int = 0

    def is_closed(self, policy: BreakerPolicy) -> bool:
        return self.failures < policy.threshold


def admit(breaker: Breaker | None, now: float, policy: BreakerPolicy) -> tuple[str, float, Breaker | None]:
    """('send' | 'probe' | 'wait', seconds to wait, breaker to write for a probe claim)."""
    if breaker is None or breaker.is_closed(policy):
        return "send", 0.0, None
    if breaker.open_until > now:
        return "wait", breaker.open_until - now, None
    if breaker.probe_until > now:
        # Look again soon: when the probe succeeds, the backlog goes within seconds.
        return "wait", min(PROBE_RECHECK_SECONDS, max(1.0, breaker.probe_until - now)), None
    claimed = replace(breaker, probe_until=now + policy.probe_seconds, version=breaker.version + 1)
    return "probe", 0.0, claimed


def failed(breaker: Breaker | None, now: float, policy: BreakerPolicy) -> Breaker:
    base = breaker or Breaker()
    failures = base.failures + 1
    if failures < policy.threshold:
        return replace(base, failures=failures, version=base.version + 1)
    cooldown = policy.cooldown_seconds if base.cooldown <= 0 else min(base.cooldown * 2, policy.max_cooldown_seconds)
    if base.open_until > now:  # already open: keep its schedule
        cooldown = base.cooldown
    return replace(
        base,
        failures=failures,
        open_until=max(base.open_until, now + cooldown),
        cooldown=cooldown,
        probe_until=0.0,
        version=base.version + 1,
    )


def succeeded(breaker: Breaker | None) -> Breaker | None:
    """The breaker after a delivery: closed and reset, or None when nothing needs writing."""
    if breaker is None or (breaker.failures == 0 and breaker.open_until == 0):
        return None
    return Breaker(version=breaker.version + 1)
