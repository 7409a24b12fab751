"""Pacing never lets a routing key exceed its window; the breaker opens, probes and closes."""

from __future__ import annotations

import itertools

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
from pdrelay.settings import Settings

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


def test_a_429_with_retry_after_pauses_the_key_for_exactly_that() -> None:
    bucket = throttled(None, 100.0, 30, POLICY)
    wait, _ = take_token(bucket, 110.0, POLICY)
    assert wait == 20.0
    wait, _ = take_token(bucket, 131.0, POLICY)
    assert wait == 0


def pauses(policy: PacingPolicy, times: list[float]) -> list[float]:
    """The pause each 429 without Retry-After gets, for 429s answered at ``times``."""
    bucket, result = None, []
    for now in times:
        bucket = throttled(bucket, now, None, policy)
        result.append(bucket.paused_until - now)
    return result


def test_a_429_without_retry_after_pauses_briefly_and_backs_off_only_while_429s_continue() -> None:
    brief = PacingPolicy(limit=120, window_seconds=60, throttle_pause_seconds=2, throttle_max_pause_seconds=60)
    # Three in a row, each right after the last pause: 2 + 4 + 8 = 14 s in all (a fixed 60 s pause took 180 s).
    assert pauses(brief, [0.0, 2.0, 6.0]) == [2.0, 4.0, 8.0]
    # They keep coming: the pause doubles up to the longest and stays there.
    in_a_row = [0.0]
    for pause in pauses(brief, [0.0] * 8)[:-1]:
        in_a_row.append(in_a_row[-1] + pause)
    assert pauses(brief, in_a_row) == [2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]
    # A 429 long after the last pause ended starts again from the brief pause.
    assert pauses(brief, [0.0, 2.0, 500.0]) == [2.0, 4.0, 2.0]


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


def test_with_the_default_schedule_pagerduty_is_probed_at_least_every_10_s_however_long_it_is_down() -> None:
    s = Settings.from_env({})  # the defaults: 5 s, doubling to at most 10 s
    policy = BreakerPolicy(s.breaker_threshold, s.breaker_cooldown_seconds, s.breaker_max_cooldown_seconds)
    breaker: Breaker | None = None
    for _ in range(policy.threshold):
        breaker = failed(breaker, 0.0, policy)
    assert breaker is not None
    probes, now = [], 0.0
    while now < 3600:  # an hour's outage: every probe fails
        verdict, _wait, claim = admit(breaker, now, policy)
        if verdict == "probe":
            assert claim is not None
            probes.append(now)
            breaker = failed(claim, now, policy)
        now += 0.5
    gaps = [b - a for a, b in itertools.pairwise(probes)]
    assert probes[0] <= 5.0 and max(gaps) <= 10.0 and len(probes) >= 350
