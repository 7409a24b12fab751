"""Maintenance windows: when they are active (one-off and recurring, across days, weeks and DST
changes), what they apply to, and how mistakes in them are reported. The clock is always frozen:
every check passes an explicit ``now``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from pdrelay.models import Alert
from pdrelay.policy.windows import Window, check_windows, format_duration, holding, parse_duration


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def window(**doc: Any) -> Window:
    return Window.model_validate({"name": "w", **doc})


def weekly(days: list[str] | None, at: str, duration: str, timezone: str = "UTC") -> Window:
    schedule: dict[str, Any] = {"at": at, "duration": duration}
    if days is not None:
        schedule["days"] = days
    return window(schedule=schedule, timezone=timezone)


def problems(doc: Any) -> list[str]:
    """Validation errors in the form the configuration loader reports them: place, then message."""
    with pytest.raises(ValidationError) as caught:
        Window.model_validate(doc)
    return [
        ".".join(str(p) for p in err["loc"]) + ": " + err["msg"].removeprefix("Value error, ")
        for err in caught.value.errors()
    ]


def make_alert(**labels: str) -> Alert:
    return Alert(
        format="alertmanager",
        identity="i-1",
        action="trigger",
        occurred_at=utc(2026, 1, 1),
        summary="Replication lag",
        source="db-7",
        custom_details={"labels": labels},
    )


# --- durations -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("45s", timedelta(seconds=45)),
        ("90m", timedelta(minutes=90)),
        ("2h", timedelta(hours=2)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1d", timedelta(days=1)),
        (" 1D2H ", timedelta(days=1, hours=2)),
    ],
)
def test_durations_are_read(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


def test_durations_are_written_as_they_are_read() -> None:
    assert format_duration(timedelta(days=1, hours=2, seconds=5)) == "1d2h5s"
    w = weekly(["sat"], "02:00", "1h30m")
    dumped = w.model_dump(mode="json", exclude_none=True)
    assert dumped["schedule"]["duration"] == "1h30m"
    assert Window.model_validate(dumped) == w


@pytest.mark.parametrize("text", ["", "2", "h", "2 hours", "30m1h", "-1h", "0m", "1.5h"])
def test_bad_durations_are_refused_clearly(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


# --- one-off windows -------------------------------------------------------------------------------


def test_a_one_off_window_starts_inclusive_and_ends_exclusive() -> None:
    w = window(start="2026-12-01T22:00:00+01:00", end="2026-12-02T02:00:00+01:00")
    assert not w.active_at(utc(2026, 12, 1, 20, 59, 59))
    assert w.active_at(utc(2026, 12, 1, 21, 0))
    assert w.active_at(utc(2026, 12, 2, 0, 59, 59))
    assert not w.active_at(utc(2026, 12, 2, 1, 0))
    assert w.current_end(utc(2026, 12, 1, 23, 0)) == utc(2026, 12, 2, 1, 0)
    assert w.current_end(utc(2026, 12, 2, 1, 0)) is None


def test_a_one_off_window_expires_at_its_end() -> None:
    w = window(start="2026-12-01T22:00:00Z", end="2026-12-02T02:00:00Z")
    assert not w.expired(utc(2026, 12, 2, 1, 59))
    assert w.expired(utc(2026, 12, 2, 2, 0))
    assert not weekly(None, "02:00", "1h").expired(utc(2030, 1, 1))


def test_a_time_without_offset_is_read_in_the_window_s_time_zone() -> None:
    w = window(start="2026-07-01T22:00:00", end="2026-07-02T02:00:00", timezone="Europe/Berlin")
    assert w.start == utc(2026, 7, 1, 20, 0)
    assert w.active_at(utc(2026, 7, 1, 20, 0))
    assert not w.active_at(utc(2026, 7, 2, 0, 0))


def test_yaml_timestamps_work_unquoted_too() -> None:
    doc = yaml.safe_load(
        """
