"""Credentials never leave for PagerDuty; everything else a responder needs does, unchanged."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from typing import Any

import pytest

from pdrelay.ingest.scrub import (
    DEPTH_MARKER,
    MAX_DEPTH,
    REDACTED,
    SCAN_LIMIT,
    UNSCANNED_MARKER,
    is_credential_key,
    scrub_details,
    scrub_text,
)
from tests.formats_harness import load_case, run

# Fixtures made up for these tests; none is a real credential.
AWS_KEY_ID = "AKIAQX7T2EXAMPLE0042"
AWS_SESSION_KEY_ID = "ASIAZZ9PEXAMPLE00077"
AWS_SECRET = "q7Tz/EXAMPLEsecretKEYvalue+0123456789abc"  # 40 characters
GITHUB = "ghp_" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7c"
GITHUB_PAT = "github_pat_11AAAEXAMPLE0_" + "x9" * 30
SLACK = "xoxb-1111111111-2222222222-ExAmPlEtOkEn42"
STRIPE = "sk_live_" + "51Hex4mpleKey0000Zz"
GOOGLE = "AIza" + "SyExample-Key_0123456789abcdefghijk"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwZHJlbGF5LXRlc3QifQ.c2lnbmF0dXJlLWZvci10ZXN0cw"
OPAQUE = "tk_9f8e7d6c5b4aPDR"
BASIC = "cGRyZWxheTpodW50ZXIy"  # base64 of "pdrelay:hunter2"
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEpAIBAAKCAQEAexampleexampleexampleexampleexample\n"
    "bm90IGEgcmVhbCBrZXksIGp1c3QgYSB0ZXN0IGZpeHR1cmU=\n"
    "-----END RSA PRIVATE KEY-----"
)

SHAPES = [AWS_KEY_ID, AWS_SESSION_KEY_ID, GITHUB, GITHUB_PAT, SLACK, STRIPE, GOOGLE, JWT, PEM]


def hidden(original: str, scrubbed: str, secret: str) -> None:
    assert secret in original
    assert secret not in scrubbed
    assert REDACTED in scrubbed


# --- value rules, on their own ----------------------------------------------------------------


@pytest.mark.parametrize(
    "secret",
    SHAPES,
    ids=["aws-id", "aws-session-id", "github", "github-pat", "slack", "stripe", "google", "jwt", "pem"],
)
def test_each_token_shape_is_replaced_where_it_stands_in_longer_text(secret: str) -> None:
    text = f"deploy failed: credential {secret} rejected by upstream (attempt 3)"
    scrubbed, count = scrub_text(text)
    assert scrubbed == f"deploy failed: credential {REDACTED} rejected by upstream (attempt 3)"
    assert count == 1


@pytest.mark.parametrize("secret", SHAPES[:-1])
def test_a_token_shape_alone_is_the_whole_string_redacted(secret: str) -> None:
    assert scrub_text(secret) == (REDACTED, 1)


def test_a_url_password_goes_and_the_user_and_host_stay() -> None:
    text = "cannot connect to postgresql://orders_app:Hunter2%21x@db-7.prod.internal:5432/orders?sslmode=require"
    assert scrub_text(text) == (
        f"cannot connect to postgresql://orders_app:{REDACTED}@db-7.prod.internal:5432/orders?sslmode=require",
        1,
    )


def test_a_url_password_containing_a_raw_at_sign_goes_whole() -> None:
    scrubbed, count = scrub_text("redis://:p@ss@cache.internal:6379/0")
    assert scrubbed == f"redis://:{REDACTED}@cache.internal:6379/0"
    assert count == 1


def test_an_odbc_connection_string_keeps_everything_but_the_password() -> None:
    text = "Driver={ODBC Driver 18};Server=sql1;Database=billing;Uid=svc_billing;Pwd={a;b=c};Encrypt=yes;"
    assert scrub_text(text) == (
        f"Driver={{ODBC Driver 18}};Server=sql1;Database=billing;Uid=svc_billing;Pwd={{{REDACTED}}};Encrypt=yes;",
        1,
    )
    ado = "Server=tcp:sql1,1433;User ID=svc;Password=Tr0ub4dor&3;Timeout=30"
    assert scrub_text(ado) == (f"Server=tcp:sql1,1433;User ID=svc;Password={REDACTED};Timeout=30", 1)


def test_passwords_and_tokens_in_query_strings_and_key_value_text_go() -> None:
    url = "GET https://api.example.com/v2/items?page=2&access_token=abc123def&sort=asc"
    assert scrub_text(url) == (f"GET https://api.example.com/v2/items?page=2&access_token={REDACTED}&sort=asc", 1)
    log = 'login failed user=alice password="correct horse" db_pass=s3cret retries=3'
    assert scrub_text(log) == (f'login failed user=alice password="{REDACTED}" db_pass={REDACTED} retries=3', 2)


def test_json_text_inside_a_string_loses_credential_values() -> None:
    text = '{"user": "alice", "apiKey": "k-123-456", "Authorization": "Bearer x", "count": 3}'
    assert scrub_text(text) == (
        f'{{"user": "alice", "apiKey": "{REDACTED}", "Authorization": "{REDACTED}", "count": 3}}',
        2,
    )


def test_aws_secret_access_keys_after_their_labels_go() -> None:
    for text in (
        f"aws_secret_access_key = {AWS_SECRET}",
        f'{{"AccessKeyId": "{AWS_KEY_ID}", "SecretAccessKey": "{AWS_SECRET}"}}',
        f"SecretAccessKey: {AWS_SECRET} (rotated)",
    ):
        scrubbed, count = scrub_text(text)
        assert count >= 1
        hidden(text, scrubbed, AWS_SECRET)
        assert AWS_KEY_ID not in scrubbed
    assert scrub_text(f"SecretAccessKey: {AWS_SECRET} (rotated)") == (f"SecretAccessKey: {REDACTED} (rotated)", 1)


def test_bearer_and_basic_keep_the_scheme_word_and_lose_the_credential() -> None:
    assert scrub_text(f"Authorization: Bearer {OPAQUE}") == (f"Authorization: Bearer {REDACTED}", 1)
    assert scrub_text(f"Authorization: Bearer {JWT}") == (f"Authorization: Bearer {REDACTED}", 1)
    assert scrub_text(f"curl -H 'Authorization: Basic {BASIC}' https://x") == (
        f"curl -H 'Authorization: Basic {REDACTED}' https://x",
        1,
    )
    assert scrub_text(f"authorization=Bearer {OPAQUE} then") == (f"authorization=Bearer {REDACTED} then", 1)


def test_a_pem_block_cut_off_by_the_monitor_goes_to_the_end_of_the_string() -> None:
    text = "key material: " + PEM[:90]
    assert scrub_text(text) == (f"key material: {REDACTED}", 1)
    openssh = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaA==\n-----END OPENSSH PRIVATE KEY-----"
    assert scrub_text(f"a {openssh} b") == (f"a {REDACTED} b", 1)


def test_several_credentials_in_one_string_are_each_counted() -> None:
    text = f"tokens {GITHUB} and {SLACK}; db mysql://root:toor@db/app"
    scrubbed, count = scrub_text(text)
    assert scrubbed == f"tokens {REDACTED} and {REDACTED}; db mysql://root:{REDACTED}@db/app"
    assert count == 3


@pytest.mark.parametrize(
    "text",
    [
        "CPU at 97% on web-3.prod.example.com for 5 minutes",
        "see https://grafana.example.com/d/abc123?orgId=1&from=now-1h and https://user@host.example.com/x",
        "https://web-1.example.com:8443/health returned 503",
        "request 123e4567-e89b-12d3-a456-426614174000 failed",
        "trace 0123456789abcdef0123456789abcdef span 89abcdef01234567",
        "routing key R0123456789ABCDEF0123456789ABCDE",
        "Bearer token expired for the basic auth realm",
        "Basic authentication failed; bearer of the pager: alice",
        "tests pass=118 fail=2 skip=0",
        "the author of the compass passenger tokenizer was authorized",
        "auth_method=oidc token_expires_at=2026-01-01T00:00:00Z secret_arn=arn:aws:secretsmanager:eu-west-1:1:secret:x",
        "AKIA is the prefix of AWS key ids; ghp_ of GitHub's; sk_live_ of Stripe's",
        "eyJ alone is not a token, nor is eyJhbGciOi.x",
        "password reset requested; token: see the runbook",
        "",
    ],
)
def test_ordinary_text_passes_unchanged(text: str) -> None:
    assert scrub_text(text) == (text, 0)


def test_scrubbing_twice_finds_nothing_the_second_time() -> None:
    text = (
        f"{PEM} {GITHUB} postgres://u:pw@h/db Password=x; Authorization: Bearer {OPAQUE} "
        f'"token": "abc" aws_secret_access_key={AWS_SECRET} pass=hunter2'
    )
    once, count = scrub_text(text)
    assert count == 8
    assert scrub_text(once) == (once, 0)
    details, found = scrub_details({"password": "x", "note": text})
    assert found == 9
    assert scrub_details(details) == (details, 0)


def test_a_string_longer_than_the_scan_limit_loses_its_unscanned_rest() -> None:
    head = ("all good " * (SCAN_LIMIT // 9))[: SCAN_LIMIT - 100] + f" {GITHUB} "
    text = head + "x" * 5000 + f" {GITHUB}"
    scrubbed, count = scrub_text(text)
    assert scrubbed.endswith(UNSCANNED_MARKER)
    assert GITHUB not in scrubbed
    assert len(scrubbed) < SCAN_LIMIT + len(UNSCANNED_MARKER)
    assert count == 2  # the token within the limit, and the dropped rest


def test_a_token_straddling_the_scan_limit_is_not_half_leaked() -> None:
    text = "y" * (SCAN_LIMIT - 200) + " " + GITHUB + "z" * 1000
    scrubbed, _ = scrub_text(text)
    assert "ghp_" not in scrubbed
    assert scrubbed.endswith(UNSCANNED_MARKER)


# --- key names --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "Password",
        "db_password",
        "DB_PASSWORD_2",
        "passwd",
        "pwd",
        "pass",
        "mysql.pass",
        "passphrase",
        "secret",
        "client_secret",
        "clientSecret",
        "token",
        "access_token",
        "auth-token",
        "apiToken",
        "accesstoken",
        "api key",
        "apikey",
        "api_key",
        "APIKey",
        "x-api-key",
        "X-Api-Key",
        "authorization",
        "Authorization header",
        "auth",
        "basic_auth",
        "credential",
        "credentials",
        "private_key",
        "privateKey",
        "access key",
        "AWS_SECRET_ACCESS_KEY",
        "SecretAccessKey",
        "secret_key",
        "session id",
        "sessionId",
        "cookie",
        "Set-Cookie",
        "signature",
        "X-Hub-Signature",
        "dsn",
        "SENTRY_DSN",
        "password_hash",
        "token_value",
        "webhookSecret",
    ],
)
def test_keys_that_name_a_credential(key: str) -> None:
    assert is_credential_key(key)


@pytest.mark.parametrize(
    "key",
    [
        "author",
        "authority",
        "authorized_by",
        "compass",
        "passenger",
        "bypass",
        "passwordless",
        "tokenizer_version",
        "token_expires_at",
        "token_type",
        "secret_arn",
        "secret_name",
        "auth_method",
        "pass_rate",
        "password_policy",
        "max_tokens",
        "cookie_domain",
        "signature_version",
        "aws_access_key_id",
        "keyboard",
        "monkey",
        "session",
        "private",
        "access",
        "id",
        "value",
        "key",
        "description",
        "x-request-id",
    ],
)
def test_keys_that_merely_contain_the_letters_stay(key: str) -> None:
    assert not is_credential_key(key)


# --- documents --------------------------------------------------------------------------------


def test_a_credential_key_loses_its_string_value_at_every_level() -> None:
    details = {
        "password": "hunter2",
        "db": {"host": "db-1", "Password": "hunter2", "port": 5432},
        "clusters": [{"name": "eu", "api_key": "k1"}, {"name": "us", "api_key": "k2"}],
        "headers": {"X-Api-Key": "k3", "User-Agent": "Alertmanager/0.27"},
    }
    clean, count = scrub_details(details)
    assert clean == {
        "password": REDACTED,
        "db": {"host": "db-1", "Password": REDACTED, "port": 5432},
        "clusters": [{"name": "eu", "api_key": REDACTED}, {"name": "us", "api_key": REDACTED}],
        "headers": {"X-Api-Key": REDACTED, "User-Agent": "Alertmanager/0.27"},
    }
    assert count == 5


def test_under_a_credential_key_every_string_leaf_goes_and_numbers_booleans_null_stay() -> None:
    details = {
        "credentials": {
            "user": "svc",
            "tokens": ["a", "b", {"refresh": "c", "ttl": 3600}],
            "rotated": True,
            "expires": None,
            "empty": "",
            "nested": {},
        }
    }
    clean, count = scrub_details(details)
    assert clean == {
        "credentials": {
            "user": REDACTED,
            "tokens": [REDACTED, REDACTED, {"refresh": REDACTED, "ttl": 3600}],
            "rotated": True,
            "expires": None,
            "empty": "",
            "nested": {},
        }
    }
    assert count == 4


def test_value_rules_apply_under_every_key_nested_and_in_lists() -> None:
    details = {
        "message": f"job failed, token {GITHUB} revoked",
        "annotations": {"description": "db at postgres://app:pw1@db/x is down", "runbook": "https://wiki/db"},
        "log_lines": ["ok", f"Authorization: Bearer {OPAQUE}", ["deeper", f"key={STRIPE}"]],
    }
    clean, count = scrub_details(details)
    assert clean == {
        "message": f"job failed, token {REDACTED} revoked",
        "annotations": {"description": f"db at postgres://app:{REDACTED}@db/x is down", "runbook": "https://wiki/db"},
        "log_lines": ["ok", f"Authorization: Bearer {REDACTED}", ["deeper", f"key={REDACTED}"]],
    }
    assert count == 4


def test_name_value_pairs_naming_a_credential_lose_the_value() -> None:
    env = [
        {"name": "DB_PASSWORD", "value": "hunter2"},
        {"name": "DB_HOST", "value": "db-1"},
        {"Name": "Authorization", "Value": "opaque"},
        {"key": "region", "value": "eu-west-1"},
    ]
    clean, count = scrub_details({"env": env})
    assert clean == {
        "env": [
            {"name": "DB_PASSWORD", "value": REDACTED},
            {"name": "DB_HOST", "value": "db-1"},
            {"Name": "Authorization", "Value": REDACTED},
            {"key": "region", "value": "eu-west-1"},
        ]
    }
    assert count == 2


def test_the_input_is_not_mutated() -> None:
    details: dict[str, Any] = {"password": "x", "nested": {"token": ["a"], "note": f"{JWT}"}, "list": [{"pwd": "y"}]}
    before = copy.deepcopy(details)
    clean, _ = scrub_details(details)
    assert details == before
    assert clean is not details
    assert clean["nested"] is not details["nested"]


def test_ordinary_details_come_back_equal_and_count_zero() -> None:
    details = {
        "host": "web-3.prod.example.com",
        "request_id": "123e4567-e89b-12d3-a456-426614174000",
        "author": "alice",
        "authority": "ops",
        "compass": "north",
        "passenger_count": 3,
        "trace": "0123456789abcdef0123456789abcdef",
        "url": "https://example.com/a?b=c",
        "ratio": 0.97,
        "ok": False,
        "missing": None,
        "empty": {},
        "none": [],
        "tuple": ("a", 1),
    }
    assert scrub_details(details) == (details, 0)


def test_non_string_keys_and_odd_values_survive() -> None:
    details: dict[Any, Any] = {
        1: "one",
        (2, 3): ["x", None],
        None: {"password": 7},
        2.5: [[], {}, [[]]],
        "token": [1, 2.0, False, None],
    }
    clean, count = scrub_details(details)
    assert clean == details
    assert count == 0


def test_content_nested_deeper_than_the_cap_becomes_a_marker() -> None:
    deep: dict[str, Any] = {"leaf": GITHUB}
    for _ in range(100):
        deep = {"d": deep}
    clean, count = scrub_details(deep)
    level: Any = clean
    levels = 0
    while isinstance(level, dict):
        level = level["d"]
        levels += 1
    assert level == DEPTH_MARKER
    assert levels == MAX_DEPTH + 1
    assert count == 1
    assert GITHUB not in repr(clean)


def test_nested_lists_count_towards_the_cap_too() -> None:
    deep: Any = ["end"]
    for _ in range(MAX_DEPTH + 5):
        deep = [deep]
    clean, count = scrub_details({"l": deep})
    assert DEPTH_MARKER in repr(clean)
    assert count == 1
    shallow: Any = ["end"]
    for _ in range(MAX_DEPTH - 2):
        shallow = [shallow]
    assert scrub_details({"l": shallow}) == ({"l": shallow}, 0)


def test_a_ten_thousand_leaf_document_is_scrubbed() -> None:
    details = {
        f"alert_{i}": {
            "summary": f"disk {i} at 93% on host-{i}.internal",
            "labels": ["team:storage", f"instance:{i}", "severity:warning"],
            "db_password": "hunter2",
            "dsn": f"postgres://app:pw{i}@db-{i}/x",
            "value": i,
        }
        for i in range(1600)
    }
    clean, count = scrub_details(details)
    assert count == 2 * 1600
    assert clean["alert_7"]["labels"] == ["team:storage", "instance:7", "severity:warning"]
    assert clean["alert_7"]["dsn"] == REDACTED


# --- through a format, on the way to PagerDuty ------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "case", "put"),
    [
        ("pingdom", "http-down", lambda d, u: d["check_params"].update(full_url=u, url=u)),
        ("uptime_kuma", "http-down", lambda d, u: d["monitor"].update(url=u)),
    ],
)
def test_credentials_in_a_checked_url_never_reach_pagerduty(fmt: str, case: str, put: Any) -> None:
    c = load_case(fmt, case)
    doc = c.doc
    put(doc, "https://monitor:S3cretPw@api.example.com/health?api_key=K3yValue&region=eu")
    out = json.dumps(run(replace(c, body=json.dumps(doc).encode())))
    assert "S3cretPw" not in out and "K3yValue" not in out
    assert "region=eu" in out  # the rest of the URL is still there to click
