"""`pdrelay trace --stack` asks CloudWatch Logs Insights: one query for the lines that mention the
key, waited for on the injected clock (no real sleeping), paged past Logs Insights' 10,000-row
limit by starting again at the last row's second.

moto 5 answers start_query, but ignores ``filter`` and is always ``Complete`` at once, so polling and
paging are tested here with a fake client answering in the documented shape
(``{"status": ..., "results": [[{"field": "@timestamp", "value": "2026-03-01 12:00:00.000"}, ...]]}``);
tests/integration/test_trace_on_a_stack.py runs the whole command against moto."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pdrelay.errors import UpstreamError
from pdrelay.ops import trace
from pdrelay.timeutil import ManualClock

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def row(seconds: float, message: dict[str, Any], ptr: str) -> list[dict[str, str]]:
    stamp = (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return [
        {"field": "@timestamp", "value": stamp},
        {"field": "@message", "value": json.dumps(message)},
        {"field": "@log", "value": "123456789012:/aws/lambda/pdrelay-DispatchFunction-X"},
        {"field": "@ptr", "value": ptr},
    ]


class FakeLogs:
    """Logs Insights: each query is Running ``running`` times, then Complete with its page of rows."""

    def __init__(self, pages: list[list[list[dict[str, str]]]], running: int = 0, end: str = "Complete") -> None:
        self.pages, self.running, self.end = pages, running, end
        self.started: list[dict[str, Any]] = []
        self.polls = 0
        self.stopped: list[str] = []

    def start_query(self, **kwargs: Any) -> dict[str, str]:
        self.started.append(kwargs)
        return {"queryId": f"q{len(self.started)}"}

    def get_query_results(self, queryId: str) -> dict[str, Any]:
        self.polls += 1
        if self.polls <= self.running:
            return {"status": "Running", "results": []}
        self.polls = 0
        if self.end != "Complete":
            return {"status": self.end, "results": []}
        page = int(queryId[1:]) - 1
        return {"status": "Complete", "results": self.pages[page] if page < len(self.pages) else []}

    def stop_query(self, queryId: str) -> dict[str, bool]:
        self.stopped.append(queryId)
        return {"success": True}


def test_the_query_filters_on_each_text_oldest_first_and_quotes_them() -> None:
    query = trace.insights_query(['alertmanager:fp "1"', "REQ1", "REQ1"])
    assert query == (
        'fields @timestamp, @message, @log | filter @message like "alertmanager:fp \\"1\\"" '
        'or @message like "REQ1" | sort @timestamp asc | limit 10000'
    )
    assert trace.needles("abc") == ["abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"]


def test_a_running_query_is_waited_for_on_the_clock() -> None:
    clock = ManualClock(T0.timestamp())
    logs = FakeLogs([[row(1, {"message": "delivered", "dedup_key": "k"}, "p1")]], running=3)
    rows = trace.run_query(logs, ["g"], "q", T0, T0 + timedelta(hours=1), clock)
    assert [r["@ptr"] for r in rows] == ["p1"]
    assert clock.time() == T0.timestamp() + 3 * trace.POLL_SECONDS  # three polls a second apart, no real wait
    (started,) = logs.started
    assert started["logGroupNames"] == ["g"] and started["limit"] == trace.PAGE
    assert (started["startTime"], started["endTime"]) == (int(T0.timestamp()), int(T0.timestamp()) + 3601)


def test_a_failed_or_endless_query_is_an_upstream_error() -> None:
    clock = ManualClock(T0.timestamp())
    with pytest.raises(UpstreamError, match="ended Failed"):
        trace.run_query(FakeLogs([], end="Failed"), ["g"], "q", T0, T0, clock)
    endless = FakeLogs([], running=10**6)
    with pytest.raises(UpstreamError, match="longer than 120 s"):
        trace.run_query(endless, ["g"], "q", T0, T0, clock)
    assert endless.stopped == ["q1"]


def test_a_full_page_is_followed_by_a_query_from_its_last_second(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trace, "PAGE", 3)
    line = {"level": "INFO", "message": "deferred", "dedup_key": "k"}
    first = [row(1, line, "p1"), row(2, line, "p2"), row(5.5, line, "p3")]
    second = [row(5.5, line, "p3"), row(7, line, "p4")]  # the same second again: p3 seen twice
    logs = FakeLogs([first, second])
    lines, complete = trace.search_logs(logs, ["g"], ["k"], T0, T0 + timedelta(hours=1), ManualClock(T0.timestamp()))
    assert complete
    assert [ln.at for ln in lines] == [T0 + timedelta(seconds=s) for s in (1, 2, 5.5, 7)]
    assert [q["startTime"] for q in logs.started] == [int(T0.timestamp()), int(T0.timestamp()) + 5]
    assert lines[0].source.endswith("pdrelay-DispatchFunction-X")


def test_a_second_with_more_lines_than_a_page_is_said_to_be_incomplete(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trace, "PAGE", 2)
    line = {"level": "INFO", "message": "deferred", "dedup_key": "k"}
    same_second = [row(0.1, line, "p1"), row(0.2, line, "p2")]
    logs = FakeLogs([same_second, same_second])
    lines, complete = trace.search_logs(logs, ["g"], ["k"], T0, T0 + timedelta(hours=1), ManualClock(T0.timestamp()))
    assert not complete and len(lines) == 2
    result = trace.trace_from_logs("k", lambda texts: (lines, complete))
    assert result.notes == ["more lines than one search returns: the timeline may miss some"]


def test_a_request_id_is_followed_to_its_alerts_later_lines() -> None:
    """The first search finds the request's lines; a second one the alert's lines from later requests."""
    first = trace.LogLine(T0, {"message": "alerts accepted", "request_id": "R1", "alerts": [{"dedup_key": "k"}]})
    later = trace.LogLine(T0 + timedelta(minutes=5), {"message": "delivered", "request_id": "R2", "dedup_key": "k"})
    asked: list[list[str]] = []

    def fetch(texts: list[str]) -> tuple[list[trace.LogLine], bool]:
        asked.append(texts)
        return ([first] if "R1" in texts else [first, later]), True

    result = trace.trace_from_logs("R1", fetch)
    assert asked == [trace.needles("R1"), ["k"]]
    assert (result.taken_as, result.dedup_keys) == ("request id", ["k"])
    assert [s.kind for s in result.steps] == ["accepted", "sent"]
