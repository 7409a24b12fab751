"""The hardened edge through the real ingest (and dispatch) handlers against moto: credentials kept in
Secrets Manager and rotated, signed and gzip requests, per-caller rate limits, input limits, and
planted secrets that must not come out anywhere."""

from __future__ import annotations

import copy
import gzip
import json
import time
from typing import Any

import boto3
import pytest

from pdrelay.delivery.dispatcher import get_dispatcher
from pdrelay.ingest.auth import sign
from pdrelay.local.apigw import api_gateway_event
from pdrelay.local.emulator import EmulatorServer
from tests.conftest import load_event, unique
from tests.integration.conftest import Aws, ConfigWriter, Handler

KEY = "EDGER0UT1NGKEY000000000000000001"
INLINE = "inline-token-for-local-use-0001"
ROTATED_OLD, ROTATED_NEW = "secret-token-from-sm-old-000001", "secret-token-from-sm-new-000002"
HMAC_KEY = "hmac-key-kept-in-secrets-manager-000000001"


@pytest.fixture
def configure(write_config: ConfigWriter) -> ConfigWriter:
    return write_config


def doc(**extra: Any) -> dict[str, Any]:
    return {
        "default_route": "ops",
        "routes": {"ops": {"routing_key": KEY}},
        "callers": [{"name": "local", "token": INLINE}],
        **extra,
    }


def call(
    ingest: Handler,
    body: bytes,
    headers: dict[str, str],
    path: str = "/v1/alerts/alertmanager",
) -> tuple[int, dict[str, Any], dict[str, str]]:
    answer = ingest(api_gateway_event("POST", path, {"content-type": "application/json", **headers}, body))
    return answer["statusCode"], json.loads(answer["body"]), answer.get("headers") or {}


def firing(fingerprint: str | None = None) -> bytes:
    body = copy.deepcopy(load_event("formats/alertmanager/firing.json"))
    body["alerts"][0]["fingerprint"] = fingerprint or unique("fp")
    return json.dumps(body).encode()


def test_credentials_in_secrets_manager_rotate_without_a_gap(aws: Aws, ingest: Handler, configure: Any) -> None:
    secrets = boto3.client("secretsmanager")
    secrets.create_secret(
        Name="pdrelay/callers", SecretString=json.dumps({"callers": {"am": {"tokens": [ROTATED_OLD]}}})
    )
    configure(
        doc(callers=[{"name": "local", "token": INLINE}, {"name": "am"}], credentials_secret="secret:pdrelay/callers")
    )
    assert call(ingest, firing(), {"authorization": f"Bearer {ROTATED_OLD}"})[0] == 202
    # Rotation: the new token is added, senders move, the old one is removed; each step keeps sending.
    secrets.put_secret_value(
        SecretId="pdrelay/callers", SecretString=json.dumps({"callers": {"am": {"tokens": [ROTATED_OLD, ROTATED_NEW]}}})
    )
    configure(
        doc(callers=[{"name": "local", "token": INLINE}, {"name": "am"}], credentials_secret="secret:pdrelay/callers")
    )
    for token in (ROTATED_OLD, ROTATED_NEW):
        assert call(ingest, firing(), {"authorization": f"Bearer {token}"})[0] == 202
    secrets.put_secret_value(
        SecretId="pdrelay/callers", SecretString=json.dumps({"callers": {"am": {"tokens": [ROTATED_NEW]}}})
    )
    configure(
        doc(callers=[{"name": "local", "token": INLINE}, {"name": "am"}], credentials_secret="secret:pdrelay/callers")
    )
    status, body, _ = call(ingest, firing(), {"authorization": f"Bearer {ROTATED_OLD}"})
    assert (status, body["message"]) == (401, "invalid credentials")
    assert call(ingest, firing(), {"authorization": f"Bearer {ROTATED_NEW}"})[0] == 202


