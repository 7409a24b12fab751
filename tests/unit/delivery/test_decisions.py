"""The dedup table's rules: one incident per problem, stale events never win, repeats cost nothing."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pdrelay.delivery.decisions import DEAD_LETTERED, Event, Record, decide

T0, T1, T2, T3 = 1_000, 2_000, 3_000, 4_000
NOW, LEASE = 10_000_000, 15_000_000


def event(action: str, at: int, content: str = "h1") -> Event:
    return Event(
        pk="pk",
        dedup_key="dk",
        action=action,
        at=at,
        content_hash=content,
        route="r",
        format="alertmanager",
        identity="id",
        payload={"summary": "s"},
    )


def applied(*events: Event) -> Record | None:
    """The record after applying ``events`` in order, each delivered."""
    record: Record | None = None
    for ev in events:
        decision = decide(record, ev)
        if decision.record is not None and decision.write:
            record = replace(decision.record, delivered=True)
    return record


def test_a_first_trigger_opens_and_is_written_undelivered() -> None:
    decision = decide(None, event("trigger", T0))
    assert (decision.send, decision.reason) == ("trigger", "new")
    assert decision.record is not None
    assert decision.record.state == "triggered"
    assert decision.record.delivered is False
    assert decision.write


def test_a_repeated_unchanged_trigger_is_skipped() -> None:
    record = applied(event("trigger", T0))
    assert decide(record, event("trigger", T0)).send is None


def test_a_trigger_with_new_content_is_sent_as_an_update() -> None:
    record = applied(event("trigger", T0))
    decision = decide(record, event("trigger", T0, content="h2"))
    assert (decision.send, decision.reason) == ("trigger", "update")


def test_an_undelivered_event_is_retried_when_redelivered_and_takes_a_new_lease() -> None:
    decision = decide(None, event("trigger", T0))
    assert decision.record is not None
    again = decide(decision.record, event("trigger", T0), now=NOW, lease=LEASE)
    assert (again.send, again.reason, again.write) == ("trigger", "retry", True)
    assert again.record is not None
    assert again.record.version == decision.record.version + 1
    assert again.record.lease_until == NOW + LEASE


def test_a_copy_of_an_event_being_sent_waits_for_the_lease_then_retries_or_skips() -> None:
    sending = decide(None, event("trigger", T0), now=NOW, lease=LEASE).record
    assert sending is not None
    copy = decide(sending, event("trigger", T0), now=NOW + 1, lease=LEASE)
    assert (copy.send, copy.reason, copy.write) == (None, "in-flight", False)
    # the sender died mid-send: once its lease is over, the waiting copy sends
    assert decide(sending, event("trigger", T0), now=NOW + LEASE + 1, lease=LEASE).reason == "retry"
    # the sender delivered: the copy is a duplicate
    delivered = replace(sending, delivered=True, lease_until=0)
    assert decide(delivered, event("trigger", T0), now=NOW + 1, lease=LEASE).reason == "duplicate"


def test_while_a_send_is_in_flight_a_resolve_waits_so_it_cannot_overtake_the_trigger() -> None:
    sending = decide(None, event("trigger", T0), now=NOW, lease=LEASE).record
    assert sending is not None
    waiting = decide(sending, event("resolve", T1), now=NOW + 1, lease=LEASE)
    assert (waiting.send, waiting.reason, waiting.write) == (None, "after-trigger", False)
    # The sender died mid-send: the trigger comes back from the queue and is retried; the resolve
    # still waits for it rather than close an incident PagerDuty never opened.
    after_crash = decide(sending, event("resolve", T1), now=NOW + LEASE + 1, lease=LEASE)
    assert (after_crash.send, after_crash.reason) == (None, "after-trigger")


def test_a_resolve_closes_an_open_alert() -> None:
    record = applied(event("trigger", T0))
    decision = decide(record, event("resolve", T1))
    assert (decision.send, decision.reason) == ("resolve", "resolve")
    assert decision.record is not None
    assert decision.record.state == "resolved"


def test_a_late_duplicate_firing_after_the_resolve_does_not_reopen() -> None:
    record = applied(event("trigger", T0), event("resolve", T1))
    decision = decide(record, event("trigger", T0))
    assert (decision.send, decision.reason) == (None, "stale")


def test_a_new_firing_after_the_resolve_opens_a_new_episode() -> None:
    record = applied(event("trigger", T0), event("resolve", T1))
    decision = decide(record, event("trigger", T2))
    assert (decision.send, decision.reason) == ("trigger", "reopen")


def test_a_resolve_of_an_unknown_alert_is_forwarded_once_and_leaves_a_tombstone() -> None:
    """The table may have lost an alert PagerDuty still has open (restored, rebuilt): the resolve
    goes once; once delivered, its repeats are duplicates that cost nothing."""
    decision = decide(None, event("resolve", T1))
    assert (decision.send, decision.reason, decision.write) == ("resolve", "forward", True)
    assert decision.record is not None
    repeat = decide(replace(decision.record, delivered=True, lease_until=0), event("resolve", T1))
    assert (repeat.send, repeat.reason) == (None, "duplicate")
    assert decide(None, event("acknowledge", T1)).reason == "unknown"
    # the firing that SQS delivered after its resolve is then stale, not a new incident
    later = decide(replace(decision.record, delivered=True), event("trigger", T0))
    assert (later.send, later.reason) == (None, "stale")


def test_a_duplicate_resolve_is_skipped() -> None:
    record = applied(event("trigger", T0), event("resolve", T1))
    assert decide(record, event("resolve", T1)).reason == "duplicate"


def test_a_resolve_from_an_earlier_episode_does_not_close_the_current_one() -> None:
    record = applied(event("trigger", T0), event("resolve", T1), event("trigger", T2))
    decision = decide(record, event("resolve", T1 + 1))
    assert (decision.send, decision.reason) == (None, "stale")


def test_acknowledge_then_resolve() -> None:
    record = applied(event("trigger", T0))
    ack = decide(record, event("acknowledge", T1))
    assert ack.send == "acknowledge"
    record = applied(event("trigger", T0), event("acknowledge", T1))
    assert decide(record, event("acknowledge", T2)).send is None
    assert decide(record, event("resolve", T3)).send == "resolve"


def test_an_acknowledge_of_an_unknown_alert_is_skipped_without_a_write() -> None:
    decision = decide(None, event("acknowledge", T0))
    assert (decision.send, decision.write) == (None, False)


def test_versions_advance_with_every_applied_event() -> None:
    record = applied(event("trigger", T0), event("trigger", T0, "h2"), event("resolve", T1))
    assert record is not None
    assert (record.version, record.events) == (3, 3)


def test_a_later_start_while_open_makes_an_older_resolve_stale() -> None:
    """Fired at T0, recovered at T1 and fired again at T2, with the T1 resolve delivered last."""
    record = applied(event("trigger", T0), event("trigger", T2, content="h2"))
    decision = decide(record, event("resolve", T1))
    assert (decision.send, decision.reason) == (None, "stale")


def test_a_repeat_of_a_trigger_never_delivered_is_sent_not_skipped_as_unchanged() -> None:
    undelivered = decide(None, event("trigger", T0)).record  # e.g. it ended in the DLQ
    assert undelivered is not None
    decision = decide(undelivered, event("trigger", T1))
    assert decision.send == "trigger"


def test_an_older_notification_of_the_same_firing_does_not_overwrite_a_newer_one() -> None:
    newer = replace(event("trigger", T0, content="h2"), received=NOW + 10)
    older = replace(event("trigger", T0, content="h1"), received=NOW)
    record = applied(newer)
    assert decide(record, older).reason == "stale"


@pytest.mark.parametrize("action", ["acknowledge", "resolve"])
def test_events_after_a_trigger_not_yet_delivered_wait_for_it(action: str) -> None:
    """A trigger deferred (paced, breaker open, in back-off) and overtaken by its resolve still pages:
    the resolve waits and goes right after it, so PagerDuty hears both, in order."""
    undelivered = decide(None, event("trigger", T0)).record
    assert undelivered is not None
    waiting = decide(replace(undelivered, lease_until=0), event(action, T1))
    assert (waiting.send, waiting.reason, waiting.write) == (None, "after-trigger", False)
    delivered = replace(undelivered, delivered=True, lease_until=0)
    assert decide(delivered, event(action, T1)).send == action


def test_nothing_waits_for_a_trigger_that_went_to_the_dlq() -> None:
    undelivered = decide(None, event("trigger", T0)).record
    assert undelivered is not None
    given_up = replace(undelivered, lease_until=0, hold=DEAD_LETTERED)
    decision = decide(given_up, event("resolve", T1))
    assert (decision.send, decision.reason) == ("resolve", "resolve")  # the dispatcher records it: never paged
    # A redrive of the trigger retries it.
    assert decide(given_up, event("trigger", T0)).reason == "retry"


def test_a_resolve_timed_by_our_receipt_is_not_stale_against_a_sender_clock_running_ahead() -> None:
    ahead = replace(event("trigger", T2), received=NOW)  # the sender's clock says T2, later than ours
    record = applied(ahead)
    resolve = replace(event("resolve", T1), received=NOW + 5, own_time=False)  # no time of its own: T1 = receipt
    assert decide(record, resolve).send == "resolve"
    old_resolve = replace(event("resolve", T1), received=NOW - 5, own_time=False)
    assert decide(record, old_resolve).reason == "stale"


# -- an incident resolved at PagerDuty by hand (found by `pdrelay reconcile`) -----------------------
def resolved_by_hand(record: Record | None) -> Record:
    """What reconcile writes when PagerDuty shows the alert's incident resolved while it is open here."""
    assert record is not None
    return replace(record, pd_resolved_at=NOW, version=record.version + 1)


