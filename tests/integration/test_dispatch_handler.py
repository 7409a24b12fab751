"""The dispatch handler against DynamoDB/SQS semantics (moto) and real HTTP to the PagerDuty emulator."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from pdrelay.formats import ParseContext, alertmanager
from pdrelay.local.emulator import EmulatorServer
from pdrelay.local.stack import free_port
from pdrelay.models import QueueMessage, make_message
from pdrelay.table import DedupStore, item_key
from pdrelay.timeutil import ManualClock
from tests.conftest import ROUTING_KEY, load_event, unique
from tests.integration.conftest import Aws, Handler


@pytest.fixture(autouse=True)
def _frozen(clock: ManualClock) -> None:
    """The dispatcher's clock stands still at the wall clock's now; messages are received then."""


def alert_messages(name: str, fingerprint: str, routing_key: str = ROUTING_KEY) -> list[QueueMessage]:
    """The sample's alerts as ingest queues them, received at the dispatcher's now."""
    from pdrelay.delivery.dispatcher import get_dispatcher

    received = get_dispatcher().clock.now()
    doc = load_event(name)
    for alert in doc["alerts"]:
        alert["fingerprint"] = f"{fingerprint}-{alert['fingerprint']}"
    return [
        make_message(a, route="default", routing_key=routing_key, received_at=received, request_id="req-1")
        for a in alertmanager.parse(doc, ParseContext(received_at=received)).alerts
    ]


def sqs_event(*messages: QueueMessage | str, receive_count: int = 1) -> dict[str, Any]:
    template = load_event("sqs-dispatch-batch.json")["Records"][0]
    records = []
    for i, message in enumerate(messages):
        record = json.loads(json.dumps(template))
        record["messageId"] = f"msg-{i}"
        record["body"] = message if isinstance(message, str) else message.to_json()
        record["attributes"]["ApproximateReceiveCount"] = str(receive_count)
        records.append(record)
    return {"Records": records}


def incidents(pd: EmulatorServer) -> list[dict[str, Any]]:
    return pd.state.snapshot()


def test_the_sample_sqs_event_is_delivered(aws: Aws, pagerduty: EmulatorServer, dispatch: Handler) -> None:
    answer = dispatch(load_event("sqs-dispatch-batch.json"))
    assert answer == {"batchItemFailures": []}
    (incident,) = incidents(pagerduty)
    assert (incident["status"], incident["dedup_key"]) == ("triggered", "alertmanager:c0ffee00d15ea5e1")


def test_trigger_then_resolve_is_one_incident_that_ends_resolved(
    aws: Aws, pagerduty: EmulatorServer, dispatch: Handler
) -> None:
    fp = unique()
    (firing,) = alert_messages("formats/alertmanager/firing.json", fp)
    (resolved,) = alert_messages("formats/alertmanager/resolved.json", fp)
    dispatch(sqs_event(firing))
    dispatch(sqs_event(resolved))
    (incident,) = incidents(pagerduty)
    assert incident["status"] == "resolved"
    assert [e["action"] for e in incident["log"]] == ["trigger", "resolve"]
    record = DedupStore(aws.dynamodb, aws.table_name).get(item_key(ROUTING_KEY, firing.dedup_key))
    assert record is not None
    assert (record.state, record.delivered, record.events) == ("resolved", True, 2)


def test_a_redelivered_message_makes_no_second_call(aws: Aws, pagerduty: EmulatorServer, dispatch: Handler) -> None:
    (firing,) = alert_messages("formats/alertmanager/firing.json", unique())
    dispatch(sqs_event(firing))
    dispatch(sqs_event(firing, receive_count=2))
    dispatch(sqs_event(firing, firing))
    assert len(pagerduty.state.events) == 1


def test_reordered_resolve_before_trigger_opens_nothing(aws: Aws, pagerduty: EmulatorServer, dispatch: Handler) -> None:
    fp = unique()
    (firing,) = alert_messages("formats/alertmanager/firing.json", fp)
    (resolved,) = alert_messages("formats/alertmanager/resolved.json", fp)
    dispatch(sqs_event(resolved))  # the table knows nothing: forwarded once, in case PagerDuty has it open
    dispatch(sqs_event(firing))  # older than the resolve: stale
    assert incidents(pagerduty) == []
    assert [e["event_action"] for e in pagerduty.state.events] == ["resolve"]


def test_a_400_goes_to_the_dlq_with_pagerdutys_reason_and_is_not_retried(
    aws: Aws, pagerduty: EmulatorServer, dispatch: Handler
) -> None:
    (firing,) = alert_messages("formats/alertmanager/firing.json", unique(), routing_key="not-a-valid-key")
    answer = dispatch(sqs_event(firing))
    assert answer == {"batchItemFailures": []}  # handled: it is in the DLQ, not to be redelivered
    (dead,) = aws.drain(aws.dlq_url)
    attributes = dead["MessageAttributes"]
    assert "routing_key" in attributes["failure_reason"]["StringValue"]
    assert attributes["http_status"]["StringValue"] == "400"
    assert attributes["format"]["StringValue"] == "alertmanager"
    assert json.loads(dead["Body"])["dedup_key"] == firing.dedup_key


def test_an_unreachable_events_api_fails_the_item_and_a_retry_delivers(
    aws: Aws, pagerduty: EmulatorServer, dispatch: Handler, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import reset_pdrelay_caches

    (firing,) = alert_messages("formats/alertmanager/firing.json", unique())
    monkeypatch.setenv("PDRELAY_EVENTS_URL", f"http://127.0.0.1:{free_port()}")
    reset_pdrelay_caches()
    answer = dispatch(sqs_event(firing))
    assert answer == {"batchItemFailures": [{"itemIdentifier": "msg-0"}]}
    monkeypatch.setenv("PDRELAY_EVENTS_URL", pagerduty.url)
    reset_pdrelay_caches()
    assert dispatch(sqs_event(firing, receive_count=2)) == {"batchItemFailures": []}
    (incident,) = incidents(pagerduty)
    assert incident["status"] == "triggered"


def test_only_the_failed_item_of_a_batch_is_reported(
    aws: Aws, pagerduty: EmulatorServer, dispatch: Handler, monkeypatch: pytest.MonkeyPatch
) -> None:
    good, also_good = (alert_messages("formats/alertmanager/firing.json", unique())[0] for _ in range(2))
    answer = dispatch(sqs_event(good, "{broken json", also_good))
    assert answer == {"batchItemFailures": []}
    assert len(incidents(pagerduty)) == 2
    (dead,) = aws.drain(aws.dlq_url)
    assert "unreadable queue message" in dead["MessageAttributes"]["failure_reason"]["StringValue"]


def test_the_emulator_is_reachable_over_real_http(pagerduty: EmulatorServer) -> None:
    answer = requests.post(pagerduty.url + "/v2/enqueue", json={"event_action": "trigger"}, timeout=5)
    assert answer.status_code == 400
    assert answer.json()["status"] == "invalid event"


def test_an_unexpected_error_is_logged_with_the_alert_it_happened_to(
    aws: Aws,
    pagerduty: EmulatorServer,
    dispatch: Handler,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a dispatcher that fails in a way nobody foresaw
    from pdrelay.delivery.dispatcher import Dispatcher

    def broken(self: Dispatcher, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("unforeseen")

    monkeypatch.setattr(Dispatcher, "process", broken)
    (firing,) = alert_messages("formats/alertmanager/firing.json", unique())

    # When a batch arrives
    answer = dispatch(sqs_event(firing))

    # Then the message goes back to the queue, and the line saying so names its alert (so that
    # `pdrelay trace` shows it), never the routing key
    assert answer == {"batchItemFailures": [{"itemIdentifier": "msg-0"}]}
    err = capsys.readouterr().err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    (line,) = [x for x in lines if x.get("message") == "message returned to the queue after an unexpected error"]
    assert (line["dedup_key"], line["request_id"], line["route"]) == (firing.dedup_key, "req-1", "default")
    assert line["error"] == "RuntimeError"
    assert ROUTING_KEY not in err