name: db-patching
start: 2026-12-01T22:00:00+01:00
end: 2026-12-02 02:00:00
timezone: Europe/Berlin
"""
    )
    w = Window.model_validate(doc)
    assert (w.start, w.end) == (utc(2026, 12, 1, 21, 0), utc(2026, 12, 2, 1, 0))


def test_a_clock_without_time_zone_is_refused() -> None:
    w = window(start="2026-12-01T22:00:00Z", end="2026-12-02T02:00:00Z")
    with pytest.raises(ValueError, match="timezone-aware"):
        w.active_at(datetime(2026, 12, 1, 23, 0))  # a naive clock: the mistake under test


# --- recurring windows -----------------------------------------------------------------------------


def test_a_daily_window_is_active_from_its_local_start_for_its_duration() -> None:
    w = weekly(None, "02:00", "2h", "Europe/Berlin")  # 02:00 CEST is 00:00 UTC in July
    assert not w.active_at(utc(2026, 7, 14, 23, 59))
    assert w.active_at(utc(2026, 7, 15, 0, 0))
    assert w.current_end(utc(2026, 7, 15, 1, 0)) == utc(2026, 7, 15, 2, 0)
    assert not w.active_at(utc(2026, 7, 15, 2, 0))


def test_an_occurrence_runs_on_past_midnight() -> None:
    w = weekly(["fri"], "23:00", "3h")  # 2026-05-01 is a Friday
    assert w.active_at(utc(2026, 5, 2, 1, 0))  # Saturday, not a listed day, still inside Friday's
    assert w.current_end(utc(2026, 5, 2, 1, 0)) == utc(2026, 5, 2, 2, 0)
    assert not w.active_at(utc(2026, 5, 2, 2, 0))
    assert not w.active_at(utc(2026, 5, 2, 23, 30))  # no occurrence starts on Saturday


def test_an_occurrence_runs_on_across_the_week_end() -> None:
    w = weekly(["sun"], "22:00", "4h", "America/New_York")  # Sunday 2026-05-03 22:00 EDT = Mon 02:00 UTC
    assert w.active_at(utc(2026, 5, 4, 2, 0))
    assert w.active_at(utc(2026, 5, 4, 5, 59))  # Monday 01:59 in New York
    assert not w.active_at(utc(2026, 5, 4, 6, 0))
    assert not w.active_at(utc(2026, 5, 5, 3, 0))  # Monday night: nothing starts on Monday


def test_only_the_listed_days_start_occurrences() -> None:
    w = weekly(["sat", "sun"], "02:00", "2h", "Europe/Berlin")
    assert w.active_at(utc(2026, 5, 2, 0, 30))  # Saturday 02:30 CEST
    assert w.active_at(utc(2026, 5, 3, 0, 30))  # Sunday
    assert not w.active_at(utc(2026, 5, 4, 0, 30))  # Monday


def test_a_multi_day_occurrence_started_days_ago_still_counts() -> None:
    w = weekly(["mon"], "08:00", "7d")
    assert w.active_at(utc(2026, 5, 10, 23, 0))  # the Sunday after Monday 2026-05-04
    assert w.current_end(utc(2026, 5, 10, 23, 0)) == utc(2026, 5, 11, 8, 0)


def test_overlapping_occurrences_end_at_the_latest() -> None:
    w = weekly(None, "12:00", "36h")
    assert w.current_end(utc(2026, 5, 2, 13, 0)) == utc(2026, 5, 4, 0, 0)


# --- daylight-saving days --------------------------------------------------------------------------


def test_berlin_spring_forward_a_skipped_start_begins_when_clocks_jump() -> None:
    # 2026-03-29: 02:00 CET becomes 03:00 CEST at 01:00 UTC; 02:30 does not exist that day.
    w = weekly(["sun"], "02:30", "1h", "Europe/Berlin")
    assert not w.active_at(utc(2026, 3, 29, 0, 59, 59))
    assert w.active_at(utc(2026, 3, 29, 1, 0))
    assert w.current_end(utc(2026, 3, 29, 1, 0)) == utc(2026, 3, 29, 2, 0)


def test_berlin_spring_forward_a_duration_is_real_time() -> None:
    w = weekly(["sun"], "01:00", "3h", "Europe/Berlin")  # 01:00 CET = 00:00 UTC; 3 hours later is 05:00 CEST
    assert w.current_end(utc(2026, 3, 29, 0, 0)) == utc(2026, 3, 29, 3, 0)


def test_berlin_fall_back_an_ambiguous_start_takes_the_first() -> None:
    # 2026-10-25: 03:00 CEST becomes 02:00 CET at 01:00 UTC; 02:30 happens at 00:30 and 01:30 UTC.
    w = weekly(["sun"], "02:30", "30m", "Europe/Berlin")
    assert w.active_at(utc(2026, 10, 25, 0, 30))
    assert not w.active_at(utc(2026, 10, 25, 1, 30))


def test_new_york_spring_forward_and_fall_back() -> None:
    # 2026-03-08: 02:00 EST jumps to 03:00 EDT (07:00 UTC). 2026-11-01: 02:00 EDT back to 01:00 EST (06:00 UTC).
    spring = weekly(["sun"], "02:15", "1h", "America/New_York")
    assert not spring.active_at(utc(2026, 3, 8, 6, 59))
    assert spring.current_end(utc(2026, 3, 8, 7, 0)) == utc(2026, 3, 8, 8, 0)
    fall = weekly(["sun"], "01:30", "1h", "America/New_York")
    assert fall.current_end(utc(2026, 11, 1, 5, 30)) == utc(2026, 11, 1, 6, 30)  # the EDT 01:30
    assert not fall.active_at(utc(2026, 11, 1, 6, 30))  # the EST 01:30 starts nothing


def test_on_ordinary_days_the_wall_time_follows_the_season() -> None:
    w = weekly(None, "02:00", "1h", "America/New_York")
    assert w.active_at(utc(2026, 1, 15, 7, 0))  # EST: UTC-5
    assert w.active_at(utc(2026, 7, 15, 6, 0))  # EDT: UTC-4
    assert not w.active_at(utc(2026, 7, 15, 7, 0))


# --- what a window applies to ----------------------------------------------------------------------


def test_routes_and_when_filter_what_a_window_holds() -> None:
    w = window(
        start="2026-01-01T00:00:00Z", end="2026-01-02T00:00:00Z", routes=["platform"], when={"labels.service": "db"}
    )
    assert w.applies_to("platform", make_alert(service="db"))
    assert not w.applies_to("payments", make_alert(service="db"))
    assert not w.applies_to(None, make_alert(service="db"))
    assert not w.applies_to("platform", make_alert(service="web"))
    everything = window(start="2026-01-01T00:00:00Z", end="2026-01-02T00:00:00Z")
    assert everything.applies_to(None, make_alert())


def test_holding_is_the_first_active_window_that_applies() -> None:
    windows = [
        window(name="over", start="2026-01-01T00:00:00Z", end="2026-01-01T06:00:00Z"),
        window(
            name="web-only", start="2026-01-01T00:00:00Z", end="2026-01-02T00:00:00Z", when={"labels.service": "web"}
        ),
        window(name="db-nightly", schedule={"at": "00:00", "duration": "12h"}, routes=["platform"]),
        window(name="also-db", start="2026-01-01T00:00:00Z", end="2026-01-02T00:00:00Z"),
    ]
    now = utc(2026, 1, 1, 8, 0)
    held = holding(windows, "platform", make_alert(service="db"), now)
    assert held is not None and held.name == "db-nightly"
    held = holding(windows, "payments", make_alert(service="db"), now)
    assert held is not None and held.name == "also-db"
    assert holding(windows[:3], "payments", make_alert(service="db"), now) is None


def test_defaults_of_a_window() -> None:
    w = weekly(None, "02:00", "1h")
    assert w.send_held_at_end is True
    assert w.schedule is not None and len(w.schedule.days) == 7
    assert w.routes == () and w.timezone == "UTC" and w.comment == ""


# --- mistakes, named by place ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"start": "2026-01-01T00:00:00Z"}, ": give start and end"),
        ({"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, ": end: must be after start"),
        ({"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, ": end: must be after start"),
        (
            {
                "start": "2026-01-01T00:00:00Z",
                "end": "2026-01-02T00:00:00Z",
                "schedule": {"at": "02:00", "duration": "1h"},
            },
            ": give either start and end, or a schedule, not both",
        ),
        ({"schedule": {"at": "02:00", "duration": "1h"}, "timezone": "Mars/Olympus"}, "timezone: unknown time zone"),
        ({"schedule": {"at": "25:00", "duration": "1h"}}, "schedule.at: '25:00' is not a time"),
        ({"schedule": {"at": 120, "duration": "1h"}}, "schedule.at: write the time in quotes"),
        ({"schedule": {"at": "02:00", "duration": "8d"}}, "schedule.duration: a duration is longer than zero and at"),
        ({"schedule": {"at": "02:00", "duration": "soon"}}, "schedule.duration: 'soon' is not a duration"),
        (
            {"schedule": {"at": "02:00", "duration": "1h", "days": ["sat", "funday"]}},
            "schedule.days: 'funday' is not a day",
        ),
        ({"schedule": {"at": "02:00", "duration": "1h", "days": []}}, "schedule.days: no days given"),
        ({"schedule": {"at": "02:00", "duration": "1h", "every": "week"}}, "schedule.every: Extra inputs"),
        (
            {"schedule": {"at": "02:00", "duration": "1h"}, "when": {"labels.x": {"regex": "("}}},
            "when.labels.x.regex: invalid regular expression",
        ),
        ({"schedule": {"at": "02:00", "duration": "1h"}, "repeat": True}, "repeat: Extra inputs are not permitted"),
    ],
)
def test_mistakes_in_a_window_are_reported_with_their_place(doc: dict[str, Any], expected: str) -> None:
    found = problems({"name": "w", **doc})
    assert any(p.startswith(expected) for p in found), found


def test_a_window_needs_a_name() -> None:
    assert any(p.startswith("name: Field required") for p in problems({"schedule": {"at": "02:00", "duration": "1h"}}))


def test_days_accept_full_names_in_any_case() -> None:
    w = weekly(["Saturday", "SUN"], "02:00", "1h")
    assert w.schedule is not None and w.schedule.days == ("sat", "sun")


def test_names_and_routes_are_checked_across_windows() -> None:
    windows = [
        window(name="a", schedule={"at": "02:00", "duration": "1h"}, routes=["platform", "ghost"]),
        window(name="a", schedule={"at": "03:00", "duration": "1h"}),
    ]
    assert check_windows(windows, {"platform"}) == [
        "maintenance.0.routes: no route named 'ghost'",
        "maintenance.1.name: 'a' is already the name of maintenance.0",
    ]
