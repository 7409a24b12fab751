"""Alert policy at the dispatcher: maintenance windows and storm control.

The dedup decision (:mod:`pdrelay.delivery.decisions`) says what PagerDuty should hear; this module says
whether it may hear it now. For a trigger, in order:

1. an alert that joined a storm's roll-up stays in it until it resolves (its updates are recorded);
2. a maintenance window or silence that applies holds it: recorded (``hold = "window:<name>"``,
   the queue message kept), not sent; when the window ends the sweeper puts the message back on
   the queue (unless the window says ``send_held_at_end: false``);
3. an update to an incident already open is suppressed if the last trigger went out less than the
   route's ``storm.min_resend_seconds`` ago;
4. a trigger that would open a new incident takes a slot of the route's ``storm.max_new_per_minute``
   for its destination (a bucket of that many, refilled at that rate per minute); with none left
   it joins the roll-up incident instead.

A resolve or acknowledge always passes, except for an alert PagerDuty never heard of (held or
rolled up before any trigger of its episode went out): it is recorded without a call, and a
rolled-up alert leaves its roll-up, which resolves once its last member has. ``pdrelay test``
probes skip windows and storm control.

Windows come from the configuration document and from ``pdrelay maintenance`` (a control item in
the dedup table, cached for ``PDRELAY_WINDOWS_MAX_AGE``, 15 s by default).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from pydantic import ValidationError

from pdrelay.config import RelayConfig, StormControl
from pdrelay.delivery.decisions import OPEN_STATES, Decision, Record
from pdrelay.errors import ConcurrentUpdate
from pdrelay.models import QueueMessage
from pdrelay.observability import logger
from pdrelay.policy.windows import Window, holding
from pdrelay.table import WINDOWS_KEY, DedupStore, read_modify_write, rollup_key, storm_key
from pdrelay.timeutil import to_micros

WINDOWS_CACHE_SECONDS = 15.0
ROLLUP_LISTED = 50
ROLLUP_PREFIX = "pdrelay-rollup:"  # a roll-up incident's dedup key: pdrelay-rollup:<route or ->:<time>-<random>


# -- maintenance windows kept in the table ------------------------------------------------------------
def stored_windows(store: DedupStore, *, consistent: bool = True) -> tuple[list[Window], int]:
    """Windows added with ``pdrelay maintenance add`` (invalid entries are skipped and logged);
    ``consistent`` false: an eventually consistent read, half the read units (the dispatcher's
    cached copy, up to ``PDRELAY_WINDOWS_MAX_AGE`` old anyway)."""
    doc, version = store.get_doc(WINDOWS_KEY, consistent=consistent)
    windows = []
    for raw in doc.get("windows", []):
        try:
            windows.append(Window.model_validate(raw))
        except ValidationError:
            logger.warning("ignoring an unreadable maintenance window", extra={"window": str(raw)[:200]})
    return windows, version


def save_windows(store: DedupStore, change: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]) -> list[Window]:
    """Apply ``change`` to the stored windows (as JSON documents), retrying on concurrent edits."""

    def step() -> list[Window]:
        doc, version = store.get_doc(WINDOWS_KEY)
        after = change(list(doc.get("windows", [])))
        windows = [Window.model_validate(raw) for raw in after]
        store.put_doc(WINDOWS_KEY, {"windows": after}, version, expires=False)
        return windows

    return read_modify_write(step, "the maintenance windows")


VerdictKind = Literal[
    "send",  # send the decision's event now
    "hold",  # a maintenance window holds the trigger: record it, page when the window ends
    "suppress",  # an update within min_resend_seconds: record it, send nothing
    "quiet",  # an event of an alert in a roll-up: the roll-up incident speaks for it
    "local",  # a resolve or acknowledge of an alert never paged: record it, send nothing
    "rollup",  # over the storm cap: join the route's roll-up incident
    "leave",  # a rolled-up alert resolved: leave the roll-up (which resolves with its last member)
]


@dataclass
class Verdict:
    """What the dispatcher does with a sending decision."""

    kind: VerdictKind
    decision: Decision
    window: Window | None = None


@dataclass
class Policy:
    store: DedupStore
    config: Callable[[], RelayConfig | None]
    clock: Callable[[], float] = time.time
    cache_seconds: float = WINDOWS_CACHE_SECONDS
    _windows_cache: tuple[float, list[Window]] = (float("-inf"), [])

    # -- inputs ----------------------------------------------------------------------------------
    def windows(self) -> list[Window]:
        config = self.config()
        read_at, cached = self._windows_cache
        if self.clock() - read_at >= self.cache_seconds:
            cached, _version = stored_windows(self.store, consistent=False)
            self._windows_cache = (self.clock(), cached)
        return [*(config.maintenance if config else ()), *cached]

    def storm(self, route: str | None) -> StormControl:
        config = self.config()
        found = config.routes.get(route or "") if config else None
        return found.storm if found is not None else StormControl()

    def holding(self, message: QueueMessage, now: datetime, windows: Sequence[Window] | None = None) -> Window | None:
        if message.probe:
            return None
        return holding(self.windows() if windows is None else windows, message.route, message.alert, now)

    # -- the verdict --------------------------------------------------------------------------------
    def judge(
        self, current: Record | None, decision: Decision, message: QueueMessage, now: datetime, body: str
    ) -> Verdict:
        record = decision.record
        assert record is not None and decision.send is not None
        if decision.send != "trigger":
            # (A test probe's resolve always goes: its report shows each destination's answer.)
            unpaged = current is not None and bool(current.hold) and not current.paged and not message.probe
            if unpaged and current is not None and current.hold == "rollup" and decision.send == "resolve":
                # Also on a retry (the record already says resolved): the roll-up's own resolve may
                # be what failed, and only this message will send it again.
                return Verdict("leave", replace(decision, record=replace(record, hold="rollup", rollup=current.rollup)))
            if unpaged and current is not None and current.state in OPEN_STATES:
                resolving = decision.send == "resolve"
                # An acknowledge keeps a held alert's message: it still fires, and goes out when
                # its window ends (as a trigger: PagerDuty then shows it unacknowledged).
                done = replace(
                    record,
                    delivered=True,
                    lease_until=0,
                    hold="" if resolving else current.hold,
                    message="" if resolving else current.message,
                )
                return Verdict("local", replace(decision, record=done))
            return Verdict("send", decision)
        if (
            current is not None
            and current.hold == "rollup"
            and current.state in OPEN_STATES
            and decision.reason != "reopen"
        ):
            if decision.reason == "retry":
                return Verdict("rollup", decision)
            quiet = replace(record, delivered=True, lease_until=0, hold="rollup", rollup=current.rollup)
            return Verdict("quiet", replace(decision, record=quiet))
        window = self.holding(message, now)
        if window is not None:
            held = replace(
                record,
                hold=f"window:{window.name}",
                drop_at_end=not window.send_held_at_end,
                delivered=True,
                lease_until=0,
                message=body,
            )
            return Verdict("hold", replace(decision, record=held), window)
        record = replace(record, hold="", drop_at_end=False, message="")
        if message.probe:
            return Verdict("send", replace(decision, record=record))
        storm = self.storm(message.route)
        now_us = to_micros(now)
        if (
            decision.reason == "update"
            and storm.min_resend_seconds
            and current is not None
            and current.sent_at
            and now_us - current.sent_at < storm.min_resend_seconds * 1_000_000
        ):
            quiet = replace(record, delivered=True, lease_until=0, suppressed=record.suppressed + 1)
            return Verdict("suppress", replace(decision, record=quiet))
        opens = decision.reason in ("new", "reopen", "release")
        if opens and storm.max_new_per_minute and not self.take_slot(message, storm):
            return Verdict("rollup", replace(decision, record=replace(record, hold="rollup")))
        return Verdict("send", replace(decision, record=record))

    # -- storm control: the per-minute cap ---------------------------------------------------------
    # A bucket of ``max_new_per_minute`` new incidents that refills at that rate: a burst of the cap
    # opens at once, then one more per 60/cap seconds; no minute boundary lets a second burst in.
    def _slots(self, doc: dict[str, Any], cap: int, now: float) -> float:
        if "tokens" not in doc:
            return float(cap)
        elapsed = max(0.0, now - float(doc.get("updated", now)))
        return min(float(cap), float(doc["tokens"]) + elapsed * cap / 60.0)

    def take_slot(self, message: QueueMessage, storm: StormControl) -> bool:
        """Take one new-incident slot, or say there is none. The write is conditional, so two
        dispatchers cannot both take the last slot (a slot taken for a send that then fails is
        spent: the cap errs on the side of fewer pages)."""
        key = storm_key(message.route, message.routing_key)

        def step() -> bool:
            doc, version = self.store.get_doc(key)
            now = self.clock()
            slots = self._slots(doc, storm.max_new_per_minute, now)
            if slots < 1.0:
                return False
            self.store.put_doc(key, {"tokens": round(slots - 1.0, 6), "updated": now}, version)
            return True

        try:
            return read_modify_write(step, "the storm-control slots")
        except ConcurrentUpdate:
            return False  # a storm of writers is a storm: roll it up

    # -- the roll-up incident ----------------------------------------------------------------------
    def join(self, message: QueueMessage, record: Record) -> tuple[dict[str, Any], str | None, int]:
        """Add ``record``'s alert to the route's roll-up (opening one if none is open). Returns the
        roll-up document, the action to send now (None: not yet) and the document's version."""
        key = rollup_key(message.route, message.routing_key)
        storm = self.storm(message.route)

        def step() -> tuple[dict[str, Any], str | None, int]:
            doc, version = self.store.get_doc(key)
            if doc.get("state") != "open":
                # None open, or the last one is closing (its last member left, its resolve may be
                # on the way): a new roll-up incident, with a key of its own.
                doc = {
                    "state": "open",
                    "opened_at": int(self.clock()),
                    "sent_at": 0,
                    "members": {},
                    "route": message.route,
                    "total": 0,
                    "dedup_key": f"{ROLLUP_PREFIX}{message.route or '-'}:{int(self.clock())}-{secrets.token_hex(3)}",
                }
            members = dict(doc["members"])
            if record.dedup_key not in members:
                doc["total"] = int(doc.get("total", 0)) + 1
            members[record.dedup_key] = (message.alert.summary or record.dedup_key)[:200]
            doc["members"] = members
            doc["changed_at"] = self.clock()  # the sweep sends what a burst added after the last send
            version = self.store.put_doc(key, doc, version, expires=False)
            due = not doc["sent_at"] or self.clock() - float(doc["sent_at"]) >= storm.rollup_update_seconds
            return doc, ("trigger" if due else None), version

        return read_modify_write(step, "the roll-up incident")

    def leave(self, message: QueueMessage, record: Record) -> tuple[dict[str, Any], str | None, int]:
        """Take a resolved alert out of its roll-up; the action to send (a resolve when it was the
        last, or when its roll-up is already closing: a retry whose resolve failed)."""
        key = rollup_key(message.route, message.routing_key)
        storm = self.storm(message.route)

        def step() -> tuple[dict[str, Any], str | None, int]:
            doc, version = self.store.get_doc(key)
            if record.rollup and doc.get("dedup_key") != record.rollup:
                # Its roll-up closed and another opened since: make sure the old one is resolved
                # (PagerDuty ignores a resolve for an incident already resolved).
                return {"dedup_key": record.rollup, "members": {}, "route": message.route}, "resolve", version
            if doc.get("state") == "closing":
                return doc, "resolve", version
            if doc.get("state") != "open":
                return doc, None, version
            members = dict(doc.get("members", {}))
            members.pop(record.dedup_key, None)
            doc["members"] = members
            if not members:
                doc["state"] = "closing"  # no alert joins a roll-up whose resolve is on the way
            version = self.store.put_doc(key, doc, version, expires=False)
            if not members:
                return doc, "resolve", version
            due = self.clock() - float(doc.get("sent_at") or 0) >= storm.rollup_update_seconds
            return doc, ("trigger" if due else None), version

        return read_modify_write(step, "the roll-up incident")

    def refresh_rollups(self, send: Callable[[dict[str, Any]], object]) -> int:
        """Send the roll-ups whose list of alerts changed since they were last sent, once their
        ``rollup_update_seconds`` have passed: joins within that time are not sent when they come,
        and a burst may have no later join to carry them. Run by the sweep; the number sent."""
        config = self.config()
        sent = 0
        for name, route in (config.routes if config is not None else {}).items():
            if not route.storm.max_new_per_minute:
                continue  # never rolls up
            for routing_key in route.targets.values():
                doc, _version = self.store.get_doc(rollup_key(name, routing_key))
                last = float(doc.get("sent_at") or 0)
                if doc.get("state") != "open" or float(doc.get("changed_at") or 0) <= last:
                    continue
                if self.clock() - last < route.storm.rollup_update_seconds:
                    continue
                send(rollup_event(doc, "trigger", routing_key))
                self.rollup_sent(name, routing_key, "trigger", doc["dedup_key"])
                sent += 1
        return sent

    def rollup_sent(self, route: str | None, routing_key: str, action: str, dedup_key: str) -> None:
        """Note a roll-up event PagerDuty accepted (when, and closed after its resolve)."""
        key = rollup_key(route, routing_key)

        def step() -> None:
            doc, version = self.store.get_doc(key)
            if not doc or doc.get("dedup_key") != dedup_key:
                return  # another roll-up since: this one's state is no longer kept
            doc["sent_at"] = self.clock()
            if action == "resolve" and doc.get("state") == "closing":
                doc["state"] = "resolved"
            self.store.put_doc(key, doc, version, expires=doc["state"] != "open")

        try:
            read_modify_write(step, "the roll-up incident")
        except ConcurrentUpdate:
            return  # give up quietly, as before


