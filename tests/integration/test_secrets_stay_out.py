"""Routing keys, tokens and credentials planted in requests never appear in logs or metrics while
alerts flow through both handlers, and nothing but the routing key reaches PagerDuty."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from pdrelay.delivery.dispatcher import get_dispatcher
from pdrelay.ingest.auth import sign
from pdrelay.local.emulator import EmulatorServer
from tests.conftest import ROUTING_KEY, TOKEN, load_event, unique
from tests.edge_harness import HMAC_KEY, INLINE, KEY, ROTATED_NEW, call, firing, local_doc
from tests.integration.conftest import Aws, Handler
from tests.integration.policy_harness import (
    OPS_KEY,
    PLATFORM_KEY,
    TEAM_KEY,
    alertmanager,
    dispatch_all,
    post,
    shop_doc,
    window,
)


@pytest.fixture
def emitted(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> Callable[[], str]:
    """Metrics on (the test environment turns them off), and a function that returns everything
    written so far: standard output and error (pdrelay's log lines and metrics) and log records."""
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)

    def read() -> str:
        output = capsys.readouterr()
        return output.out + output.err + "\n".join(json.dumps(r.__dict__, default=str) for r in caplog.records)

    return read


def test_no_secret_in_any_log_line_or_metric(
    aws: Aws,
    pagerduty: EmulatorServer,
    ingest: Handler,
    dispatch: Handler,
    monkeypatch: pytest.MonkeyPatch,
    emitted: Callable[[], str],
) -> None:
    monkeypatch.setenv("PDRELAY_ROUTING_KEY", ROUTING_KEY)
    assert ingest(load_event("apigw-alertmanager-firing.json"))["statusCode"] == 202
    wrong = load_event("apigw-alertmanager-firing.json")
    wrong["headers"]["authorization"] = "Bearer " + TOKEN[:-1] + "X"
    assert ingest(wrong)["statusCode"] == 401
    (message,) = aws.drain()
    record = load_event("sqs-dispatch-batch.json")["Records"][0]
    record["body"] = message["Body"]
    assert dispatch({"Records": [record]}) == {"batchItemFailures": []}
    assert pagerduty.state.snapshot()  # it really went through
    captured = emitted()
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
    emitted: Callable[[], str],
) -> None:
    """Secrets in every place a request can carry them, good and bad requests alike."""
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
    logs = emitted()
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


def test_no_routing_key_token_or_planted_credential_leaks_from_the_new_paths(
    aws: Aws,
    pagerduty: EmulatorServer,
    ingest: Handler,
    configure: Any,
    emitted: Callable[[], str],
) -> None:
    doc = shop_doc()
    doc["routes"]["ops"]["storm"] = {"max_new_per_minute": 1, "rollup_update_seconds": 0}
    doc["maintenance"] = [window("held-shop", routes=["shop"], when={"labels.job": "held"})]
    configure(doc)
    planted = "AKIAPLANTED00EXAMPLE"  # the shape of an AWS access key id
    for route, job in (("shop", "checkout"), ("shop", "held"), ("ops", "a"), ("ops", "b")):
        body = alertmanager()
        body["alerts"][0]["labels"]["job"] = job
        body["alerts"][0]["annotations"]["description"] = f"key {planted} leaked; Authorization: Bearer {TOKEN}"
        assert post(ingest, f"/v1/alerts/alertmanager?route={route}", body)[0] == 202
    post(ingest, "/v2/change/enqueue", {"routing_key": "shop", "payload": {"summary": f"deploy {planted}"}})
    post(ingest, "/v1/test/shop", {})
    outcomes = dispatch_all(aws)
    assert {"delivered", "held", "rolled-up"} <= {o.result for o in outcomes}
    captured = emitted()
    assert '"AlertsHeld"' in captured and '"EventsSent"' in captured
    for secret in (TEAM_KEY, PLATFORM_KEY, OPS_KEY, TOKEN, planted):
        assert secret not in captured
    sent = json.dumps([*pagerduty.state.events, *pagerduty.state.change_events])
    assert planted not in sent and TOKEN not in sent
