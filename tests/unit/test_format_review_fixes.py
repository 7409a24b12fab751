"""What a review of the format adapters found, kept fixed: every case here once lost a page,
leaked a secret, or crashed ingest."""

from __future__ import annotations

import contextlib
import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from pdrelay import formats
from pdrelay.config import Route
from pdrelay.delivery.decisions import Record, decide
from pdrelay.delivery.dispatcher import to_event
from pdrelay.errors import BadRequest
from pdrelay.formats import ParseContext, Parsed
from pdrelay.ingest.parsing import tests_handled as _tests_handled
from pdrelay.models import SUMMARY_LIMIT, Alert, make_message
from tests.conftest import ROUTING_KEY
from tests.formats_harness import RECEIVED, load_case, run


def walk(fmt: str, docs_at: list[tuple[Any, int]], options: Any = None) -> list[str]:
    """The lifecycle reasons for a series of payloads of one format, received ``minutes`` apart."""
    record: Record | None = None
    reasons = []
    for doc, minutes in docs_at:
        received = RECEIVED + timedelta(minutes=minutes)
        fmt_ = formats.get(fmt)
        ctx = ParseContext(received_at=received, options=options or fmt_.options_for(None))
        (alert,) = fmt_.run(doc, ctx).alerts
        event = to_event(make_message(alert, route="r", routing_key=ROUTING_KEY, received_at=received, request_id="x"))
        decision = decide(record, event)
        reasons.append(decision.reason)
        if decision.record is not None:
            record = replace(decision.record, delivered=True, lease_until=0)
    return reasons


def test_an_events_v2_refire_after_a_resolve_opens_a_new_incident_whatever_its_timestamp() -> None:
    trigger: dict[str, Any] = load_case("events_v2", "trigger").doc
    trigger["payload"]["timestamp"] = (RECEIVED - timedelta(hours=1)).isoformat()  # the detection time, kept
    resolve = load_case("events_v2", "resolve").doc
    assert walk("events_v2", [(trigger, 0), (resolve, 10), (trigger, 30)]) == ["new", "resolve", "reopen"]


def test_a_sentry_regression_from_a_late_event_pages_after_the_issue_was_resolved() -> None:
    created, resolved = load_case("sentry", "issue_created").doc, load_case("sentry", "issue_resolved").doc
    late: dict[str, Any] = load_case("sentry", "event_alert").doc
    late["data"]["event"]["issue_id"] = created["data"]["issue"]["id"]
    late["data"]["event"]["datetime"] = RECEIVED.isoformat()  # older than the resolve below
    reasons = walk("sentry", [(created, 0), (resolved, 10), (late, 11)])
    assert reasons == ["new", "resolve", "reopen"]


def test_a_wavefront_test_never_shares_the_real_alerts_incident() -> None:
    test = run(load_case("wavefront", "testing"))["events"][0]
    real = load_case("wavefront", "testing").doc
    assert test["dedup_key"] == f"wavefront:test:{real['alertId']}"


def test_sns_raw_message_delivery_with_snss_headers_is_read() -> None:
    alarm = json.loads(load_case("cloudwatch", "sns-alarm").doc["Message"])
    ctx = ParseContext(
        received_at=RECEIVED, headers={"x-amz-sns-message-type": "Notification", "x-amz-sns-rawdelivery": "true"}
    )
    (alert,) = formats.get("cloudwatch").run(alarm, ctx).alerts
    assert alert.action == "trigger"


def test_half_an_emoji_inside_the_sns_message_is_cleaned_like_the_body() -> None:
    doc = load_case("cloudwatch", "sns-alarm").doc
    doc["Message"] = doc["Message"].replace("checkout-api-5xx-high", "checkout-\\ud83d", 1)
    options = formats.get("cloudwatch").options_for({"verify_signatures": False})
    ctx = ParseContext(received_at=RECEIVED, options=options)
    (alert,) = formats.get("cloudwatch").run(doc, ctx).alerts
    json.dumps(alert.model_dump(mode="json")).encode("utf-8")  # no lone surrogate left to refuse


def test_the_test_prefix_keeps_a_long_summary_within_pagerdutys_limit() -> None:
    alert = Alert(
        format="f",
        identity="i",
        action="trigger",
        occurred_at=RECEIVED,
        summary="x" * SUMMARY_LIMIT,
        source="s",
        test=True,
    )
    (kept,) = _tests_handled(Parsed(alerts=[alert]), Route(routing_key=ROUTING_KEY, send_test_notifications=True), "r")
    assert kept.summary is not None and kept.summary.startswith("[TEST] ") and len(kept.summary) <= SUMMARY_LIMIT
    Alert.model_validate(kept.model_dump(by_alias=True))


def test_a_crafted_uptime_kuma_message_is_not_a_regex_bomb() -> None:
    doc = {"heartbeat": None, "monitor": None, "msg": "[a][" + "] " * 5000 + "certificate " * 5000 + "expire"}
    parsed = formats.get("uptime_kuma").run(
        doc, ParseContext(received_at=RECEIVED, options=formats.get("uptime_kuma").options_for(None))
    )
    assert isinstance(parsed, Parsed)  # finishes at once (pytest-timeout would fail a catastrophic regex)


@pytest.mark.parametrize(
    ("fmt", "case", "where"),
    [
        ("cloudwatch", "sns-subscription-confirmation", ("SubscribeURL",)),
        ("gcp", "open", ("incident", "url")),
    ],
)
def test_an_unparseable_url_is_a_400_or_ignored_not_a_crash(fmt: str, case: str, where: tuple[str, ...]) -> None:
    try:
        doc = load_case(fmt, case).doc
    except FileNotFoundError:
        pytest.skip(f"no {fmt}/{case} fixture")
    node = doc
    for step in where[:-1]:
        node = node[step]
    node[where[-1]] = "https://[::1/x?project=p"
    f = formats.get(fmt)
    options = f.options_for({"verify_signatures": False} if fmt == "cloudwatch" else None)
    with contextlib.suppress(BadRequest):
        f.run(doc, ParseContext(received_at=RECEIVED, options=options))


@pytest.mark.parametrize(
    ("fmt", "case", "put"),
    [
        ("pingdom", "http-down", lambda d, u: d["check_params"].update(full_url=u, url=u)),
        ("uptime_kuma", "http-down", lambda d, u: d["monitor"].update(url=u)),
    ],
)
def test_credentials_in_a_checked_url_never_reach_pagerduty(fmt: str, case: str, put: Any) -> None:
    c = load_case(fmt, case)
    doc = c.doc
    put(doc, "https://monitor:S3cretPw@api.example.com/health?api_key=K3yValue&region=eu")
    out = json.dumps(run(replace(c, body=json.dumps(doc).encode())))
    assert "S3cretPw" not in out and "K3yValue" not in out
    assert "region=eu" in out  # the rest of the URL is still there to click
