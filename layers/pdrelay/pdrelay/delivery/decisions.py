"""What to send for an alert event, given what the dedup table knows (pure logic, no I/O).

Rules, for an event with action *a*, time *t* (when the reported state began) and content *h*:

- nothing known: a trigger opens an incident; a resolve is forwarded once (``forward``: the table
  may have lost an alert PagerDuty still has open) and leaves a tombstone, so that repeats cost
  nothing and an older trigger delivered later stays stale; an acknowledge is skipped (``unknown``);
- an open alert (triggered/acknowledged): an event older than the episode's start is ``stale``; the
  very event last applied is ``duplicate`` once delivered and re-sent (``retry``) while not; a
  resolve or acknowledge waits while the trigger has not reached PagerDuty (``after-trigger``), so
  events of one alert reach PagerDuty in the order they were accepted, unless the route says
  otherwise for an episode that resolved before its trigger could go (``resolved_before_paged``:
  ``page``, the default, waits; ``record`` and ``drop`` end the episode without an incident,
  ``unpaged``, and the waiting trigger then finds itself stale); a trigger with unchanged
  content is ``unchanged``; with new content it is an ``update``; a resolve closes it; an
  acknowledge acknowledges a triggered alert;
- a resolved alert: a trigger newer than the resolve opens a new episode (``reopen``); anything
  else is ``stale`` or ``duplicate`` (a resolve not yet confirmed delivered is re-sent);
- an open alert whose incident a person resolved at PagerDuty (``pd_resolved_at``, set by
  ``pdrelay reconcile``, :mod:`pdrelay.ops.reconcile`): its next trigger received after the mark
  that is not stale, even an identical repeat, opens a new episode (``reopen``), so the problem
  still firing pages again.

Alert policy (maintenance windows, storm control; decided by the dispatcher, see
:mod:`pdrelay.policy.judge`) may keep a trigger from PagerDuty: the record then says why (``hold``) and
that no incident is open for this episode (``paged`` false). A held trigger's repeat, or its own
message put back when its window ends, is ``release``: a candidate to send again. Resolves and
acknowledges of an alert never paged go nowhere (the dispatcher records them without a call).

Sends for one alert never overlap: a decision that sends takes a lease on the item
(``lease_until``), released when the send ends. While another dispatcher holds the lease, a copy of
the same event and any other event that would send wait (``in-flight``) until the lease ends, so a
resolve can never overtake its trigger on the way to PagerDuty. A crashed holder's lease simply
expires, and the copy that waited retries the send.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from pdrelay.models import Action

Reason = Literal[
    "new",  # a trigger for an alert with no open incident: opens one
    "update",  # a trigger whose content changed while its incident is open: updates it
    "reopen",  # a trigger after the alert resolved (here, or at PagerDuty by hand): a new episode, a new incident
    "resolve",  # a resolve of an open (or opening) incident
    "acknowledge",  # an acknowledge of an open incident
    "retry",  # the event whose send was interrupted (its lease expired): send it again
    "release",  # a held trigger whose maintenance window ended: send it now
    "stale",  # older than the last event applied (SQS reordered or redelivered it): nothing to send
    "duplicate",  # the event already applied: nothing to send
    "unchanged",  # a repeat notification with the same content: nothing to send
    "unknown",  # an acknowledge for an alert the table does not know: nothing to send
    "forward",  # a resolve for an alert the table does not know: sent once (PagerDuty may have it open)
    "in-flight",  # another dispatcher is sending this alert's last event: wait for it
    "after-trigger",  # a resolve or acknowledge whose trigger has not reached PagerDuty yet: wait for it
    "unpaged",  # resolved before its trigger could go, on a route that records or drops such episodes
]
Unpaged = Literal["page", "record", "drop"]  # a route's ``resolved_before_paged``
DEAD_LETTERED = "dead-letter"  # ``hold`` of an alert whose trigger was put in the DLQ: later events do not wait
OPEN_STATES = ("triggered", "acknowledged")


@dataclass(frozen=True)
class Record:
    """One alert's row in the dedup table."""

    pk: str
    dedup_key: str
    state: str  # triggered | acknowledged | resolved
    started_at: int  # µs since epoch: start of the current (or last) episode
    event_at: int  # µs: time of the last event applied
    last_action: str
    content_hash: str
    delivered: bool
    version: int = 0
    route: str | None = None
    format: str = ""
    identity: str = ""
    payload: dict[str, Any] = field(default_factory=dict)
    events: int = 0
    sends: int = 0
    lease_until: int = 0  # µs: a dispatcher is sending this item's last event until then
    last_received: int = 0  # µs: when pdrelay received the last event applied
    updated_at: int = 0  # s: when the item was last written (set by the store)
    routing_key: str = ""  # kept so the sweeper can re-send a resolve; the table is encrypted
    paged: bool = False  # a trigger of the current episode reached PagerDuty (an incident is open)
    hold: str = ""  # why the episode's trigger was kept back: "window:<name>" or "rollup"
    drop_at_end: bool = False  # held by a window with send_held_at_end: false (even if the window is removed)
    rollup: str = ""  # the roll-up incident's dedup key this alert joined
    sent_at: int = 0  # µs: when a trigger was last sent for this alert
    suppressed: int = 0  # updates not sent because of the route's min_resend_seconds
    message: str = ""  # a held trigger's queue message, put back on the queue when its window ends
    destination: str | None = None
    send_at: int = 0  # µs: when the undelivered last event is due to be tried again (later events wait)
    targets: str = ""  # the route's routing keys when the trigger came (a fingerprint): changed → orphans
    before_paged: str = ""  # the episode resolved before its trigger reached PagerDuty: page | record | drop
    pd_resolved_at: int = 0  # µs: reconcile found the episode's incident resolved at PagerDuty (by a person)