def rollup_event(doc: dict[str, Any], action: str, routing_key: str) -> dict[str, Any]:
    """The Events API event for a roll-up incident: a summary and the alerts it stands for."""
    members: dict[str, str] = doc.get("members", {})
    route = doc.get("route") or "(unlisted)"
    listed = dict(list(members.items())[:ROLLUP_LISTED])
    details: dict[str, Any] = {
        "pdrelay_note": (
            "storm control: more new alerts than the route's max_new_per_minute; they are rolled up "
            "here and each resolves on its own at the source. This incident resolves when all have."
        ),
        "route": route,
        "open_alerts": len(members),
        "alerts_rolled_up": int(doc.get("total", len(members))),
        "alerts": listed,
    }
    if len(members) > ROLLUP_LISTED:
        details["not_listed"] = len(members) - ROLLUP_LISTED
    # PagerDuty keeps an incident's first summary; later triggers add to its log. So the summary
    # says what this is, and each event's details list the alerts open in it at that moment.
    summary = f"Alert storm on route {route}: new alerts above the per-minute cap are rolled up here"
    return {
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": doc["dedup_key"],
        "payload": {
            "summary": summary,
            "source": "pdrelay",
            "severity": "critical",
            "component": "storm-control",
            "group": route,
            "custom_details": details,
        },
        "client": "pdrelay",
    }
