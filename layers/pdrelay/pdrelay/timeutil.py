"""Time: the clock code compares with "now" through, and parsing the timestamps monitors send
(RFC 3339 with up to nanoseconds, Go's zero time, epochs)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Where code that compares with "now" reads it. Pass one in; tests pass a :class:`ManualClock`."""

    def time(self) -> float:
        """Seconds since the epoch (wall clock): what is stored, compared with receipt times, expired."""
        ...

    def now(self) -> datetime:
        """The wall clock as an aware UTC datetime."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary start that never go back: for measuring how long something took."""
        ...

    def sleep(self, seconds: float) -> None:
        """Let ``seconds`` pass (a send due in a fraction of a second waits here, not on the queue)."""
        ...


class SystemClock:
    """The machine's clocks."""

    def time(self) -> float:
        return time.time()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))


SYSTEM_CLOCK = SystemClock()


@dataclass
class ManualClock:
    """A clock that stands still until moved: ``ManualClock.at(moment)``, then ``advance(seconds)``.

    Its monotonic reading moves with its wall reading, so durations measured on it are the time
    the test moved it by, not the time the test took."""

    seconds: float = field(default_factory=time.time)

    @classmethod
    def at(cls, moment: datetime) -> ManualClock:
        return cls(moment.timestamp())

    def time(self) -> float:
        return self.seconds

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.seconds, UTC)

    def monotonic(self) -> float:
        return self.seconds

    def advance(self, seconds: float) -> None:
        self.seconds += seconds

    def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))


_FRACTION = re.compile(r"(\.\d{1,6})\d*")


def parse_time(value: object) -> datetime | None:
    """An aware UTC datetime, or None for missing, unparsable or zero times (year 1)."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000 if value > 1e11 else value
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str):
        return None
    text = _FRACTION.sub(r"\1", value.strip())
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.year <= 1:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:59:59-05:00
        return None


def to_micros(moment: datetime) -> int:
    """Microseconds since the epoch: what the dedup table stores and compares."""
    return int(moment.timestamp() * 1_000_000)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