@dataclass(frozen=True)
class Event:
    pk: str
    dedup_key: str
    action: Action
    at: int
    content_hash: str
    route: str | None
    format: str
    identity: str
    payload: dict[str, Any]
    routing_key: str = ""
    received: int = 0  # µs: when pdrelay received this event
    own_time: bool = True  # False: ``at`` is pdrelay's receipt time (the sender gave none)
    destination: str | None = None
    unpaged: Unpaged = "page"  # the route's resolved_before_paged
    targets: str = ""  # the route's routing keys now (a fingerprint)


@dataclass(frozen=True)
class Decision:
    send: Action | None  # the Events API action to send, or None
    reason: Reason
    record: Record | None  # the row as it stands after the decision
    write: bool = True  # whether ``record`` must be written (conditionally) before sending


def _applied(rec: Record | None, ev: Event, state: str, *, started_at: int, delivered: bool) -> Record:
    base = rec or Record(
        pk=ev.pk,
        dedup_key=ev.dedup_key,
        state=state,
        started_at=started_at,
        event_at=ev.at,
        last_action=ev.action,
        content_hash=ev.content_hash,
        delivered=delivered,
    )
    return replace(
        base,
        dedup_key=ev.dedup_key,
        state=state,
        started_at=started_at,
        event_at=max(ev.at, base.event_at) if rec else ev.at,
        last_action=ev.action,
        content_hash=ev.content_hash,
        delivered=delivered,
        version=base.version + 1 if rec else 1,
        route=ev.route,
        format=ev.format,
        identity=ev.identity,
        payload=ev.payload if ev.action == "trigger" or not base.payload else base.payload,
        events=base.events + 1 if rec else 1,
        routing_key=ev.routing_key or base.routing_key,
        last_received=max(ev.received, base.last_received if rec else 0),
        destination=ev.destination or base.destination,
        targets=ev.targets if ev.action == "trigger" and ev.targets else base.targets,
        send_at=0,
    )


def _new_episode(record: Record) -> Record:
    return replace(
        record,
        paged=False,
        hold="",
        drop_at_end=False,
        rollup="",
        suppressed=0,
        message="",
        before_paged="",
        pd_resolved_at=0,
    )


def _is_last(rec: Record, ev: Event) -> bool:
    return (rec.last_action, rec.event_at, rec.content_hash) == (ev.action, ev.at, ev.content_hash)


def decide(rec: Record | None, ev: Event, now: int = 0, lease: int = 0) -> Decision:
    """The decision for ``ev``; ``now`` and ``lease`` in µs (a sending decision holds the item
    until ``now + lease``)."""
    decision = _decide(rec, ev, now)
    if decision.send is None or decision.record is None:
        return decision
    if rec is not None and rec.lease_until > now and decision.reason != "retry":
        return Decision(None, "in-flight", None, write=False)
    return replace(decision, record=replace(decision.record, lease_until=now + lease))


def _is_stale(rec: Record, ev: Event) -> bool:
    # Older than the episode. An event timed by our receipt is only compared by receipt: the
    # episode's start may be the sender's clock, running ahead of ours.
    return ev.at < rec.started_at and (ev.own_time or ev.received <= rec.last_received)


