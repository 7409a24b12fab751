"""Times read from monitors: a timestamp out of the representable range is no time at all."""

from __future__ import annotations

from pdrelay.timeutil import parse_time


def test_a_timestamp_out_of_range_is_no_time_at_all() -> None:
    assert parse_time("9999-12-31T23:59:59-05:00") is None