def after_mark(ev: Event) -> Event:
    """The event as received after reconcile marked the alert."""
    return replace(ev, received=NOW + 1)


def test_an_identical_repeat_is_unchanged_while_pagerduty_agrees() -> None:
    record = applied(event("trigger", T0))
    assert decide(record, event("trigger", T0, content="h1"), NOW).send is None


@pytest.mark.parametrize("at", [T0, T1])
def test_after_a_resolve_by_hand_the_identical_repeat_opens_a_new_incident(at: int) -> None:
    # Given an alert paged and resolved at PagerDuty by a person while it still fires
    record = resolved_by_hand(applied(event("trigger", T0)))
    # When the monitor repeats the very same notification (or a later one)
    decision = decide(record, after_mark(event("trigger", at)), NOW, LEASE)
    # Then it opens a new incident, as a new episode whose mark is gone
    assert (decision.send, decision.reason) == ("trigger", "reopen")
    assert decision.record is not None
    assert (decision.record.state, decision.record.paged, decision.record.pd_resolved_at) == ("triggered", False, 0)
    assert decision.record.started_at == max(T0, at)
    assert decision.write


def test_once_reopened_the_next_repeat_is_unchanged_again() -> None:
    record = resolved_by_hand(applied(event("trigger", T0)))
    reopened = decide(record, after_mark(event("trigger", T0)), NOW, LEASE).record
    assert reopened is not None
    delivered = replace(reopened, delivered=True, lease_until=0)
    assert decide(delivered, event("trigger", T0), NOW).send is None


