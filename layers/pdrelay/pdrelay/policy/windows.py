"""Maintenance windows: times when matching alerts are held instead of paged.

A window is either one-off (``start`` and ``end``) or recurring (``schedule``), applies to some
routes (default: all) and to the alerts its ``when`` matches (a :class:`pdrelay.policy.rules.Matcher`;
default: all)::

    maintenance:
      - name: db-patching
        routes: [platform]
        when: {labels.service: db}
        start: "2026-12-01T22:00:00+01:00"   # a time without offset is read in `timezone`
        end: "2026-12-02T02:00:00+01:00"
        timezone: Europe/Berlin              # IANA name; default UTC
        send_held_at_end: true               # default true
        comment: CHG-1234
      - name: weekly-backup
        schedule: {days: [sat, sun], at: "02:00", duration: 2h}   # days default: every day
        timezone: Europe/Berlin

A window is active from its start (inclusive) to its end (exclusive). A recurring window starts at
the local wall time ``at`` on each listed day in its time zone and lasts ``duration`` of real time,
so an occurrence that began yesterday (or on Sunday, seen on Monday) and still runs counts. On
daylight-saving days, an ``at`` that does not exist (clocks jump forward over it) starts at the
first instant after the jump, and an ``at`` that happens twice (clocks go back) starts at the first.

Write ``at`` in quotes: YAML reads an unquoted ``22:30`` or ``2:00`` as a number (base 60). Nothing here reads the
clock: every function takes ``now`` (an aware datetime), so tests freeze time by passing it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_serializer, field_validator, model_validator

from pdrelay.models import Alert
from pdrelay.policy.rules import Matcher

MAX_DURATION = timedelta(days=7)
DAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_DURATION = re.compile(r"(?:(\d{1,6})d)?(?:(\d{1,6})h)?(?:(\d{1,6})m)?(?:(\d{1,6})s)?")
_AT = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
_FULL_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_NAMES = {**{d: d for d in DAYS}, **dict(zip(_FULL_NAMES, DAYS, strict=True))}


def parse_duration(text: str) -> timedelta:
    """``"90m"``, ``"2h"``, ``"1h30m"``, ``"1d"``, ``"45s"``: units d, h, m, s in that order, > 0."""
    if not isinstance(text, str):
        raise ValueError(f"a duration is text such as '90m' or '1h30m', not {type(text).__name__}")
    found = _DURATION.fullmatch(text.strip().lower())
    if not found or not any(found.groups()):
        raise ValueError(f"{text!r} is not a duration; write e.g. '45s', '90m', '2h', '1h30m' or '1d'")
    days, hours, minutes, seconds = (int(g or 0) for g in found.groups())
    span = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    if span <= timedelta(0):
        raise ValueError(f"{text!r}: a duration must be longer than zero")
    return span


def format_duration(span: timedelta) -> str:
    """The text :func:`parse_duration` reads back: ``timedelta(hours=1, minutes=30)`` is ``"1h30m"``."""
    seconds = int(span.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def zone(name: str) -> tzinfo:
    """The time zone named ``name`` (IANA, e.g. ``Europe/Berlin``); ValueError when unknown."""
    if name == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}; use an IANA name such as 'Europe/Berlin' or 'UTC'") from None


def _exists(moment: datetime) -> bool:
    """Whether the aware wall time ``moment`` happens (it does not inside a spring-forward gap)."""
    back = moment.astimezone(UTC).astimezone(moment.tzinfo)
    return back.replace(tzinfo=None) == moment.replace(tzinfo=None, fold=0)


def local_instant(day: date, at: time, tz: tzinfo) -> datetime:
    """The instant of wall time ``at`` on ``day`` in ``tz``, in UTC.

    A wall time that happens twice gives the first; one skipped by a spring-forward gap gives the
    first instant after the gap (the moment clocks jump)."""
    wall = datetime.combine(day, at).replace(tzinfo=tz, fold=0)
    if _exists(wall):
        return wall.astimezone(UTC)
    # In the gap: fold=1 reads the wall time with the later offset (an instant before the jump),
    # fold=0 with the earlier one (after it). Find the jump between them to the second.
    before = wall.replace(fold=1).astimezone(UTC)
    after = wall.replace(fold=0).astimezone(UTC)
    if before > after:
        before, after = after, before
    offset = before.astimezone(tz).utcoffset()
    low, high = 0, int((after - before).total_seconds())
    while low < high:
        mid = (low + high) // 2
        if (before + timedelta(seconds=mid)).astimezone(tz).utcoffset() == offset:
            low = mid + 1
        else:
            high = mid
    return before + timedelta(seconds=low)


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    return now


class Schedule(BaseModel):
    """A recurring occurrence: on ``days`` at local ``at`` for ``duration``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    days: tuple[str, ...] = Field(DAYS, description="mon..sun; default every day.")
    at: str = Field(description="Local wall time HH:MM (24h), in quotes.")
    duration: timedelta = Field(description="e.g. 90m, 2h, 1h30m, 1d; at most 7 days.")

    @field_validator("days", mode="before")
    @classmethod
    def _days(cls, value: Any) -> Any:
        if value is None:
            return DAYS
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple):
            raise ValueError("expected a list of days such as [sat, sun]")
        if not value:
            raise ValueError("no days given; leave days out for every day")
        days = []
        for item in value:
            day = _DAY_NAMES.get(item.strip().lower()) if isinstance(item, str) else None
            if day is None:
                raise ValueError(f"{item!r} is not a day; use {', '.join(DAYS)}")
            days.append(day)
        return tuple(dict.fromkeys(days))

    @field_validator("at", mode="before")
    @classmethod
    def _at(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            raise ValueError('write the time in quotes, e.g. at: "22:30" (YAML reads 22:30 unquoted as a number)')
        if not isinstance(value, str) or not _AT.fullmatch(value.strip()):
            raise ValueError(f"{value!r} is not a time; write HH:MM (24h), e.g. '02:00' or '22:30'")
        return value.strip()

    @field_validator("duration", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        span = value if isinstance(value, timedelta) else parse_duration(value)
        if span <= timedelta(0) or span > MAX_DURATION:
            raise ValueError("a duration is longer than zero and at most 7 days")
        return span

    @field_serializer("duration")
    def _duration_text(self, span: timedelta) -> str:
        return format_duration(span)

    @property
    def wall_time(self) -> time:
        hours, minutes = self.at.split(":")
        return time(int(hours), int(minutes))

    def occurrences(self, now: datetime, tz: tzinfo) -> list[tuple[datetime, datetime]]:
        """The (start, end) in UTC of every occurrence that could be running at ``now``."""
        today = _aware(now).astimezone(tz).date()
        weekdays = {DAYS.index(d) for d in self.days}
        spans = []
        for back in range(self.duration.days + 2, -1, -1):
            day = today - timedelta(days=back)
            if day.weekday() in weekdays:
                start = local_instant(day, self.wall_time, tz)
                spans.append((start, start + self.duration))
        return spans


class Window(BaseModel):
    """A maintenance window: alerts it applies to are held while it is active."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=128)
    routes: tuple[str, ...] = Field((), description="Route names; empty: every route.")
    when: Matcher = Field(default_factory=lambda: Matcher({}), description="Which alerts; empty: all.")
    timezone: str = Field("UTC", description="IANA time zone of a schedule and of times without offset.")
    start: datetime | None = None
    end: datetime | None = None
    schedule: Schedule | None = None
    send_held_at_end: bool = Field(True, description="Send the alerts held (still open) when the window ends.")
    comment: str = ""

    @field_validator("routes", mode="before")
    @classmethod
    def _absent(cls, value: Any) -> Any:
        return () if value is None else value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        zone(value)
        return value

    @field_validator("start", "end")
    @classmethod
    def _localized(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        if value is None or value.tzinfo is not None:
            return value
        name = info.data.get("timezone")
        if name is None:  # the time zone is wrong and reported; nothing to read this time in
            return value.replace(tzinfo=UTC)
        return local_instant(value.date(), value.time(), zone(name))

    @model_validator(mode="after")
    def _one_kind(self) -> Window:
        if self.schedule is not None:
            if self.start is not None or self.end is not None:
                raise ValueError("give either start and end, or a schedule, not both")
        elif self.start is None or self.end is None:
            raise ValueError("give start and end (a one-off window), or a schedule (a recurring one)")
        elif self.end <= self.start:
            raise ValueError("end: must be after start")
        return self

    @property
    def tz(self) -> tzinfo:
        return zone(self.timezone)

    def _running(self, now: datetime) -> list[tuple[datetime, datetime]]:
        now = _aware(now)
        if self.schedule is not None:
            return [(s, e) for s, e in self.schedule.occurrences(now, self.tz) if s <= now < e]
        if self.start is not None and self.end is not None and self.start <= now < self.end:
            return [(self.start, self.end)]
        return []

    def active_at(self, now: datetime) -> bool:
        return bool(self._running(now))

    def current_end(self, now: datetime) -> datetime | None:
        """When the occurrence running at ``now`` ends (the latest, if occurrences overlap); None if none runs."""
        running = self._running(now)
        return max(end for _, end in running) if running else None

    def expired(self, now: datetime) -> bool:
        """A one-off window that is over; a recurring one never is."""
        return self.end is not None and self.schedule is None and _aware(now) >= self.end

    def applies_to(self, route: str | None, alert: Alert) -> bool:
        if self.routes and route not in self.routes:
            return False
        return self.when.matches(alert)


def holding(windows: Sequence[Window], route: str | None, alert: Alert, now: datetime) -> Window | None:
    """The first window that is active at ``now`` and applies to ``alert`` on ``route``, if any."""
    return next((w for w in windows if w.active_at(now) and w.applies_to(route, alert)), None)


def check_windows(windows: Sequence[Window], routes: set[str]) -> list[str]:
    """Problems across a list of windows: names used twice, routes that do not exist."""
    problems: list[str] = []
    first_use: dict[str, int] = {}
    for i, window in enumerate(windows):
        if window.name in first_use:
            earlier = first_use[window.name]
            problems.append(f"maintenance.{i}.name: {window.name!r} is already the name of maintenance.{earlier}")
        first_use.setdefault(window.name, i)
        problems.extend(
            f"maintenance.{i}.routes: no route named {name!r}" for name in window.routes if name not in routes
        )
    return problems
