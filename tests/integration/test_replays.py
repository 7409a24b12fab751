"""A monitor's retry of the same request pages once: formats whose notifications carry their own
times are told apart by the dispatcher (no write at ingest); PagerDuty-style events with an explicit
delivery id, and a captured signed request sent again, are answered again and queued once."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pdrelay.local.emulator import EmulatorServer
from tests.conftest import load_event, unique
from tests.edge_harness import HMAC_A, call, signed, signers_doc
from tests.integration.conftest import Aws, Handler
from tests.integration.policy_harness import dispatch_all


def test_a_repeated_alertmanager_request_costs_no_replay_write_and_pages_once(
    aws: Aws, ingest: Handler, pagerduty: EmulatorServer
) -> None:
    first = ingest(load_event("apigw-alertmanager-firing.json"))
    again = ingest(load_event("apigw-alertmanager-firing.json"))
    assert first["statusCode"] == again["statusCode"] == 202
    assert json.loads(again["body"])["alerts"] == json.loads(first["body"])["alerts"]
    items = aws.dynamodb.scan(TableName=aws.table_name)["Items"]
    assert not [i for i in items if i["pk"]["S"].startswith("replay#")]  # nothing written for it
    outcomes = dispatch_all(aws)
    assert [o.result for o in outcomes] == ["delivered", "skipped"]
    assert len(pagerduty.state.requests) == 1 and len(pagerduty.state.snapshot()) == 1


def test_a_repeated_trigger_after_its_resolve_does_not_reopen_the_incident(
    aws: Aws, ingest: Handler, pagerduty: EmulatorServer
) -> None:
    ingest(load_event("apigw-alertmanager-firing.json"))
    dispatch_all(aws)
    ingest(load_event("apigw-alertmanager-resolved.json"))
    dispatch_all(aws)
    ingest(load_event("apigw-alertmanager-firing.json"))  # the sender retrying a request it thought lost
    dispatch_all(aws)
    (incident,) = pagerduty.state.snapshot()
    assert incident["status"] == "resolved" and len(pagerduty.state.requests) == 2


def test_sns_redelivery_of_an_events_v2_trigger_is_recognised_by_its_message_id(aws: Aws, ingest: Handler) -> None:
    first = load_event("apigw-events-v2-trigger.json")
    first["headers"]["x-amz-sns-message-id"] = "0a1b2c3d-sns-message"
    redelivered = load_event("apigw-events-v2-trigger.json")
    redelivered["headers"]["x-amz-sns-message-id"] = "0a1b2c3d-sns-message"
    answer = json.loads(ingest(first)["body"])
    assert json.loads(ingest(redelivered)["body"]) == answer  # answered as PagerDuty answers any repeat
    assert len(aws.drain()) == 1
    reused = load_event("apigw-events-v2-trigger.json")  # same id, different event: not a replay
    reused["headers"]["x-amz-sns-message-id"] = "0a1b2c3d-sns-message"
    reused["body"] = reused["body"].replace('"trigger"', '"resolve"')
    assert ingest(reused)["statusCode"] == 202
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


def _with_id(name: str) -> dict[str, Any]:
    event = load_event(name)
    event["headers"]["idempotency-key"] = "retry-7"
    return event


def test_a_window_of_zero_turns_it_off(aws: Aws, ingest: Handler, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PDRELAY_REPLAY_WINDOW_SECONDS", "0")
    ingest(_with_id("apigw-events-v2-trigger.json"))
    ingest(_with_id("apigw-events-v2-trigger.json"))
    assert len(aws.drain()) == 2


def test_a_failed_enqueue_is_not_remembered_so_the_retry_is_queued(aws: Aws, ingest: Handler) -> None:
    url = aws.queue_url
    aws.sqs.delete_queue(QueueUrl=url)
    assert ingest(_with_id("apigw-events-v2-trigger.json"))["statusCode"] == 503
    aws.sqs.create_queue(QueueName=url.rsplit("/", 1)[1])
    answer = ingest(_with_id("apigw-events-v2-trigger.json"))
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
