"""Who gets in and how often, as pure functions (no AWS, a frozen clock): callers' credentials
(rotation, signatures, required signatures, mistakes in the configuration) and per-caller rate
limits, and the status a refusal is answered with on each kind of endpoint. Request bodies and
their limits are in test_body.py."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pdrelay.config import Caller, RelayConfig, parse_config
from pdrelay.errors import (
    BadRequest,
    ConfigError,
    Forbidden,
    TooManyRequests,
    Unauthorized,
)
from pdrelay.ingest.auth import authenticate, enforce_rate, sign
from pdrelay.ingest.endpoints import error_response
from tests.edge_harness import HMAC_A, HMAC_B, INLINE, basic, bearer, signers_doc

KEY = "R0UT1NGKEYF0RTESTS00000000000001"
OLD, NEW = "old-token-for-rotation-0001", "new-token-for-rotation-0002"
HMAC_KEY = "hmac-key-for-signing-senders-000000000001"
NOW = 1_795_512_600.0
LIMITED = "limited-token-for-edge-tests-1"


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


def signers() -> RelayConfig:
    """The configuration of ``signers_doc``: 'local' with a token, 'a' and 'b' signing."""
    return parse_config(json.dumps(signers_doc()))


# --- tokens ---------------------------------------------------------------------------------------


def test_both_tokens_of_a_rotation_are_accepted_and_nothing_else() -> None:
    assert authenticate(config(), bearer(OLD)).name == "am"
    assert authenticate(config(), bearer(NEW)).name == "am"
    with pytest.raises(Unauthorized, match="invalid credentials"):
        authenticate(config(), bearer(NEW[:-1] + "X"))


@pytest.mark.parametrize(
    "headers_and_query",
    [
        ({"authorization": f"Bearer {HMAC_A}"}, {}),
        (basic(f"x:{HMAC_A}"), {}),
        ({}, {"token": HMAC_A}),
        ({"authorization": f"Bearer {INLINE.upper()}"}, {}),  # tokens are case-sensitive
        ({"authorization": f"Bearer {INLINE[:-1]}"}, {}),  # a prefix is not the token
        ({"authorization": f"Bearer {INLINE}x"}, {}),
        ({"authorization": f"Bearer {INLINE} {INLINE}"}, {}),
        ({"authorization": f"Bearer {INLINE},Bearer {INLINE}"}, {}),  # a duplicated header, as API Gateway joins it
        ({"authorization": f"Token {INLINE}"}, {}),  # an unknown scheme is not a bearer token
        (
            {
                "authorization": f"Bearer {INLINE}",
                "x-pdrelay-signature": "sha256=00",
                "x-pdrelay-timestamp": str(int(NOW)),
            },
            {},
        ),  # a bad signature is not rescued by a good token
    ],
)
def test_nothing_but_a_callers_own_token_or_signature_gets_in(
    headers_and_query: tuple[dict[str, str], dict[str, str]],
) -> None:
    headers, query = headers_and_query
    with pytest.raises(Unauthorized):
        authenticate(signers(), headers, query, b"{}", now=NOW)


@pytest.mark.parametrize(
    "headers",
    [
        {"authorization": f"bearer {INLINE}"},  # the scheme is case-insensitive (RFC 7235)
        {"authorization": f"BEARER   {INLINE}  "},
        basic(f":{INLINE}"),  # basic auth: any user, the token as password
        basic(f"sns:{INLINE}"),
        {"authorization": f"Bearer {INLINE}", "x-pdrelay-signature": ""},  # an empty signature header is no signature
    ],
)
def test_the_token_forms_the_readme_names_are_accepted(headers: dict[str, str]) -> None:
    assert authenticate(signers(), headers, {}, b"{}", now=NOW).name == "local"


@pytest.mark.parametrize("userinfo", ["", ":", "sns", "sns:", f"{INLINE}:", f"{INLINE}"])
def test_basic_auth_without_a_password_is_no_credential(userinfo: str) -> None:
    with pytest.raises(Unauthorized) as refused:
        authenticate(signers(), basic(userinfo), {}, b"{}", now=NOW)
    assert refused.value.message in ("missing credentials", "invalid credentials")


# --- signatures -----------------------------------------------------------------------------------


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


def test_an_empty_or_blank_signature_header_does_not_lift_require_signature() -> None:
    strict = parse_config(
        json.dumps(
            signers_doc(
                callers=[
                    {
                        "name": "b",
                        "tokens": ["b-token-for-the-review-0001"],
                        "hmac_keys": [HMAC_B],
                        "require_signature": True,
                    }
                ]
            )
        )
    )
    for value in ("", "   "):
        with pytest.raises(Unauthorized) as refused:
            authenticate(
                strict, {**bearer("b-token-for-the-review-0001"), "x-pdrelay-signature": value}, {}, b"{}", now=NOW
            )
        assert refused.value.message in ("signature required", "invalid signature")


ARABIC_INDIC_NOW = "\u0661\u0667\u0669\u0665\u0665\u0661\u0662\u0666\u0660\u0660"  # NOW in other digits


@pytest.mark.parametrize(
    "stamp",
    [
        "",
        "-1795512600",
        "1795512600.5",
        "1e9",
        "0x6b04d418",
        "17955126000000",
        "1795512600 1795512600",
        ARABIC_INDIC_NOW,
    ],
)
def test_odd_signature_timestamps_are_a_401_never_an_error(stamp: str) -> None:
    body = b"{}"
    headers = {"x-pdrelay-timestamp": stamp, "x-pdrelay-signature": sign(HMAC_A, str(int(NOW)), body)}
    with pytest.raises(Unauthorized):
        authenticate(signers(), headers, {}, body, now=NOW)


# --- mistakes in callers' credentials -------------------------------------------------------------


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


def test_token_and_key_mistakes_in_config_never_give_an_empty_credential() -> None:
    for caller in (
        {"name": "x", "token": ""},
        {"name": "x", "tokens": [""]},
        {"name": "x", "hmac_keys": [""]},
        {"name": "x", "token": None},
    ):
        with pytest.raises(ConfigError):
            parse_config(json.dumps(signers_doc(callers=[caller])))


def test_an_hmac_key_given_to_two_callers_is_refused_at_load() -> None:
    shared = signers_doc(
        callers=[
            {"name": "a", "hmac_keys": [HMAC_A], "routes": ["ops"]},
            {"name": "b", "hmac_keys": [HMAC_A], "routes": ["db"]},
        ]
    )
    with pytest.raises(ConfigError) as refused:
        parse_config(json.dumps(shared))
    assert HMAC_A not in str(refused.value)


# --- rate limits ----------------------------------------------------------------------------------


class Buckets:
    """The dedup store's caller-limit update over a dict: the same conditions as the table's."""

    def __init__(self) -> None:
        self.tat: dict[str, float] = {}
        self.updates = 0

    def take_caller_slot(
        self, key: str, now: float, interval: float, tolerance: float, *, busy_first: bool = False
    ) -> tuple[float, float]:
        self.updates += 1
        tat = self.tat.get(key, 0.0)
        if tat > now + tolerance:
            return tat - tolerance - now, tat
        self.tat[key] = max(tat, now) + interval
        return 0.0, self.tat[key]


def limited(requests: int, per_seconds: int = 60) -> Caller:
    return Caller.model_validate(
        {
            "name": f"limited-{requests}",
            "token": LIMITED,
            "rate_limit": {"requests": requests, "per_seconds": per_seconds},
        }
    )


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


@pytest.mark.parametrize(
    ("where", "status"),
    [
        ({}, 429),
        ({"pagerduty_style": True}, 429),  # /v2/enqueue and /v2/change/enqueue answer as PagerDuty's v2 does
        ({"pagerduty_style": True, "events_v1": True}, 403),  # as PagerDuty's v1 did: the Agent retries a 403
    ],
)
def test_over_the_rate_limit_is_429_but_403_on_the_events_api_v1_endpoint(where: dict[str, bool], status: int) -> None:
    refused = TooManyRequests("caller 'agent' is over its rate limit (6 requests per 60 s)", retry_after=12)
    got, body = error_response(refused, **where)
    assert got == status
    assert body == {"status": "rejected", "message": "caller 'agent' is over its rate limit (6 requests per 60 s)"}


def test_the_events_api_v1_endpoint_answers_its_other_refusals_as_before() -> None:
    assert error_response(Unauthorized("invalid credentials"), pagerduty_style=True, events_v1=True)[0] == 401
    status, body = error_response(BadRequest("Event object is invalid", ["x"]), pagerduty_style=True, events_v1=True)
    assert (status, body["status"]) == (400, "invalid event")


def test_a_route_refused_on_the_events_api_v1_endpoint_is_final_not_throttled() -> None:
    # The PagerDuty Agent retries every 403 for ever: a caller that may not use the route must get an
    # answer that lands the event in the Agent's error queue, with the reason.
    refused = Forbidden("caller 'agent' may not send to route 'payments'")
    status, body = error_response(refused, pagerduty_style=True, events_v1=True)
    assert (status, body["status"]) == (400, "invalid event")
    assert body["errors"] == ["caller 'agent' may not send to route 'payments'"]
    assert error_response(refused, pagerduty_style=True)[0] == 403  # the other endpoints keep their 403


def test_a_zero_default_turns_rate_limits_off() -> None:
    store = Buckets()
    for _ in range(1000):
        enforce_rate(config().callers[0], store, default_requests=0, default_window=60, now=NOW)
    assert store.updates == 0


def test_a_quiet_caller_is_admitted_on_each_instances_own_count_without_a_table_write() -> None:
    # 600 per minute, 20 ingest functions: a burst of 100, of which each function admits 4 a minute
    # on its own; the fifth asks the table.
    store, caller = Buckets(), config().callers[0]
    for second in range(4):
        enforce_rate(caller, store, default_requests=600, default_window=60, processes=20, now=NOW + second)
    assert store.updates == 0
    enforce_rate(config().callers[0], store, default_requests=600, default_window=60, processes=20, now=NOW + 5)
    assert store.updates == 1
    # A minute on, the own count is back.
    enforce_rate(config().callers[0], store, default_requests=600, default_window=60, processes=20, now=NOW + 61)
    assert store.updates == 1


def test_the_instances_own_shares_and_the_table_together_stay_within_the_limit() -> None:
    from pdrelay.ingest.auth import CallerPolicy, forget_counts

    caller, store = limited(120), Buckets()
    policy = CallerPolicy(120, 60.0, processes=4)
    admitted: list[float] = []
    # Four instances (each its own count: forget_counts between them stands for another process),
    # each trying every 0.1 s for five minutes.
    for instance in range(4):
        forget_counts()
        for tick in range(3000):
            moment = NOW + tick / 10 + instance / 40
            try:
                enforce_rate(caller, store, default_requests=600, default_window=60, processes=4, now=moment)
                admitted.append(moment)
            except TooManyRequests:
                pass
    admitted.sort()
    worst = max(sum(1 for t in admitted if start <= t < start + 60) for start in admitted)
    assert policy.own_allowance == 4 and worst <= 120


@pytest.mark.parametrize("requests", [1, 2, 5, 6, 7, 11, 12, 600, 1_000_000])
def test_the_first_request_of_any_limit_is_allowed(requests: int) -> None:
    enforce_rate(limited(requests), Buckets(), default_requests=600, default_window=60, now=NOW)


@pytest.mark.parametrize("requests", [2, 6, 12, 120])
def test_a_limited_caller_gets_its_requests_back_within_its_window(requests: int) -> None:
    caller, store = limited(requests), Buckets()
    taken = 0
    for second in range(0, 120):
        for _ in range(requests):
            try:
                enforce_rate(caller, store, default_requests=600, default_window=60, now=NOW + second)
                taken += 1
            except TooManyRequests:
                break
    assert requests <= taken <= 2 * requests + 1  # two windows' worth, give or take the burst


def test_a_limit_of_one_request_per_minute_allows_one_each_minute() -> None:
    caller, store = limited(1), Buckets()
    enforce_rate(caller, store, default_requests=600, default_window=60, now=NOW)
    with pytest.raises(TooManyRequests) as refused:
        enforce_rate(caller, store, default_requests=600, default_window=60, now=NOW + 1)
    enforce_rate(caller, store, default_requests=600, default_window=60, now=NOW + 1 + refused.value.retry_after)