def test_a_trigger_older_than_the_episode_stays_stale_after_a_resolve_by_hand() -> None:
    record = resolved_by_hand(applied(event("trigger", T1)))
    assert decide(record, after_mark(event("trigger", T0)), NOW).reason == "stale"


def test_an_old_copy_received_before_the_mark_does_not_reopen() -> None:
    # SQS's at-least-once delivery, a sender's retry or a redrive of the trigger PagerDuty already had
    record = resolved_by_hand(applied(replace(event("trigger", T0), received=NOW - 10)))
    copy = replace(event("trigger", T0), received=NOW - 10)
    assert decide(record, copy, NOW, LEASE).send is None


def test_a_resolve_after_a_resolve_by_hand_closes_the_alert_as_usual() -> None:
    record = resolved_by_hand(applied(event("trigger", T0)))
    decision = decide(record, event("resolve", T1), NOW, LEASE)
    assert (decision.send, decision.reason) == ("resolve", "resolve")
    assert decision.record is not None and decision.record.state == "resolved"


def test_a_trigger_being_sent_is_not_overtaken_by_the_reopen() -> None:
    record = resolved_by_hand(applied(event("trigger", T0)))
    busy = replace(record, lease_until=NOW + 1)
    assert decide(busy, after_mark(event("trigger", T0)), NOW, LEASE).reason == "in-flight"
