"""The ingest handler with monitor formats: v1 events, header-less callers, SNS, alarm actions, tests."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import requests

from pdrelay.formats import cloudwatch
from pdrelay.local.apigw import api_gateway_event
from pdrelay.models import parse_message
from tests import sns_signing
from tests.conftest import TOKEN
from tests.formats_harness import load_case
from tests.integration.conftest import Aws, Handler

V1 = "/generic/2010-04-15/create_event.json"


def call(
    ingest: Handler, path: str, body: Any, headers: dict[str, str] | None = None, auth: str | None = f"Bearer {TOKEN}"
) -> tuple[int, dict[str, Any], dict[str, str]]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    all_headers = {"content-type": "application/json", **({"authorization": auth} if auth else {}), **(headers or {})}
    answer = ingest(api_gateway_event("POST", path, all_headers, raw))
    return answer["statusCode"], json.loads(answer["body"]), answer.get("headers") or {}


def test_an_events_v1_trigger_is_answered_as_v1_answers(aws: Aws, ingest: Handler) -> None:
    status, body, _ = call(ingest, V1, load_case("events_v1", "trigger").doc)
    assert (status, body) == (
        200,
        {"status": "success", "message": "Event processed", "incident_key": "nagios/web-03/HTTP"},
    )
    (queued,) = aws.drain()
    message = parse_message(queued["Body"])
    assert (message.alert.action, message.dedup_key) == ("trigger", "nagios/web-03/HTTP")


def test_an_invalid_v1_event_gets_pagerdutys_invalid_event_answer(aws: Aws, ingest: Handler) -> None:
    doc = {"service_key": "default", "event_type": "resolve"}
    status, body, _ = call(ingest, V1, doc)
    assert status == 400
    assert body["status"] == "invalid event"
    assert "'incident_key' is required for event_type resolve" in body["errors"]
    status, body, _ = call(ingest, V1, {**doc, "service_key": "no-such-route", "incident_key": "k"})
    assert status == 400 and "'service_key'" in body["errors"][0]
    assert aws.drain() == []


def test_a_token_in_the_query_serves_senders_that_cannot_set_headers(aws: Aws, ingest: Handler) -> None:
    doc = load_case("alertmanager", "firing").doc
    status, _, _ = call(ingest, f"/v1/alerts/auto?token={TOKEN}", doc, auth=None)
    assert status == 202
    status, body, _ = call(ingest, "/v1/alerts/auto?token=wrong-token-000000000", doc, auth=None)
    assert (status, body["message"]) == (401, "invalid credentials")
    assert len(aws.drain()) == 1


def test_a_401_asks_for_basic_auth_as_sns_needs(aws: Aws, ingest: Handler) -> None:
    status, _, headers = call(ingest, "/v1/alerts/cloudwatch", load_case("cloudwatch", "sns-alarm").doc, auth=None)
    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Basic ")


def sns_post(ingest: Handler, doc: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
    """As SNS posts: text/plain, its headers, basic auth from the subscription URL."""
    headers = {
        "content-type": "text/plain; charset=UTF-8",
        "x-amz-sns-message-type": doc["Type"],
        "x-amz-sns-message-id": doc["MessageId"],
        "x-amz-sns-topic-arn": doc["TopicArn"],
    }
    basic = "Basic " + base64.b64encode(f"sns:{TOKEN}".encode()).decode()
    return call(ingest, "/v1/alerts/auto", json.dumps(doc).encode(), headers, auth=basic)


@pytest.fixture
def sns_certificate(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    visited: list[str] = []
    monkeypatch.setattr(cloudwatch, "fetch_certificate", sns_signing.fetch)
    monkeypatch.setattr(cloudwatch, "visit_subscribe_url", visited.append)
    cloudwatch._public_key.cache_clear()
    return visited


def test_a_signed_sns_alarm_over_text_plain_is_queued(aws: Aws, ingest: Handler, sns_certificate: list[str]) -> None:
    status, body, _ = sns_post(ingest, sns_signing.sign(load_case("cloudwatch", "sns-alarm").doc))
    assert (status, body["format"], body["detected"]) == (202, "cloudwatch", True)
    (queued,) = aws.drain()
    assert parse_message(queued["Body"]).alert.identity.endswith(":alarm:checkout-api-5xx-high")


def test_a_tampered_sns_message_is_refused_and_not_queued(
    aws: Aws, ingest: Handler, sns_certificate: list[str]
) -> None:
    doc = sns_signing.sign(load_case("cloudwatch", "sns-alarm").doc)
    doc["Message"] = doc["Message"].replace('"ALARM"', '"OK"')
    status, body, _ = sns_post(ingest, doc)
    assert (status, body["message"]) == (401, "SNS message signature does not match")
    assert aws.drain() == []


def test_a_subscription_confirmation_visits_sns_once_and_pages_no_one(
    aws: Aws, ingest: Handler, sns_certificate: list[str]
) -> None:
    doc = sns_signing.sign(load_case("cloudwatch", "sns-subscription-confirmation").doc, "2")
    status, body, _ = sns_post(ingest, doc)
    assert (status, body["accepted"]) == (202, 0)
    assert "confirmed" in body["notes"][0]
    assert sns_certificate == [doc["SubscribeURL"]]
    assert sns_post(ingest, doc)[0] == 202  # SNS's retry of the same message is a replay: not visited again
    assert sns_certificate == [doc["SubscribeURL"]]
    assert aws.drain() == []


def test_a_failed_confirmation_is_a_502_so_sns_tries_again(
    aws: Aws, ingest: Handler, monkeypatch: pytest.MonkeyPatch, sns_certificate: list[str]
) -> None:
    monkeypatch.setattr(cloudwatch, "visit_subscribe_url", cloudwatch._visit_subscribe_url)
    unreachable = "https://sns.eu-west-1.amazonaws.com:443/unreachable"
    doc = sns_signing.sign(
        {**load_case("cloudwatch", "sns-subscription-confirmation").doc, "SubscribeURL": unreachable}
    )

    def offline(*_a: Any, **_k: Any) -> None:
        raise requests.ConnectionError("no route to host")

    monkeypatch.setattr(requests, "get", offline)
    status, body, _ = sns_post(ingest, doc)
    assert status == 502 and "could not confirm" in body["message"]


def test_an_alarm_lambda_action_invokes_ingest_directly(aws: Aws, ingest: Handler) -> None:
    answer = ingest(load_case("cloudwatch", "lambda-action-alarm").doc)
    assert answer["status"] == "accepted" and answer["route"] == "default"
    (queued,) = aws.drain()
    assert parse_message(queued["Body"]).alert.action == "trigger"
    bad = load_case("cloudwatch", "lambda-action-alarm").doc
    bad["alarmData"]["state"]["value"] = "ON_FIRE"
    assert ingest(bad)["statusCode"] == 400


def test_partly_bad_requests_queue_the_good_alerts_and_list_the_rest(aws: Aws, ingest: Handler) -> None:
    doc = load_case("alertmanager", "mixed").doc
    doc["alerts"][0]["status"] = "exploded"
    status, body, _ = call(ingest, "/v1/alerts/alertmanager", doc)
    assert (status, body["accepted"]) == (202, 1)
    assert body["rejected"][0].startswith("alerts[0]: status")
    assert len(aws.drain()) == 1


def test_test_notifications_page_only_on_routes_that_ask(
    aws: Aws, ingest: Handler, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = {
        "default_route": "quiet",
        "callers": [{"name": "c", "token": TOKEN}],
        "routes": {
            "quiet": {"routing_key": "Q" * 32, "formats": {"generic": {"test": "demo"}}},
            "loud": {
                "routing_key": "L" * 32,
                "send_test_notifications": True,
                "formats": {"generic": {"test": "demo"}},
            },
        },
    }
    path = tmp_path / "pdrelay.json"
    path.write_text(json.dumps(config))
    monkeypatch.setenv("PDRELAY_CONFIG", str(path))
    doc = {"id": "button", "status": "firing", "summary": "Test from the settings page", "demo": True}
    status, body, _ = call(ingest, "/v1/alerts/generic?route=quiet", doc)
    assert (status, body["accepted"]) == (202, 0)
    assert "test notification" in body["notes"][0] and "send_test_notifications" in body["notes"][0]
    assert aws.drain() == []
    status, body, _ = call(ingest, "/v1/alerts/generic?route=loud", doc)
    assert (status, body["alerts"][0]["test"]) == (202, True)
    (queued,) = aws.drain()
    assert parse_message(queued["Body"]).alert.summary == "[TEST] Test from the settings page"
