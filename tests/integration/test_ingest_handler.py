"""The ingest handler against SQS semantics (moto): 202 only for what is queued, 4xx with reasons."""

from __future__ import annotations

import base64
import json
from typing import Any

import boto3
import pytest

from pdrelay.models import parse_message
from tests.conftest import ROUTING_KEY, TOKEN, load_event
from tests.integration.conftest import Aws, Handler


def body_of(answer: dict[str, Any]) -> dict[str, Any]:
    return json.loads(answer["body"])


def test_an_alertmanager_notification_is_queued_and_answered_202(aws: Aws, ingest: Handler) -> None:
    answer = ingest(load_event("apigw-alertmanager-firing.json"))
    assert answer["statusCode"] == 202, answer
    body = body_of(answer)
    assert body["alerts"] == [
        {"action": "trigger", "dedup_key": "alertmanager:c0ffee00d15ea5e1", "identity": "c0ffee00d15ea5e1"}
    ]
    (queued,) = aws.drain()
    message = parse_message(queued["Body"])
    assert message.dedup_key == "alertmanager:c0ffee00d15ea5e1"
    assert message.request_id == "Reqalertmanager"
    assert queued["MessageAttributes"]["format"]["StringValue"] == "alertmanager"
    assert ROUTING_KEY not in json.dumps(queued["MessageAttributes"])


def test_auto_detects_and_a_mixed_group_gives_one_message_per_alert(aws: Aws, ingest: Handler) -> None:
    answer = ingest(load_event("apigw-alertmanager-mixed.json"))
    body = body_of(answer)
    assert (answer["statusCode"], body["format"]) == (202, "alertmanager")
    assert [a["action"] for a in body["alerts"]] == ["trigger", "resolve"]
    assert len(aws.drain()) == 2


def _with(event: dict[str, Any], **changes: Any) -> dict[str, Any]:
    for key, value in changes.items():
        if key == "auth":
            if value is None:
                event["headers"].pop("authorization", None)
            else:
                event["headers"]["authorization"] = value
        elif key == "path":
            event["rawPath"] = event["requestContext"]["http"]["path"] = value
        else:
            event[key] = value
    return event


@pytest.mark.parametrize(
    ("changes", "status", "message"),
    [
        ({"auth": None}, 401, "missing credentials"),
        ({"auth": "Bearer not-the-token-at-all"}, 401, "invalid credentials"),
        ({"body": "{not json"}, 400, "malformed JSON"),
        ({"body": ""}, 400, "empty body"),
        ({"body": json.dumps({"alerts": []}), "path": "/v1/alerts/alertmanager"}, 400, "no alerts"),
        ({"path": "/v1/alerts/nagios"}, 400, "unknown format 'nagios'"),
        ({"body": json.dumps({"what": "is this"}), "path": "/v1/alerts/auto"}, 400, "could not detect"),
        ({"body": "x" * (300 * 1024)}, 413, "the limit is 262144 bytes"),
        ({"path": "/v1/nothing"}, 404, "no such endpoint"),
    ],
)
def test_bad_requests_get_a_4xx_with_the_reason_and_nothing_is_queued(
    aws: Aws, ingest: Handler, changes: dict[str, Any], status: int, message: str
) -> None:
    answer = ingest(_with(load_event("apigw-alertmanager-firing.json"), **changes))
    assert answer["statusCode"] == status, answer
    assert message in json.dumps(body_of(answer))
    assert aws.drain() == []


def test_a_base64_body_is_decoded(aws: Aws, ingest: Handler) -> None:
    event = load_event("apigw-alertmanager-firing.json")
    event["body"] = base64.b64encode(event["body"].encode()).decode()
    event["isBase64Encoded"] = True
    assert ingest(event)["statusCode"] == 202


def test_the_pagerduty_compatible_endpoint_answers_like_pagerduty(aws: Aws, ingest: Handler) -> None:
    answer = ingest(load_event("apigw-events-v2-trigger.json"))
    assert answer["statusCode"] == 202
    assert body_of(answer) == {"status": "success", "message": "Event processed", "dedup_key": "disk-full/db-1"}
    bad = load_event("apigw-events-v2-trigger.json")
    bad["body"] = json.dumps({"routing_key": "default", "event_action": "trigger"})
    answer = ingest(bad)
    assert answer["statusCode"] == 400
    body = body_of(answer)
    assert (body["status"], body["message"]) == ("invalid event", "Event object is invalid")
    assert "'payload' is missing or not an object" in body["errors"]
    assert len(aws.drain()) == 1


def test_nothing_is_answered_202_when_sqs_does_not_take_the_message(aws: Aws, ingest: Handler) -> None:
    aws.sqs.delete_queue(QueueUrl=aws.queue_url)
    answer = ingest(load_event("apigw-alertmanager-firing.json"))
    assert answer["statusCode"] == 503
    assert "retry" in body_of(answer)["message"]


def test_health_needs_no_credentials(aws: Aws, ingest: Handler) -> None:
    answer = ingest(load_event("apigw-health.json"))
    assert answer["statusCode"] == 200
    assert "alertmanager" in body_of(answer)["formats"]


def test_configuration_is_read_from_ssm(aws: Aws, ingest: Handler, monkeypatch: pytest.MonkeyPatch) -> None:
    document = {
        "default_route": "checkout",
        "callers": [{"name": "am", "token": "ssm-token-000000000001"}],
        "routes": {"checkout": {"routing_key": ROUTING_KEY}},
    }
    boto3.client("ssm").put_parameter(Name="/pdrelay/config", Value=json.dumps(document), Type="SecureString")
    monkeypatch.setenv("PDRELAY_CONFIG", "ssm:/pdrelay/config")
    event = load_event("apigw-alertmanager-firing.json")
    assert ingest(event)["statusCode"] == 401  # the embedded default token no longer applies
    event["headers"]["authorization"] = "Bearer ssm-token-000000000001"
    answer = ingest(event)
    assert (answer["statusCode"], body_of(answer)["route"]) == (202, "checkout")
    assert TOKEN not in json.dumps(body_of(answer))
