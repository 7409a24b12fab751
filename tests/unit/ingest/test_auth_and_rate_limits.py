"""Who gets in and how often, as pure functions (no AWS, a frozen clock): callers' credentials
(rotation, signatures, required signatures, mistakes in the configuration) and per-caller rate
limits. Request bodies and their limits are in test_body.py."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pdrelay.config import RelayConfig, parse_config
from pdrelay.delivery.pacing import Bucket
from pdrelay.errors import (
    ConcurrentUpdate,
    ConfigError,
    TooManyRequests,
    Unauthorized,
)
from pdrelay.ingest.auth import authenticate, enforce_rate, sign

KEY = "R0UT1NGKEYF0RTESTS00000000000001"
OLD, NEW = "old-token-for-rotation-0001", "new-token-for-rotation-0002"
HMAC_KEY = "hmac-key-for-signing-senders-000000000001"
NOW = 1_795_512_600.0


def config(**caller: Any) -> RelayConfig:
    return RelayConfig.model_validate(
        {
            "default_route": "ops",
            "routes": {"ops": {"routing_key": KEY}},
            "callers": [
                {"name": "am", "tokens": [OLD, NEW]},
                {"name": "signer", **caller} if caller else {"name": "signer", "hmac_keys": [HMAC_KEY]},
            ],
        }
    )


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_both_tokens_of_a_rotation_are_accepted_and_nothing_else() -> None:
    assert authenticate(config(), bearer(OLD)).name == "am"
    assert authenticate(config(), bearer(NEW)).name == "am"
    with pytest.raises(Unauthorized, match="invalid credentials"):
        authenticate(config(), bearer(NEW[:-1] + "X"))


def signed(body: bytes, stamp: float = NOW, key: str = HMAC_KEY) -> dict[str, str]:
    return {"x-pdrelay-timestamp": str(int(stamp)), "x-pdrelay-signature": sign(key, int(stamp), body)}


def test_a_signed_body_names_its_caller_within_the_tolerance_window() -> None:
    body = b'{"x": 1}'
    assert authenticate(config(), signed(body), body=body, now=NOW).name == "signer"
    assert authenticate(config(), signed(body, NOW - 299), body=body, now=NOW).name == "signer"


@pytest.mark.parametrize(
    ("headers", "body", "reason"),
    [
        (signed(b'{"x": 1}'), b'{"x": 2}', "does not match"),  # body changed after signing
        (signed(b'{"x": 1}', NOW - 301), b'{"x": 1}', "more than 300 s"),  # a replay, later
        (signed(b'{"x": 1}', NOW + 301), b'{"x": 1}', "more than 300 s"),
        (signed(b'{"x": 1}', key="another-key-that-nobody-configured-0000"), b'{"x": 1}', "does not match"),
        ({"x-pdrelay-timestamp": "soon", "x-pdrelay-signature": "sha256=00"}, b"{}", "Unix seconds"),
        ({"x-pdrelay-timestamp": str(int(NOW)), "x-pdrelay-signature": "md5=00"}, b"{}", "sha256="),
    ],
)
def test_a_bad_signature_is_a_401_that_says_why(headers: dict[str, str], body: bytes, reason: str) -> None:
    with pytest.raises(Unauthorized) as refused:
        authenticate(config(), headers, body=body, now=NOW)
    assert refused.value.message == "invalid signature"
    assert any(reason in p for p in refused.value.problems)
    assert HMAC_KEY not in str(refused.value.problems)


def test_a_caller_that_must_sign_cannot_use_its_token_alone() -> None:
    strict = config(tokens=["signer-token-0000000001"], hmac_keys=[HMAC_KEY], require_signature=True)
    with pytest.raises(Unauthorized, match="signature required"):
        authenticate(strict, bearer("signer-token-0000000001"))
    assert authenticate(strict, signed(b"{}"), body=b"{}", now=NOW).name == "signer"


@pytest.mark.parametrize(
    ("caller", "problem"),
    [
        ({"tokens": ["short"]}, "callers.1.tokens: every token has at least 16 characters"),
        ({"hmac_keys": ["short-key"]}, "callers.1.hmac_keys: every HMAC key has at least 32 characters"),
        ({"tokens": [OLD]}, "callers.1.tokens: the same token is given twice"),
        ({}, "callers.1: no credential"),
        ({"tokens": ["another-token-00000001"], "require_signature": True}, "require_signature: the caller has no"),
        ({"tokens": ["another-token-00000001"], "rate_limit": {"requests": 0}}, "callers.1.rate_limit.requests"),
    ],
)
def test_caller_mistakes_name_their_place_and_never_echo_a_credential(caller: dict[str, Any], problem: str) -> None:
    doc = {
        "default_route": "ops",
        "routes": {"ops": {"routing_key": KEY}},
        "callers": [{"name": "am", "tokens": [OLD]}, {"name": "other", **caller}],
    }
    with pytest.raises(ConfigError) as refused:
        parse_config(json.dumps(doc))
    assert any(problem in p for p in refused.value.problems), refused.value.problems
    assert OLD not in str(refused.value)


class Buckets:
    """The dedup store's bucket interface over a dict."""

    def __init__(self) -> None:
        self.items: dict[str, Bucket] = {}
        self.conflicts = 0

    def get_bucket(self, key: str) -> Bucket | None:
        return self.items.get(key)

    def put_bucket(self, key: str, bucket: Bucket, previous_version: int) -> None:
        if self.conflicts:
            self.conflicts -= 1
            raise ConcurrentUpdate("raced")
        self.items[key] = bucket


def test_a_caller_over_its_rate_limit_gets_429_with_retry_after_and_others_are_unaffected() -> None:
    conf = config(tokens=["signer-token-0000000001"], rate_limit={"requests": 6, "per_seconds": 60})
    noisy = conf.callers[1]
    store = Buckets()
    allowed = 0
    with pytest.raises(TooManyRequests) as refused:
        for _ in range(100):
            enforce_rate(noisy, store, default_requests=600, default_window=60, now=NOW)
            allowed += 1
    assert allowed == 1  # a burst of limit // 6, then one every (60 / 5) s
    assert refused.value.status == 429 and refused.value.retry_after == 12
    enforce_rate(noisy, store, default_requests=600, default_window=60, now=NOW + 12)
    for _ in range(50):  # the other caller uses the default, unharmed
        enforce_rate(conf.callers[0], store, default_requests=600, default_window=60, now=NOW)


def test_a_zero_default_turns_rate_limits_off_and_races_for_the_bucket_never_refuse() -> None:
    store = Buckets()
    for _ in range(1000):
        enforce_rate(config().callers[0], store, default_requests=0, default_window=60, now=NOW)
    store.conflicts = 5
    enforce_rate(config().callers[0], store, default_requests=1, default_window=60, now=NOW)
