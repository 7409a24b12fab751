"""Odd input found in review: each is a clear 4xx or handled, never an exception."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from pdrelay.config import parse_config
from pdrelay.delivery.events_api import retry_after_seconds
from pdrelay.errors import BadRequest, ConfigError
from pdrelay.formats import ParseContext, get
from pdrelay.ingest.body import MAX_DEPTH, decode_json
from pdrelay.ingest.parsing import parse_payload as _parse
from pdrelay.timeutil import parse_time
from tests.conftest import load_event

RECEIVED = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)


def test_a_timestamp_out_of_range_is_no_time_at_all() -> None:
    assert parse_time("9999-12-31T23:59:59-05:00") is None


def test_an_integer_of_thousands_of_digits_is_a_400() -> None:
    with pytest.raises(BadRequest, match="malformed JSON"):
        decode_json(('{"n": ' + "9" * 5000 + "}").encode())


def test_deep_nesting_is_a_400_before_anything_else() -> None:
    deep = "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)
    with pytest.raises(BadRequest, match="nested too deeply"):
        decode_json(deep.encode())
    with pytest.raises(BadRequest, match="malformed JSON"):
        decode_json(("[" * 100_000).encode())


def test_a_monitor_clock_far_ahead_is_capped_so_our_own_later_events_are_not_stale() -> None:
    doc = load_event("formats/alertmanager/firing.json")
    doc["alerts"][0]["startsAt"] = "2099-01-01T00:00:00Z"
    (alert,) = _parse(get("alertmanager"), doc, ParseContext(received_at=RECEIVED)).alerts
    assert alert.occurred_at == RECEIVED + timedelta(minutes=5)


def test_retry_after_as_an_http_date_without_zone_is_read_as_utc() -> None:
    soon = RECEIVED + timedelta(seconds=30)
    value = format_datetime(soon.replace(tzinfo=None))  # "... -0000"
    assert retry_after_seconds(value, RECEIVED) == 30.0
    assert retry_after_seconds(value, RECEIVED + timedelta(seconds=40)) == 0.0  # already past: no wait
    assert retry_after_seconds("soon", RECEIVED) is None
    assert retry_after_seconds("120", RECEIVED) == 120.0


def test_a_yaml_error_never_quotes_the_line_with_a_token() -> None:
    text = 'default_route: a\ncallers:\n  - name: x\n    token: "s3cr3t-token-value-1234\nroutes: {}\n'
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert "s3cr3t" not in str(caught.value)
    assert "line" in str(caught.value)


def test_queue_messages_are_ascii_so_sqs_takes_any_text() -> None:
    from pdrelay.models import make_message

    doc = load_event("formats/alertmanager/firing.json")
    doc["alerts"][0]["annotations"]["summary"] = "bad \uffff char \ufffe and é"
    (alert,) = _parse(get("alertmanager"), doc, ParseContext(received_at=RECEIVED)).alerts
    body = make_message(alert, route="r", routing_key="k" * 32, received_at=RECEIVED, request_id="x").to_json()
    assert body.isascii()
    assert "\uffff" in json.loads(body)["alert"]["summary"]


def test_half_an_emoji_becomes_a_replacement_character() -> None:
    doc = decode_json(b'{"summary": "disk \\ud83d full", "ok": "\\ud83d\\ude00"}')
    assert doc == {"summary": "disk \ufffd full", "ok": "\U0001f600"}
