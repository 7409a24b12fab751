"""Delivery scenarios on a driven clock: what the delivery engine promises, measured and printed.

Each scenario starts from fresh queues, table and emulator state and runs the real ingest and
dispatch handlers against moto and the PagerDuty emulator over HTTP, while the driver moves time
(see ``scenario_harness``): a ten-minute outage takes seconds. The promises:

- nothing accepted is lost and nothing is duplicated, in every scenario;
- a single transient fault (a 500, a dropped connection) delays delivery by at most 5 s; three 429s
  without Retry-After by the key's documented pauses, 2 + 4 + 8 s;
- after an outage of any length, the backlog is delivered within 15 s of its end;
- at 3x a routing key's limit, no message is deferred more than twice, the delivered rate is
  within 5 % of the limit (and never above it), and resolves are delivered sooner than triggers;
- no incident is left open that should have resolved: not when a resolve overtakes its waiting
  trigger, nor after the alert's table item was lost, a destination removed or a routing key rotated.

A table of the figures is printed at the end (``test_z_summary``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from pdrelay.local.emulator import EmulatorServer
from tests.conftest import unique
from tests.e2e.scenario_harness import (
    PAYMENTS_KEY,
    PLATFORM_KEY,
    ROTATED_KEY,
    TEAM_KEY,
    Relay,
    Row,
    config_doc,
    driven_relay,
    mean,
)

pytestmark = pytest.mark.e2e

TRANSIENT_BUDGET = 5.0  # seconds a single transient fault may add
THROTTLED_BUDGET = 2.0 + 4.0 + 8.0 + 1.0  # three 429s in a row: the key's pauses (and a second's rounding)
OUTAGE_BUDGET = 15.0  # seconds after an outage ends by which its backlog is delivered
# One routing key's limit in scenarios 6 and 7a (PDRELAY_RATE_LIMIT and the emulator's): small, so that
# 3x it for a minute stays quick on moto.
LIMIT, WINDOW = 30, 60.0
RATE_ENV = {"PDRELAY_RATE_LIMIT": str(LIMIT), "PDRELAY_RATE_WINDOW_SECONDS": str(WINDOW)}

ROWS: dict[str, Row] = {}

OpenRelay = Callable[..., AbstractContextManager[Relay]]


@pytest.fixture(scope="module")
def pd() -> Iterator[EmulatorServer]:
    server = EmulatorServer().start()
    yield server
    server.stop()


@pytest.fixture
def relay(pd: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> OpenRelay:
    """``with relay(**env) as h``: a fresh relay on a stopped clock, with these PDRELAY_* settings."""

    def open_relay(tick: float = 0.25, **env: str) -> AbstractContextManager[Relay]:
        return driven_relay(pd, tmp_path, monkeypatch, tick=tick, **env)

    return open_relay


def record(h: Relay, scenario: str, settled: bool) -> Row:
    row = h.row(scenario, settled)
    ROWS[scenario] = row
    return row


def assert_nothing_lost(row: Row) -> None:
    assert row.settled, f"the queue did not empty: {row}"
    assert (row.lost, row.duplicates, row.left_open, row.dead_lettered) == (0, 0, 0, 0), str(row)
    assert row.in_order == row.accepted, str(row)


# -- a single transient fault --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("scenario", "fault", "budget"),
    [
        ("1. one 500 on a new trigger", {"mode": "status", "status": 500, "count": 1}, TRANSIENT_BUDGET),
        ("2. one dropped connection", {"mode": "drop", "count": 1}, TRANSIENT_BUDGET),
        ("3. three 429s, no Retry-After", {"mode": "status", "status": 429, "count": 3}, THROTTLED_BUDGET),
    ],
)
def test_a_single_transient_fault_delays_delivery_by_at_most_5_s(
    relay: OpenRelay, scenario: str, fault: dict[str, object], budget: float
) -> None:
    with relay() as h:
        h.faults(fault)
        h.post("payments", "trigger", unique("s"))
        row = record(h, scenario, h.settle())
    assert_nothing_lost(row)
    # Without the fault it would be applied at once (driven time stands still while it is sent).
    assert row.max_delay <= budget, str(row)


# -- outages ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("scenario", "outage", "alerts", "tick", "tick_after"),
    [
        ("4. 60 s outage, 20 alerts during it", 60.0, 20, 0.25, 0.25),
        ("5. 10 min outage, 20 alerts during it", 600.0, 20, 2.0, 0.25),
        ("5b. 10 min outage, 1 alert at its start", 600.0, 1, 2.0, 1.0),
    ],
)
def test_the_backlog_of_an_outage_is_delivered_within_15_s_of_its_end(
    relay: OpenRelay, scenario: str, outage: float, alerts: int, tick: float, tick_after: float
) -> None:
    with relay(tick=tick) as h:  # coarser steps while nothing can be delivered: fewer polls, same figures
        h.faults({"mode": "outage", "status": 503})
        for i in range(alerts):
            h.run_until(i * outage / alerts)
            h.post("payments", "trigger", unique("o"))
        h.run_until(outage)
        h.end_faults()
        h.tick = tick_after
        row = record(h, scenario, h.settle())
    assert_nothing_lost(row)
    assert row.after_fault is not None and row.after_fault <= OUTAGE_BUDGET, str(row)


# -- sustained input above the limit ---------------------------------------------------------------------
def test_at_3x_the_limit_the_rate_holds_at_the_limit_with_few_deferrals_and_resolves_first(relay: OpenRelay) -> None:
    scenario = f"6. 3x the limit ({LIMIT}/{WINDOW:g} s) for {WINDOW:g} s"
    with relay(tick=0.5, **RATE_ENV) as h:  # slots are seconds apart: half-second steps resolve them
        # Alerts opened earlier, whose resolves arrive among the new triggers.
        opened = [h.post("payments", "trigger", unique("open")) for _ in range(LIMIT)]
        assert h.settle()
        h.run_until(h.now + WINDOW + 1)  # the key's recent sends out of every window
        h.faults({"mode": "rate_limit", "limit": LIMIT, "window": WINDOW})
        h.measure_from_now()
        start, spacing = h.now, WINDOW / (3 * LIMIT)
        for i in range(3 * LIMIT):
            h.run_until(start + i * spacing)
            if i % 3 == 2:
                h.post("payments", "resolve", opened[i // 3])
            else:
                h.post("payments", "trigger", unique("new"))
        h.run_until(start + WINDOW)
        h.fault_ended()  # the input's end: the rest is backlog
        row = record(h, scenario, h.settle())
    times = row.applied_times
    rate = (len(times) - 1) / (times[-1] - times[0]) * WINDOW if len(times) > 1 else 0.0
    busiest = max((sum(1 for t in times if s <= t < s + WINDOW) for s in times), default=0)
    resolves, triggers = mean(row.latency.get("resolve", [])), mean(row.latency.get("trigger", []))
    row.notes.append(
        f"delivered {rate:.2f} per {WINDOW:g} s (limit {LIMIT}), busiest {WINDOW:g} s window {busiest}; "
        f"mean time to delivery: resolves {resolves:.1f} s, triggers {triggers:.1f} s"
    )
    assert_nothing_lost(row)
    assert busiest <= LIMIT, str(row)
    assert 0.95 * LIMIT <= rate <= LIMIT + 1e-6, str(row)
    assert row.max_deferrals <= 2, str(row)
    assert resolves < triggers, str(row)


# -- a resolve that overtakes its waiting trigger ----------------------------------------------------------
def assert_each_triggered_then_resolved(h: Relay, keys: list[str]) -> None:
    for key in keys:
        (incident,) = [i for i in h.pd.state.snapshot(PAYMENTS_KEY) if i["dedup_key"] == key]
        assert [e["action"] for e in incident["log"]] == ["trigger", "resolve"], incident
        assert incident["status"] == "resolved", incident


def test_7a_a_resolve_overtaking_a_paced_trigger_goes_right_after_it(relay: OpenRelay) -> None:
    with relay(**RATE_ENV) as h:
        keys = [h.post("payments", "trigger", unique("paced")) for _ in range(6)]
        h.run_until(0.5)  # what the key's burst allows sent, the rest paced
        waiting = len(keys) - len(h.pd.state.snapshot(PAYMENTS_KEY))
        for key in keys:
            h.post("payments", "resolve", key)
        h.fault_ended()  # no fault: from the last input
        row = record(h, "7a. resolve overtakes a paced trigger", h.settle())
        row.notes.append(f"{waiting} of {len(keys)} triggers waiting when their resolves arrived")
    assert waiting > 0, "the scenario needs triggers that wait"
    assert_nothing_lost(row)
    assert_each_triggered_then_resolved(h, keys)


def test_7b_a_resolve_overtaking_a_trigger_held_by_the_open_breaker_goes_right_after_it(relay: OpenRelay) -> None:
    with relay() as h:
        h.faults({"mode": "outage", "status": 503})
        failed = [h.post("payments", "trigger", unique("failed")) for _ in range(5)]  # opens the breaker
        h.run_until(1)
        held = [h.post("payments", "trigger", unique("held")) for _ in range(3)]
        h.run_until(2)
        for key in failed + held:
            h.post("payments", "resolve", key)
        h.run_until(30)
        h.end_faults()
        row = record(h, "7b. resolve overtakes a trigger, breaker open", h.settle())
    assert_nothing_lost(row)
    assert_each_triggered_then_resolved(h, failed + held)


def test_7c_a_resolve_overtaking_a_trigger_in_back_off_goes_right_after_it(relay: OpenRelay) -> None:
    with relay() as h:
        h.faults({"mode": "status", "status": 500, "count": 3})
        keys = [h.post("payments", "trigger", unique("backoff")) for _ in range(3)]
        h.run_until(0.5)
        for key in keys:
            h.post("payments", "resolve", key)
        row = record(h, "7c. resolve overtakes a trigger in back-off", h.settle())
    assert_nothing_lost(row)
    assert_each_triggered_then_resolved(h, keys)


# -- state lost or changed between trigger and resolve -------------------------------------------------------
def test_8_a_resolve_after_the_table_item_was_lost_still_resolves_the_incident(relay: OpenRelay) -> None:
    with relay() as h:
        keys = [h.post("payments", "trigger", unique("forgotten")) for _ in range(3)]
        assert h.settle()
        assert all(h.forget_alert(key) for key in keys)
        h.run_until(h.now + 1)
        for key in keys:
            h.post("payments", "resolve", key)
        h.fault_ended()
        row = record(h, "8. table item lost before the resolve", h.settle())
    assert_nothing_lost(row)


@pytest.mark.parametrize(
    ("scenario", "after"),
    [
        ("9a. destination removed, incidents open", {"team": TEAM_KEY}),
        ("9b. routing key rotated, incidents open", {"team": ROTATED_KEY, "platform": PLATFORM_KEY}),
    ],
)
def test_9_a_resolve_closes_incidents_opened_under_a_removed_destination_or_an_old_key(
    relay: OpenRelay, scenario: str, after: dict[str, str]
) -> None:
    with relay() as h:
        keys = [h.post("shop", "trigger", unique("moved")) for _ in range(3)]
        assert h.settle()
        h.configure(config_doc(shop=after))
        h.run_until(h.now + 1)
        for key in keys:
            # PagerDuty must close each incident where it was opened; a new key has none to close.
            h.post("shop", "resolve", key, expect_on=[TEAM_KEY, PLATFORM_KEY])
        h.fault_ended()
        row = record(h, scenario, h.settle())
    assert_nothing_lost(row)


# -- the table -------------------------------------------------------------------------------------------------
def test_z_summary(capsys: pytest.CaptureFixture[str]) -> None:
    header = (
        f"{'scenario':<46} {'accepted':>8} {'in order':>8} {'lost':>4} {'dup':>3} {'open':>4} "
        f"{'deferrals max/mean':>18} {'s after fault':>13} {'max delay s':>11} {'API calls':>9}"
    )
    lines = ["", "", "delivery scenarios (driven clock)", header, "-" * len(header)]
    notes = []
    for name in sorted(ROWS):
        r = ROWS[name]
        after = "-" if r.after_fault is None else f"{r.after_fault:.1f}"
        unsettled = "" if r.settled else "  (did not settle)"
        lines.append(
            f"{r.scenario:<46} {r.accepted:>8} {r.in_order:>8} {r.lost:>4} {r.duplicates:>3} "
            f"{r.left_open:>4} {f'{r.max_deferrals} / {r.mean_deferrals:.1f}':>18} {after:>13} {r.max_delay:>11.1f} "
            f"{r.calls:>9}"
            f"{unsettled}"
        )
        latency = ", ".join(f"{action} {mean(values):.1f} s" for action, values in sorted(r.latency.items()))
        why = ", ".join(f"{reason} x{n}" for reason, n in r.reasons.most_common(4))
        notes.append(f"  {name.split('.')[0]}: mean accepted->PagerDuty {latency}; retries {r.retries}; {why}")
        notes.extend(f"      {note}" for note in r.notes)
    legend = [
        "",
        "accepted: events answered 202, once per routing key PagerDuty must apply them on (driven time throughout)",
        "lost: not applied (in the DLQ or still queued); open: incidents that should have resolved",
        "deferrals: copies of one message put back on the queue (a back-off redelivery is a retry, not a deferral)",
        "s after fault: from the fault's end (without one: the last input) to PagerDuty's last application",
        "max delay: the longest time from ingest's 202 to PagerDuty applying the event",
    ]
    with capsys.disabled():
        print("\n".join([*lines, *legend, "", *notes]))
