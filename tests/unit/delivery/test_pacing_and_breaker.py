"""Pacing never lets a routing key exceed its window (the callers' token bucket, the keys' send
schedule); the breaker opens, probes and closes."""

from __future__ import annotations

import heapq
import itertools
import math
import random
from typing import Any

import pytest

from pdrelay.delivery.pacing import (
    Allowance,
    Breaker,
    BreakerPolicy,
    PacingPolicy,
    Schedule,
    SchedulePolicy,
    Slot,
    admit,
    failed,
    moved,
    paused,
    reserve,
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


# -- the send schedule: one slot per message, resolves first ---------------------------------------------
def schedule_run(
    policy: SchedulePolicy, *, load: float, resolve_share: float, seconds: float = 180, seed: int = 7
) -> dict[str, Any]:
    """Messages for one key arriving at ``load`` times its limit, each dispatcher doing what the
    dispatcher does with the pure functions (its own allowance, else a slot; back on the queue for
    whole seconds, at most a second early; a trigger back for its slot checks whether it moved)."""
    rnd = random.Random(seed)
    schedule: Schedule | None = None
    allowances = [Allowance() for _ in range(policy.processes)]
    queue: list[tuple[float, int, str, Slot | None, int, float]] = []
    arrival, n = 0.0, 0
    while arrival < seconds:
        arrival += rnd.expovariate(policy.limit / policy.window_seconds * load)
        kind = "resolve" if rnd.random() < resolve_share else "trigger"
        heapq.heappush(queue, (arrival, n, kind, None, 0, arrival))
        n += 1
    sent: list[float] = []
    deferrals: dict[str, list[int]] = {"trigger": [], "resolve": []}
    waits: dict[str, list[float]] = {"trigger": [], "resolve": []}
    while queue:
        now, n, kind, slot, deferred, arrived = heapq.heappop(queue)
        given: Slot | None = None
        if slot is not None:
            if slot.firm or kind == "resolve" or slot.at > now + policy.early:
                given = slot
            else:
                given, after = moved(slot, schedule, policy)
                schedule = after or schedule
        elif not allowances[rnd.randrange(policy.processes)].take("key", now, policy):
            given, schedule = reserve(schedule, now, policy, priority=kind == "resolve")
        if given is not None and given.at > now + policy.early:
            heapq.heappush(
                queue, (now + max(1, math.floor(given.at - now + 0.01)), n, kind, given, deferred + 1, arrived)
            )
            continue
        at = max(now, given.at) if given is not None else now
        sent.append(at)
        deferrals[kind].append(deferred)
        waits[kind].append(at - arrived)
    sent.sort()
    middle = [t for t in sent if 60 <= t < 60 + policy.window_seconds]
    return {
        "max_in_window": max_in_window(sent, policy.window_seconds),
        "middle_window": len(middle),
        "deferrals": max(deferrals["trigger"] + deferrals["resolve"]),
        "trigger_wait": sum(waits["trigger"]) / max(1, len(waits["trigger"])),
        "resolve_wait": sum(waits["resolve"]) / max(1, len(waits["resolve"])),
    }


@pytest.mark.parametrize("processes", [1, 5])
@pytest.mark.parametrize("resolve_share", [0.0, 0.1, 0.3])
def test_at_three_times_the_limit_each_message_is_put_back_at_most_twice_resolves_first_and_the_rate_holds(
    processes: int, resolve_share: float
) -> None:
    policy = SchedulePolicy(limit=120, window_seconds=60, processes=processes)
    run = schedule_run(policy, load=3.0, resolve_share=resolve_share)
    assert run["max_in_window"] <= 120  # no window ever sees more than the limit
    assert run["middle_window"] >= 0.95 * 120  # and the key is used to within 5 % of it
    assert run["deferrals"] <= 2
    if resolve_share:
        assert run["resolve_wait"] < run["trigger_wait"] / 3


def test_a_key_far_below_its_limit_sends_on_each_dispatchers_own_allowance() -> None:
    policy = SchedulePolicy(limit=120, window_seconds=60, processes=5)
    allowance = Allowance()
    assert policy.own_allowance == 1  # (burst 6 - 1) shared by 5: the schedule keeps one slot at once
    assert allowance.take("key", 0.0, policy) and not allowance.take("key", 30.0, policy)
    assert allowance.take("key", 60.0, policy)  # a minute later: its own again, no shared item read
    allowance.pause("key", 200.0)  # a 429 seen here: the schedule decides until the pause ends
    assert not allowance.take("key", 150.0, policy) and allowance.take("key", 201.0, policy)


def test_a_resolve_goes_ahead_of_scheduled_triggers_which_move_once_and_then_keep_their_promise() -> None:
    policy = SchedulePolicy(limit=6, window_seconds=60, processes=1)  # one slot per 12 s
    step = policy.interval
    schedule: Schedule | None = None
    triggers = []
    for _ in range(3):
        slot, schedule = reserve(schedule, 0.0, policy, priority=False)
        triggers.append(slot)
    assert [s.at for s in triggers] == pytest.approx([0.0, step, 2 * step])
    resolve, schedule = reserve(schedule, 1.0, policy, priority=True)
    assert resolve.at == pytest.approx(step)  # the first slot from now on, ahead of the waiting triggers
    same, after = moved(triggers[1], schedule, policy)
    assert same.at == pytest.approx(2 * step) and same.firm and after is not None  # moved once...
    later, _ = reserve(after, 2.0, policy, priority=True)
    assert later.at >= after.locked_until > same.at  # ...and a later resolve does not take its slot
    assert moved(same, after, policy) == (same, None)
    assert moved(triggers[0], None, policy) == (triggers[0], None)


def test_a_429_pauses_both_lanes_of_the_schedule() -> None:
    policy = SchedulePolicy(limit=120, window_seconds=60, throttle_pause_seconds=2)
    schedule = paused(None, 100.0, None, policy)
    assert reserve(schedule, 100.5, policy, priority=False)[0].at == 102.0
    assert reserve(schedule, 100.5, policy, priority=True)[0].at == 102.0
    assert paused(schedule, 100.0, 30, policy).paused_until == 130.0  # Retry-After is honoured
