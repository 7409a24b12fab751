"""Who gets in, through the real ingest handler against moto: a signature reaches only its caller's
routes, odd credentials are a 401 (never a 500), a signature covers the bytes sent (gzip included),
and credentials kept in Secrets Manager rotate without a gap; a credentials secret that cannot be
read is a 500 that says 'misconfigured', leaks nothing and leaves dispatch alone. The same rules as
pure functions are in tests/unit/ingest/test_auth_and_rate_limits.py."""

from __future__ import annotations

import gzip
import json
import time
from typing import Any

import boto3
import botocore.client
import pytest
from botocore.exceptions import ClientError

from pdrelay.ingest.auth import sign
from pdrelay.settings import get_settings
from tests.edge_harness import (
    HMAC_A,
    HMAC_B,
    HMAC_KEY,
    INLINE,
    LATIN1_JUNK,
    ROTATED_NEW,
    ROTATED_OLD,
    SM_TOKEN,
    bearer,
    call,
    firing,
    local_doc,
    signed,
    signers_doc,
)
from tests.integration.conftest import Aws, Handler

# --- whose routes a signature reaches -------------------------------------------------------------


def test_a_signature_valid_for_one_caller_reaches_only_that_callers_routes(
    aws: Aws, ingest: Handler, configure: Any
) -> None:
    configure(signers_doc())
    body = firing()
    status, _, _ = call(ingest, body, {**signed(body, HMAC_A), "x-pdrelay-route": "ops"})
    assert status == 202
    status, answer, _ = call(ingest, body, {**signed(body, HMAC_A), "x-pdrelay-route": "db"})
    assert (status, answer["message"]) == (403, "caller 'a' may not send to route 'db'")
    status, _, _ = call(ingest, body, signed(body, HMAC_A), path="/v1/alerts/alertmanager?route=db")
    assert status == 403
    # b must sign: its key as a bearer token is nothing, and a's signature does not make it b.
    assert call(ingest, body, {**bearer(HMAC_B), "x-pdrelay-route": "db"})[0] == 401
    assert len(aws.drain()) == 1


# --- odd credentials ------------------------------------------------------------------------------


def test_basic_auth_with_non_ascii_credentials_is_a_401(aws: Aws, ingest: Handler, configure: Any) -> None:
    configure(signers_doc())
    status, answer, headers = call(ingest, firing(), {"authorization": f"Basic {LATIN1_JUNK}"})
    assert (status, answer["message"]) == (401, "missing credentials")
    assert "WWW-Authenticate" in headers


def test_a_superscript_digit_in_the_signature_timestamp_is_a_401(aws: Aws, ingest: Handler, configure: Any) -> None:
    configure(signers_doc())
    status, answer, _ = call(
        ingest, firing(), {"x-pdrelay-timestamp": "\u00b2", "x-pdrelay-signature": "sha256=" + "0" * 64}
    )
    assert (status, answer["message"]) == (401, "invalid signature")


# --- signed gzip bodies: the signature covers the bytes sent --------------------------------------