def _decide(rec: Record | None, ev: Event, now: int) -> Decision:
    if (
        rec is not None
        and rec.state in OPEN_STATES
        and rec.hold.startswith("window:")
        and not rec.paged
        and ev.action == "trigger"
        and rec.delivered
        and not _is_stale(rec, ev)
    ):
        # Held by a maintenance window: a repeat, or the held message itself put back when the
        # window ended, may now go (the dispatcher holds it again if the window still runs).
        return Decision("trigger", "release", _applied(rec, ev, rec.state, started_at=rec.started_at, delivered=False))
    if (
        rec is not None
        and rec.pd_resolved_at
        and rec.state in OPEN_STATES
        and ev.action == "trigger"
        and ev.received > rec.pd_resolved_at
    ):
        # Only a trigger received after the mark: an older copy (SQS's at-least-once delivery, a
        # sender's retry, a redrive) is the event PagerDuty already had, decided by the rules below.
        # Its incident was resolved at PagerDuty by hand while the alert still fires here: the
        # trigger opens a new incident (PagerDuty opens one for a resolved key), even an exact repeat.
        if _is_stale(rec, ev):
            return Decision(None, "stale", None, write=False)
        return Decision(
            "trigger",
            "reopen",
            _new_episode(_applied(rec, ev, "triggered", started_at=max(rec.started_at, ev.at), delivered=False)),
        )
    if rec is None:
        if ev.action == "trigger":
            return Decision("trigger", "new", _applied(None, ev, "triggered", started_at=ev.at, delivered=False))
        if ev.action == "resolve":
            # The table may have lost the alert (restored, rebuilt, expired) while PagerDuty still has
            # its incident open: forward the resolve once (PagerDuty ignores it when nothing is open)
            # and leave a tombstone, so repeats cost nothing and a trigger delivered late is stale.
            tomb = _applied(None, ev, "resolved", started_at=ev.at, delivered=False)
            return Decision("resolve", "forward", tomb)
        return Decision(None, "unknown", None, write=False)

    if _is_last(rec, ev):
        if rec.delivered:
            return Decision(None, "duplicate", None, write=False)
        if rec.lease_until > now:
            # Being sent right now, or its sender died mid-send and this is its redelivery:
            # wait for the lease, then either it was delivered (duplicate) or it is ours to retry.
            return Decision(None, "in-flight", None, write=False)
        if rec.last_action == ev.action and (ev.action != "trigger" or rec.state in OPEN_STATES):
            return Decision(ev.action, "retry", replace(rec, version=rec.version + 1), write=True)

    if rec.state in OPEN_STATES:
        if _is_stale(rec, ev):
            return Decision(None, "stale", None, write=False)
        if ev.action != "trigger" and rec.last_action == "trigger" and not rec.delivered and not rec.hold:
            # The trigger is waiting (paced, breaker open, in back-off) or being retried. Resolving
            # or acknowledging an incident PagerDuty has not opened would do nothing, and the
            # trigger would then come back stale: the problem that happened would never be paged.
            # Wait for the trigger; this event goes right after it. (A trigger put in the DLQ is
            # marked ``hold = "dead-letter"`` and nothing waits for it.) A route may instead record
            # or drop such an episode: then no incident is opened for it (unless its trigger is
            # being sent right now: that send ends first).
            if ev.action == "acknowledge" or ev.unpaged == "page" or rec.lease_until > now:
                return Decision(None, "after-trigger", None, write=False)
            ended = _applied(rec, ev, "resolved", started_at=rec.started_at, delivered=True)
            return Decision(None, "unpaged", replace(ended, before_paged=ev.unpaged))
        if ev.action == "trigger":
            if ev.content_hash == rec.content_hash and rec.last_action == "trigger" and rec.delivered:
                return Decision(None, "unchanged", None, write=False)
            if ev.at <= rec.event_at and 0 < ev.received < rec.last_received:
                # An older notification of the same firing (retried or deferred) after a newer one.
                return Decision(None, "stale", None, write=False)
            # A later start while open means the alert recovered and fired again unseen (its resolve
            # lost or still on the way): the episode now starts here, so that older resolve is stale.
            return Decision(
                "trigger",
                "update",
                _applied(rec, ev, rec.state, started_at=max(rec.started_at, ev.at), delivered=False),
            )
        if ev.action == "resolve":
            resolved = _applied(rec, ev, "resolved", started_at=rec.started_at, delivered=False)
            if rec.paged and 0 < ev.received < rec.sent_at:
                resolved = replace(resolved, before_paged="page")  # it waited for its trigger
            return Decision("resolve", "resolve", resolved)
        if rec.state == "acknowledged":
            return Decision(None, "duplicate", None, write=False)
        return Decision(
            "acknowledge", "acknowledge", _applied(rec, ev, "acknowledged", started_at=rec.started_at, delivered=False)
        )

    # resolved
    if ev.action == "trigger" and ev.at > rec.event_at:
        return Decision(
            "trigger", "reopen", _new_episode(_applied(rec, ev, "triggered", started_at=ev.at, delivered=False))
        )
    if ev.action == "trigger" or ev.at < rec.started_at:
        return Decision(None, "stale", None, write=False)
    return Decision(None, "duplicate", None, write=False)
