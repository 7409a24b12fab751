"""Pacing per routing key and the circuit breaker for the Events API (pure logic, no I/O).

**Pacing.** PagerDuty allows about ``limit`` events per routing key over a sliding ``window``
(120 per 60 s by default). A token bucket with capacity ``C`` and refill rate ``r`` lets through
at most ``C + r·window`` events in any window, so pdrelay uses ``C = max(1, limit // 6)`` and
``r = (limit - C) / window``: bursts of ``C`` go at once, and no window ever sees more than
``limit``. A 429 pauses the key for every dispatcher until ``paused_until``: for ``Retry-After`` when
PagerDuty sends one; else briefly (``throttle_pause_seconds``, 2 s by default), doubling only while
429s keep coming (a 429 within ``window`` of the last pause's end), up to ``throttle_max_pause_seconds``.
The bucket lives in the dedup table, shared by all dispatchers.

**Circuit breaker.** ``threshold`` consecutive retryable failures (5xx, timeouts, connection
errors; not 429, which is one key's business) open the breaker for ``cooldown`` seconds (5 s by default), doubling
up to ``max_cooldown`` (10 s) on each failed probe, so PagerDuty is probed at least every 10 s however
long it is down. While open, nobody calls PagerDuty: messages are put
back on the queue with a delay, without spending delivery attempts. After the cooldown one
dispatcher claims the probe; a success closes the breaker.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


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
        return "wait", max(1.0, breaker.probe_until - now), None
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
