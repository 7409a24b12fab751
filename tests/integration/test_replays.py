"""A monitor's retry of the same request within the window is answered again but queued once; so is
a captured signed request sent again."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import load_event, unique
from tests.edge_harness import HMAC_A, call, signed, signers_doc
from tests.integration.conftest import Aws, Handler


def test_the_same_request_twice_is_queued_once_and_the_repeat_says_so(aws: Aws, ingest: Handler) -> None:
    first = ingest(load_event("apigw-alertmanager-firing.json"))
    again = ingest(load_event("apigw-alertmanager-firing.json"))
    assert first["statusCode"] == again["statusCode"] == 202
    assert json.loads(again["body"])["replayed"] is True
    assert json.loads(again["body"])["alerts"] == json.loads(first["body"])["alerts"]
    assert len(aws.drain()) == 1


def test_a_different_body_is_not_a_replay(aws: Aws, ingest: Handler) -> None:
    ingest(load_event("apigw-alertmanager-firing.json"))
    ingest(load_event("apigw-alertmanager-resolved.json"))
    assert len(aws.drain()) == 2


def test_sns_redelivery_is_recognised_by_its_message_id(aws: Aws, ingest: Handler) -> None:
    first = load_event("apigw-alertmanager-firing.json")
    first["headers"]["x-amz-sns-message-id"] = "0a1b2c3d-sns-message"
    redelivered = load_event("apigw-alertmanager-firing.json")
    redelivered["headers"]["x-amz-sns-message-id"] = "0a1b2c3d-sns-message"
    ingest(first)
    assert json.loads(ingest(redelivered)["body"]).get("replayed") is True
    assert len(aws.drain()) == 1
    reused = load_event("apigw-alertmanager-resolved.json")  # same id, different event: not a replay
    reused["headers"]["x-amz-sns-message-id"] = "0a1b2c3d-sns-message"
    assert "replayed" not in json.loads(ingest(reused)["body"])
    assert len(aws.drain()) == 1


def test_the_pagerduty_endpoint_dedups_only_on_explicit_ids_and_answers_like_pagerduty(
    aws: Aws, ingest: Handler
) -> None:
    # The same body recurs legitimately there (trigger, resolve, trigger again): no body dedup.
    ingest(load_event("apigw-events-v2-trigger.json"))
    ingest(load_event("apigw-events-v2-trigger.json"))
    assert len(aws.drain()) == 2
    first = load_event("apigw-events-v2-trigger.json")
    first["headers"]["idempotency-key"] = "retry-42"
    again = load_event("apigw-events-v2-trigger.json")
    again["headers"]["idempotency-key"] = "retry-42"
    assert json.loads(ingest(first)["body"]) == json.loads(ingest(again)["body"])
    assert len(aws.drain()) == 1


def test_a_window_of_zero_turns_it_off(aws: Aws, ingest: Handler, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PDRELAY_REPLAY_WINDOW_SECONDS", "0")
    ingest(load_event("apigw-alertmanager-firing.json"))
    ingest(load_event("apigw-alertmanager-firing.json"))
    assert len(aws.drain()) == 2


def test_a_failed_enqueue_is_not_remembered_so_the_retry_is_queued(aws: Aws, ingest: Handler) -> None:
    url = aws.queue_url
    aws.sqs.delete_queue(QueueUrl=url)
    assert ingest(load_event("apigw-alertmanager-firing.json"))["statusCode"] == 503
    aws.sqs.create_queue(QueueName=url.rsplit("/", 1)[1])
    answer = ingest(load_event("apigw-alertmanager-firing.json"))
    assert answer["statusCode"] == 202 and "replayed" not in json.loads(answer["body"])
    assert len(aws.drain()) == 1


def test_a_captured_signed_v2_event_replayed_is_answered_as_a_duplicate(
    aws: Aws, ingest: Handler, configure: Any
) -> None:
    configure(signers_doc())
    event = {
        "routing_key": "ops",
        "event_action": "trigger",
        "dedup_key": unique("k"),
        "payload": {"summary": "disk full", "source": "db1", "severity": "error"},
    }
    body = json.dumps(event).encode()
    headers = signed(body, HMAC_A)
    first = call(ingest, body, headers, path="/v2/enqueue")
    again = call(ingest, body, headers, path="/v2/enqueue")
    assert (first[0], again[0]) == (202, 202)
    assert again[1] == first[1]  # PagerDuty's exact answer, as for any repeat on /v2/enqueue
    assert len(aws.drain()) == 1
