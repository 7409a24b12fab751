"""Pacing never lets a routing key exceed its window; the breaker opens, probes and closes."""

from __future__ import annotations

from pdrelay.delivery.pacing import (
    Breaker,
    BreakerPolicy,
    PacingPolicy,
    admit,
    failed,
    succeeded,
    take_token,
    throttled,
)

POLICY = PacingPolicy(limit=120, window_seconds=60, throttle_pause_seconds=60)


def send_times(policy: PacingPolicy, seconds: float, step: float = 0.01) -> list[float]:
    """When a greedy sender gets tokens, trying every ``step`` seconds for ``seconds``."""
    bucket, sent, now = None, [], 0.0
    while now < seconds:
        wait, after = take_token(bucket, now, policy)
        if wait == 0:
            bucket = after
            sent.append(now)
        now += step
    return sent


def max_in_window(times: list[float], window: float) -> int:
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def test_no_sixty_second_window_sees_more_than_the_limit() -> None:
    times = send_times(POLICY, 300, step=0.05)
    assert max_in_window(times, 60) <= 120
    assert len(times) >= 4 * 100  # and the key is not starved: ~limit per window in the long run


def test_a_burst_goes_at_once_then_waits_are_announced() -> None:
    bucket = None
    for _ in range(int(POLICY.capacity)):
        wait, bucket = take_token(bucket, 0.0, POLICY)
        assert wait == 0
    wait, _ = take_token(bucket, 0.0, POLICY)
    assert 0 < wait <= 1 / POLICY.rate


def test_a_429_pauses_the_key_for_the_pause() -> None:
    bucket = throttled(None, 100.0, pause=30)
    wait, _ = take_token(bucket, 110.0, POLICY)
    assert wait == 20.0
    wait, _ = take_token(bucket, 131.0, POLICY)
    assert wait == 0


BREAKER = BreakerPolicy(threshold=3, cooldown_seconds=10, max_cooldown_seconds=40, probe_seconds=5)


def test_consecutive_failures_open_the_breaker_then_one_probe_is_allowed() -> None:
    breaker: Breaker | None = None
    for _ in range(2):
        breaker = failed(breaker, 0.0, BREAKER)
        assert admit(breaker, 0.0, BREAKER)[0] == "send"
    breaker = failed(breaker, 0.0, BREAKER)
    verdict, wait, _ = admit(breaker, 1.0, BREAKER)
    assert (verdict, wait) == ("wait", 9.0)
    verdict, _, claim = admit(breaker, 10.5, BREAKER)
    assert verdict == "probe" and claim is not None
    assert admit(claim, 11.0, BREAKER)[0] == "wait"  # only one prober at a time


def test_a_failed_probe_doubles_the_cooldown_up_to_the_cap_and_a_success_closes() -> None:
    breaker = None
    for _ in range(3):
        breaker = failed(breaker, 0.0, BREAKER)
    assert breaker is not None and breaker.cooldown == 10
    breaker = failed(breaker, 11.0, BREAKER)
    assert breaker.cooldown == 20 and breaker.open_until == 31.0
    breaker = failed(breaker, 32.0, BREAKER)
    breaker = failed(breaker, 73.0, BREAKER)
    assert breaker.cooldown == 40
    closed = succeeded(breaker)
    assert closed is not None and closed.failures == 0 and admit(closed, 74.0, BREAKER)[0] == "send"
    assert succeeded(closed) is None  # nothing to write when already closed
