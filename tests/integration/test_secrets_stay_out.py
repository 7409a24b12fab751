"""Routing keys, tokens and credentials planted in requests never appear in logs or metrics while
alerts flow through both handlers, and nothing but the routing key reaches PagerDuty."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest

from pdrelay.delivery.dispatcher import get_dispatcher
from pdrelay.ingest.auth import sign
from pdrelay.local.emulator import EmulatorServer
from tests.conftest import ROUTING_KEY, TOKEN, load_event, unique
from tests.edge_harness import HMAC_KEY, INLINE, KEY, ROTATED_NEW, call, firing, local_doc
from tests.integration.conftest import Aws, Handler


def test_no_secret_in_any_log_line_or_metric(
    aws: Aws,
    pagerduty: EmulatorServer,
    ingest: Handler,
    dispatch: Handler,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("PDRELAY_ROUTING_KEY", ROUTING_KEY)
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    assert ingest(load_event("apigw-alertmanager-firing.json"))["statusCode"] == 202
    wrong = load_event("apigw-alertmanager-firing.json")
    wrong["headers"]["authorization"] = "Bearer " + TOKEN[:-1] + "X"
    assert ingest(wrong)["statusCode"] == 401
    (message,) = aws.drain()
    record = load_event("sqs-dispatch-batch.json")["Records"][0]
    record["body"] = message["Body"]
    assert dispatch({"Records": [record]}) == {"batchItemFailures": []}
    assert pagerduty.state.snapshot()  # it really went through
    output = capsys.readouterr()
    log_records = "\n".join(json.dumps(r.__dict__, default=str) for r in caplog.records)
    captured = output.out + output.err + log_records
    assert '"AlertsAccepted"' in captured and '"EventsSent"' in captured  # metrics were emitted
    assert "dedup_key" in captured  # and logs were written
    for secret in (ROUTING_KEY, TOKEN, TOKEN[:-1] + "X"):
        assert secret not in captured
    assert json.loads(message["Body"])["routing_key"] == ROUTING_KEY  # the queue itself must carry it


def test_planted_secrets_never_reach_logs_metrics_or_pagerduty(
    aws: Aws,
    pagerduty: EmulatorServer,
    ingest: Handler,
    configure: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Secrets in every place a request can carry them, good and bad requests alike."""
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    boto3.client("secretsmanager").create_secret(
        Name="pdrelay/planted",
        SecretString=json.dumps({"callers": {"am": {"tokens": [ROTATED_NEW], "hmac_keys": [HMAC_KEY]}}}),
    )
    configure(
        local_doc(
            callers=[{"name": "local", "token": INLINE}, {"name": "am"}], credentials_secret="secret:pdrelay/planted"
        )
    )
    planted = {
        "aws_key": "AKIAPLANTED00SECRET1",
        "password": "Pl4nted-Passw0rd-in-annotation",
        "bearer": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwbGFudGVkIn0.c2lnbmF0dXJlcGxhbnRlZA",
        "url_password": "UrlPassw0rdPlanted",
        "wrong_token": "wrong-token-planted-0000000001",
        "cookie": "session=planted-cookie-value-0001",
        "api_key": "planted-x-api-key-value-000001",
    }
    body = json.loads(firing())
    annotations = body["alerts"][0]["annotations"]
    annotations.update(
        {
            "description": f"key {planted['aws_key']} at postgres://app:{planted['url_password']}@db.internal/x",
            "db_password": planted["password"],
            "curl": f"curl -H 'Authorization: Bearer {planted['bearer']}' https://api.example.com",
        }
    )
    raw = json.dumps(body).encode()
    good = {"authorization": f"Bearer {ROTATED_NEW}", "cookie": planted["cookie"], "x-api-key": planted["api_key"]}
    assert call(ingest, raw, good)[0] == 202
    assert call(ingest, raw, {**good, "authorization": f"Bearer {planted['wrong_token']}"})[0] == 401
    assert call(ingest, raw, {}, path=f"/v1/alerts/alertmanager?token={ROTATED_NEW}")[0] == 202
    assert call(ingest, raw, {}, path=f"/v1/alerts/alertmanager?token={planted['wrong_token']}")[0] == 401
    stamp = int(time.time())
    assert (
        call(ingest, raw, {"x-pdrelay-timestamp": str(stamp), "x-pdrelay-signature": sign(HMAC_KEY, stamp, raw)})[0]
        == 202
    )
    assert (
        call(
            ingest, raw + b" ", {"x-pdrelay-timestamp": str(stamp), "x-pdrelay-signature": sign(HMAC_KEY, stamp, raw)}
        )[0]
        == 401
    )
    assert call(ingest, b"{broken " + planted["password"].encode(), good)[0] == 400
    v2 = {
        "routing_key": "ops",
        "event_action": "trigger",
        "dedup_key": unique("k"),
        "payload": {
            "summary": f"token {planted['bearer']}",
            "source": "x",
            "severity": "error",
            "custom_details": {"secret": planted["password"], "note": planted["aws_key"]},
        },
    }
    assert call(ingest, json.dumps(v2).encode(), good, path="/v2/enqueue")[0] == 202
    for message in aws.drain():
        get_dispatcher().process(message["Body"])
    assert len(pagerduty.state.events) >= 2
    output = capsys.readouterr()
    logs = output.out + output.err + "\n".join(json.dumps(r.__dict__, default=str) for r in caplog.records)
    assert '"AlertsAccepted"' in logs and '"EventsSent"' in logs and '"RequestsRejected"' in logs
    sent = json.dumps([*pagerduty.state.events, *pagerduty.state.change_events])
    for name, secret in {
        **planted,
        "inline": INLINE,
        "rotated": ROTATED_NEW,
        "hmac": HMAC_KEY,
        "routing_key": KEY,
    }.items():
        assert secret not in logs, f"{name} in the logs"
        if name != "routing_key":  # PagerDuty needs the routing key; nothing else
            assert secret not in sent, f"{name} sent to PagerDuty"
