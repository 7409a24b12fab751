"""`pdrelay trace` reads an alert's story back from the functions' JSON log lines: which lines are
pdrelay's, what KEY names (a dedup key, a request id, an identity), and the timeline each kind of
line becomes, with nothing secret shown."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pdrelay.local.stack import log_to_file
from pdrelay.observability import logger
from pdrelay.ops.trace import LogLine, assemble, parse_line, read_log_files, resolve_key, since_option, timeline

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
KEY = "alertmanager:fp-1"


def line(seconds: float, message: str, **doc: Any) -> LogLine:
    return LogLine(T0 + timedelta(seconds=seconds), {"level": "INFO", "message": message, **doc}, "test")


def dispatch(seconds: float, message: str, receive_count: int = 1, **doc: Any) -> LogLine:
    return line(
        seconds,
        message,
        function="DispatchFunction",
        request_id="REQ1",
        route="payments",
        destination="team",
        dedup_key=KEY,
        message_id="m-1",
        receive_count=receive_count,
        **doc,
    )


ACCEPTED = line(
    0,
    "alerts accepted",
    function="IngestFunction",
    request_id="REQ1",
    format="alertmanager",
    route="payments",
    caller="monitoring",
    alerts=[
        {"dedup_key": KEY, "action": "trigger", "destination": "team", "rule": "critical"},
        {"dedup_key": KEY, "action": "trigger", "destination": "platform", "rule": "critical"},
        {"dedup_key": "alertmanager:other", "action": "trigger", "destination": "team"},
    ],
    rejected=0,
    notes=[],
)


def test_only_pdrelays_json_lines_are_read_and_cloudwatchs_stamp_wins() -> None:
    assert parse_line("START RequestId: 8f5 Version: $LATEST") is None
    assert parse_line('{"_aws": {"Timestamp": 1}, "EventsSent": 1}') is None  # a metrics document
    assert parse_line('{"message": "no time"}') is None  # neither CloudWatch's stamp nor its own
    own = parse_line('{"level":"INFO","message":"delivered","timestamp":"2026-03-01T12:00:01.500Z"}')
    assert own is not None and own.at == T0 + timedelta(seconds=1.5)
    stamped = parse_line('{"level":"INFO","message":"delivered"}', at=T0, source="/aws/lambda/fn")
    assert stamped is not None and stamped.at == T0 and stamped.source == "/aws/lambda/fn"


def test_a_trigger_that_met_a_500_a_429_and_then_went_through() -> None:
    lines = [
        ACCEPTED,
        dispatch(
            0.2,
            "delivery failed, will retry",
            action="trigger",
            status=500,
            error="PagerDuty answered 500: oops",
            call_ms=12,
            attempt=1,
            retry_in_s=2,
        ),
        dispatch(2.3, "PagerDuty throttled this routing key; pausing it", receive_count=2, pause_s=1.0, in_a_row=1),
        dispatch(
            2.3,
            "deferred",
            receive_count=2,
            reason="throttled",
            delay_s=1,
            status=429,
            error="PagerDuty answered 429",
            call_ms=3,
        ),
        dispatch(3.5, "delivered", action="trigger", reason="retry", status=202, call_ms=4, latency_ms=3500),
        line(4, "alerts accepted", request_id="REQ2", alerts=[{"dedup_key": "alertmanager:unrelated"}]),
    ]

    trace = assemble(KEY, lines)

    assert trace.taken_as == "dedup key" and trace.dedup_keys == [KEY]
    assert [s.kind for s in trace.steps] == ["accepted", "failed", "note", "deferred", "sent"]
    accepted, failed, _note, deferred, sent = trace.steps
    assert accepted.text == (
        "trigger from monitoring (alertmanager), route payments → team (rule critical), platform (rule critical)"
    )
    assert accepted.request_id == "REQ1" and accepted.function == "IngestFunction"
    assert failed.text == "trigger attempt 1: PagerDuty 500 in 12 ms: PagerDuty answered 500: oops; retried in 2 s"
    assert failed.destination == "team"
    assert deferred.text.startswith("put back for 1 s: throttled (PagerDuty answered 429: the key is paused)")
    assert deferred.text.endswith("after PagerDuty 429 in 3 ms: PagerDuty answered 429")
    assert sent.text == "trigger (retry): PagerDuty 202 in 4 ms; 3500 ms after receipt"
    assert [s.at for s in trace.steps] == sorted(s.at for s in trace.steps)


def test_the_dlq_its_reason_then_a_redrive_and_the_delivery() -> None:
    lines = [
        ACCEPTED,
        dispatch(
            0.2,
            "sent to the DLQ",
            action="trigger",
            reason="PagerDuty rejected the event: Event object is invalid; summary missing",
            attempt=1,
            status=400,
            call_ms=5,
        ),
        dispatch(60, "delivered", redriven=1, action="trigger", reason="retry", status=202, call_ms=4, latency_ms=1),
    ]
    steps = timeline([KEY], lines)
    assert [s.kind for s in steps] == ["accepted", "dead-lettered", "redriven", "sent"]
    assert steps[1].text == (
        "in the DLQ: PagerDuty rejected the event: Event object is invalid; summary missing (HTTP 400)"
    )
    assert steps[2].text == "back from the DLQ (redrive 1): received again" and steps[2].at == steps[3].at

    # RedriveFunction says so itself (its result lists the keys moved): no second redrive step
    said = line(59, "redrive done", function="RedriveFunction", result={"moved": 1, "dedup_keys": [KEY]})
    steps = timeline([KEY], [*lines, said])
    assert [s.kind for s in steps] == ["accepted", "dead-lettered", "redriven", "sent"]
    assert steps[2].function == "RedriveFunction"


def test_a_failure_on_the_last_receive_says_sqs_moves_it_to_the_dlq() -> None:
    failed = dispatch(9, "delivery failed, will retry", receive_count=5, action="trigger", status=503, attempt=5)
    (step,) = timeline([KEY], [failed], max_receives=5)
    assert step.text.endswith("its last receive (5): SQS moves it to the DLQ")
    (step,) = timeline([KEY], [failed], max_receives=6)
    assert "retried in" in step.text


def test_decisions_without_a_call_say_why() -> None:
    lines = [
        dispatch(1, "skipped", reason="stale", action="trigger"),
        dispatch(2, "held by a maintenance window", window="db-upgrade"),
        dispatch(3, "recorded without a call", reason="rolled-up"),
        line(4, "sweeper: resolve delivered", function="SweepFunction", dedup_key=KEY),
    ]
    steps = timeline([KEY], lines)
    assert [s.kind for s in steps] == ["skipped", "held", "skipped", "swept"]
    assert "older than the last event applied" in steps[0].text
    assert steps[1].text == "held by maintenance window db-upgrade"
    assert steps[3].text == "resolve delivered"


def test_what_reconcile_did_to_the_alert_is_a_step() -> None:
    lines = [
        line(
            1,
            "reconcile: drift fixed",
            function="SweepFunction",
            kind="resolved-at-pagerduty",
            dedup_key=KEY,
            incident="Q1",
        ),
        line(
            2,
            "reconcile: resolve not delivered; the sweeper retries it",
            function="SweepFunction",
            dedup_key=KEY,
            error="PagerDuty answered 503",
        ),
    ]
    steps = timeline([KEY], lines)
    assert [s.kind for s in steps] == ["reconciled", "reconciled"]
    assert steps[0].text == "drift fixed; kind resolved-at-pagerduty; incident Q1"
    assert steps[1].text == "resolve not delivered; the sweeper retries it; error PagerDuty answered 503"


def test_key_is_a_dedup_key_a_request_id_or_an_identity() -> None:
    lines = [ACCEPTED, dispatch(1, "delivered", action="trigger", reason="new", status=202)]
    assert resolve_key(KEY, lines) == ([KEY], "dedup key")
    assert resolve_key("REQ1", lines) == ([KEY, "alertmanager:other"], "request id")
    assert resolve_key("fp-1", lines) == ([KEY], "identity")
    assert resolve_key("nothing", lines) == ([], "unknown")
    # a long identity's dedup key holds its hash; a sender's own key is listed with its identity
    long_identity = "x" * 300
    hashed = "cloudwatch:sha256:" + hashlib.sha256(long_identity.encode()).hexdigest()
    own = line(5, "alerts accepted", alerts=[{"dedup_key": "their-key", "action": "trigger", "identity": "abc"}])
    with_hash = line(6, "alerts accepted", alerts=[{"dedup_key": hashed, "action": "trigger"}])
    assert resolve_key(long_identity, [own, with_hash]) == ([hashed], "identity")
    assert resolve_key("abc", [own, with_hash]) == (["their-key"], "identity")


def test_secret_looking_fields_never_reach_the_timeline() -> None:
    leaky = dispatch(1, "delivered", status=202, routing_key="R0UT1NGKEY", token="t0ken", x_signature="sig")
    (step,) = timeline([KEY], [leaky])
    shown = json.dumps(step.as_dict())
    assert "R0UT1NGKEY" not in shown and "t0ken" not in shown and 'sig"' not in shown
    assert step.fields["status"] == 202


def test_since_takes_durations_and_times() -> None:
    now = T0
    assert since_option("24h", now) == now - timedelta(hours=24)
    assert since_option("30m", now) == now - timedelta(minutes=30)
    assert since_option("2026-02-28T00:00:00Z", now) == datetime(2026, 2, 28, tzinfo=UTC)
    with pytest.raises(Exception, match="--since"):
        since_option("yesterday", now)


def test_the_local_log_file_is_rotated_and_read_back_oldest_first(tmp_path: Path) -> None:
    path = tmp_path / "state" / "dev.log"
    stop = log_to_file(path, max_bytes=400, backups=2)
    try:
        for n in range(12):
            logger.info("delivered", extra={"dedup_key": KEY, "n": n})
    finally:
        stop()
    logger.info("delivered", extra={"dedup_key": KEY, "n": 99})  # after stop: not in the file
    assert sorted(p.name for p in path.parent.iterdir()) == ["dev.log", "dev.log.1", "dev.log.2"]
    assert all(p.stat().st_size <= 400 for p in path.parent.iterdir())
    kept = [ln.doc["n"] for ln in read_log_files(path)]
    assert kept == sorted(kept) and kept[-1] == 11 and 99 not in kept
    assert len(kept) < 12  # the oldest rotated out: bounded
    assert read_log_files(path, containing=["nothing like it"]) == []