def test_a_signed_gzip_request_is_checked_on_the_bytes_sent(aws: Aws, ingest: Handler, configure: Any) -> None:
    configure(
        local_doc(
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


def test_a_signed_gzip_body_with_bytes_appended_after_signing_is_refused(
    aws: Aws, ingest: Handler, configure: Any
) -> None:
    configure(signers_doc())
    packed = gzip.compress(firing())
    headers = {**signed(packed, HMAC_A), "content-encoding": "gzip"}
    assert call(ingest, packed + b"tail", headers)[0] == 401
    assert call(ingest, packed, headers)[0] == 202


# --- credentials kept in Secrets Manager ----------------------------------------------------------


def test_credentials_in_secrets_manager_rotate_without_a_gap(aws: Aws, ingest: Handler, configure: Any) -> None:
    secrets = boto3.client("secretsmanager")
    secrets.create_secret(
        Name="pdrelay/callers", SecretString=json.dumps({"callers": {"am": {"tokens": [ROTATED_OLD]}}})
    )
    configure(
        local_doc(
            callers=[{"name": "local", "token": INLINE}, {"name": "am"}], credentials_secret="secret:pdrelay/callers"
        )
    )
    assert call(ingest, firing(), {"authorization": f"Bearer {ROTATED_OLD}"})[0] == 202
    # Rotation: the new token is added, senders move, the old one is removed; each step keeps sending.
    secrets.put_secret_value(
        SecretId="pdrelay/callers", SecretString=json.dumps({"callers": {"am": {"tokens": [ROTATED_OLD, ROTATED_NEW]}}})
    )
    configure(
        local_doc(
            callers=[{"name": "local", "token": INLINE}, {"name": "am"}], credentials_secret="secret:pdrelay/callers"
        )
    )
    for token in (ROTATED_OLD, ROTATED_NEW):
        assert call(ingest, firing(), {"authorization": f"Bearer {token}"})[0] == 202
    secrets.put_secret_value(
        SecretId="pdrelay/callers", SecretString=json.dumps({"callers": {"am": {"tokens": [ROTATED_NEW]}}})
    )
    configure(
        local_doc(
            callers=[{"name": "local", "token": INLINE}, {"name": "am"}], credentials_secret="secret:pdrelay/callers"
        )
    )
    status, body, _ = call(ingest, firing(), {"authorization": f"Bearer {ROTATED_OLD}"})
    assert (status, body["message"]) == (401, "invalid credentials")
    assert call(ingest, firing(), {"authorization": f"Bearer {ROTATED_NEW}"})[0] == 202


def test_a_broken_credentials_secret_is_a_500_that_names_no_secret(aws: Aws, ingest: Handler, configure: Any) -> None:
    boto3.client("secretsmanager").create_secret(
        Name="pdrelay/bad", SecretString=json.dumps({"callers": {"ghost": {"tokens": [ROTATED_NEW]}}})
    )
    configure(local_doc(credentials_secret="secret:pdrelay/bad"))
    status, body, _ = call(ingest, firing(), {"authorization": f"Bearer {INLINE}"})
    assert (status, body["message"]) == (500, "pdrelay is misconfigured; see its logs")
    assert ROTATED_NEW not in json.dumps(body)


@pytest.fixture
def secret_config(aws: Aws, configure: Any) -> dict[str, Any]:
    with_secret = signers_doc(
        callers=[{"name": "local", "token": INLINE}, {"name": "am"}], credentials_secret="secret:pdrelay/edge-callers"
    )
    configure(with_secret)
    return with_secret


def _failing(operation: str, code: str) -> Any:
    real = getattr(botocore.client.BaseClient, "_make_api_call")  # noqa: B009 - private

    def make(self: Any, name: str, params: dict[str, Any]) -> Any:
        if name == operation:
            raise ClientError({"Error": {"Code": code, "Message": f"{code} (test)"}}, name)
        return real(self, name, params)

    return make


@pytest.mark.parametrize("failure", ["missing", "throttled", "denied", "not json", "wrong shape", "short token"])
def test_an_unreadable_credentials_secret_is_a_500_that_leaks_nothing_and_dispatch_goes_on(
    secret_config: dict[str, Any],
    ingest: Handler,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    failure: str,
) -> None:
    secrets = boto3.client("secretsmanager")
    good = json.dumps({"callers": {"am": {"tokens": [SM_TOKEN]}}})
    if failure != "missing":
        secrets.create_secret(
            Name="pdrelay/edge-callers",
            SecretString={
                "not json": f"tokens: [{SM_TOKEN}]",
                "wrong shape": json.dumps({"am": {"tokens": [SM_TOKEN]}}),
                "short token": json.dumps({"callers": {"am": {"tokens": [SM_TOKEN, "short-" + SM_TOKEN[:4]]}}}),
            }.get(failure, good),
        )
    if failure in ("throttled", "denied"):
        monkeypatch.setattr(
            botocore.client.BaseClient,
            "_make_api_call",
            _failing("GetSecretValue", "ThrottlingException" if failure == "throttled" else "AccessDeniedException"),
        )
    for headers in (bearer(SM_TOKEN), bearer(INLINE)):
        status, answer, _ = call(ingest, firing(), headers)
        assert status == 500, answer
        assert answer["status"] == "error"
    output = capsys.readouterr()
    assert SM_TOKEN not in output.out + output.err
    assert SM_TOKEN[:4] not in json.dumps(answer)
    # The dispatcher and sweeper read routes without the secret (their roles cannot read it).
    from pdrelay.delivery.dispatcher import config_reader

    routes = config_reader(get_settings())()
    assert routes is not None and set(routes.routes) == {"ops", "db"}


@pytest.mark.parametrize("failure", ["missing", "denied"])
def test_a_secret_that_cannot_be_read_is_reported_as_misconfiguration(
    secret_config: dict[str, Any],
    ingest: Handler,
    monkeypatch: pytest.MonkeyPatch,
    failure: str,
) -> None:
    if failure == "denied":
        monkeypatch.setattr(
            botocore.client.BaseClient, "_make_api_call", _failing("GetSecretValue", "AccessDeniedException")
        )
    status, answer, _ = call(ingest, firing(), bearer(INLINE))
    assert (status, answer["message"]) == (500, "pdrelay is misconfigured; see its logs")