def test_a_broken_credentials_secret_is_a_500_that_names_no_secret(aws: Aws, ingest: Handler, configure: Any) -> None:
    boto3.client("secretsmanager").create_secret(
        Name="pdrelay/bad", SecretString=json.dumps({"callers": {"ghost": {"tokens": [ROTATED_NEW]}}})
    )
    configure(doc(credentials_secret="secret:pdrelay/bad"))
    status, body, _ = call(ingest, firing(), {"authorization": f"Bearer {INLINE}"})
    assert (status, body["message"]) == (500, "pdrelay is misconfigured; see its logs")
    assert ROTATED_NEW not in json.dumps(body)


def test_a_signed_gzip_request_is_checked_on_the_bytes_sent(aws: Aws, ingest: Handler, configure: Any) -> None:
    configure(
        doc(
            callers=[
                {"name": "local", "token": INLINE},
                {"name": "signer", "hmac_keys": [HMAC_KEY], "require_signature": True},
            ]
        )
    )
    packed = gzip.compress(firing())
    stamp = int(time.time())
    headers = {
        "content-encoding": "gzip",
        "x-pdrelay-timestamp": str(stamp),
        "x-pdrelay-signature": sign(HMAC_KEY, stamp, packed),
    }
    status, body, _ = call(ingest, packed, headers)
    assert status == 202 and body["accepted"] == 1
    status, body, headers_out = call(
        ingest, packed, {**headers, "x-pdrelay-signature": sign(HMAC_KEY, stamp, firing())}
    )
    assert (status, body["message"]) == (401, "invalid signature")
    assert "WWW-Authenticate" in headers_out


def test_a_noisy_caller_gets_429_with_retry_after_while_another_goes_on(
    aws: Aws, ingest: Handler, configure: Any
) -> None:
    configure(
        doc(
            callers=[
                {"name": "local", "token": INLINE},
                {
                    "name": "noisy",
                    "token": "noisy-token-00000000001",
                    "rate_limit": {"requests": 12, "per_seconds": 60},
                },
            ]
        )
    )
    answers = [call(ingest, firing(), {"authorization": "Bearer noisy-token-00000000001"}) for _ in range(4)]
    assert [a[0] for a in answers] == [202, 202, 429, 429]
    _, body, headers = answers[2]
    assert body["message"] == "caller 'noisy' is over its rate limit (12 requests per 60 s)"
    assert 1 <= int(headers["Retry-After"]) <= 6  # burst of 12 // 6, then one every 6 s
    assert call(ingest, firing(), {"authorization": f"Bearer {INLINE}"})[0] == 202


def test_input_limits_are_4xx_with_reasons(aws: Aws, ingest: Handler, configure: Any) -> None:
    configure(doc(), PDRELAY_MAX_ALERTS_PER_REQUEST="3", PDRELAY_MAX_STRING_CHARS="1000")
    auth = {"authorization": f"Bearer {INLINE}"}
    many = json.loads(firing())
    many["alerts"] = [dict(many["alerts"][0], fingerprint=f"fp{i}") for i in range(4)]
    status, body, _ = call(ingest, json.dumps(many).encode(), auth)
    assert (status, body["message"]) == (413, "4 alerts in one request; the limit is 3")
    long = json.loads(firing())
    long["alerts"][0]["annotations"]["description"] = "x" * 1001
    status, body, _ = call(ingest, json.dumps(long).encode(), auth)
    assert status == 400 and body["errors"] == ["alerts[0].annotations.description: 1001 characters; the limit is 1000"]
    status, body, _ = call(ingest, b"<alert/>", {**auth, "content-type": "application/xml"})
    assert status == 415 and "is not JSON" in body["message"]
    status, body, _ = call(ingest, gzip.compress(b"[" * 10 + b"]" * 10), {**auth, "content-encoding": "gzip"})
    assert status == 400
    assert aws.drain() == []


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
        doc(callers=[{"name": "local", "token": INLINE}, {"name": "am"}], credentials_secret="secret:pdrelay/planted")
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
