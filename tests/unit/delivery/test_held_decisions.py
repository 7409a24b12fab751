"""Held alerts in the dedup decision: a repeat of a held trigger is a candidate to send again (the
policy decides whether its hold still stands), an older one is stale, a paged alert is never
released twice, and a new episode forgets the previous hold and roll-up."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pdrelay.delivery.decisions import Event, Record, decide


def event(action: str = "trigger", at: int = 2_000, content: str = "h1") -> Event:
    return Event(
        pk="pk",
        dedup_key="k",
        action=action,
        at=at,
        content_hash=content,
        route="r",
        format="f",
        identity="i",
        payload={},
        received=at,
    )


def held(**changes: Any) -> Record:
    base = Record(
        pk="pk",
        dedup_key="k",
        state="triggered",
        started_at=1_000,
        event_at=1_000,
        last_action="trigger",
        content_hash="h1",
        delivered=True,
        version=3,
        hold="window:db",
        message="{}",
        last_received=1_000,
    )
    return replace(base, **changes)


def test_a_repeat_of_a_held_trigger_is_a_candidate_to_send_again() -> None:
    decision = decide(held(), event(at=1_000), now=5_000, lease=100)
    assert (decision.send, decision.reason) == ("trigger", "release")
    assert decision.record is not None and decision.record.hold == "window:db"  # the policy decides again
    assert decision.record.lease_until == 5_100


def test_an_older_trigger_of_a_held_alert_is_still_stale() -> None:
    assert decide(held(), event(at=500), now=5_000).reason == "stale"


def test_a_paged_alert_is_never_released_again() -> None:
    decision = decide(held(hold="", paged=True), event(at=1_000), now=5_000)
    assert decision.reason == "duplicate"


def test_a_new_episode_forgets_the_previous_hold_and_roll_up() -> None:
    resolved = held(
        state="resolved", last_action="resolve", hold="rollup", rollup="pdrelay-rollup:r:1", suppressed=4, paged=False
    )
    decision = decide(resolved, event(at=3_000), now=5_000)
    assert decision.reason == "reopen" and decision.record is not None
    assert (decision.record.hold, decision.record.rollup, decision.record.suppressed, decision.record.paged) == (
        "",
        "",
        0,
        False,
    )
