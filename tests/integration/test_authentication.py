"""A review of the hardened edge by trying to break it: authentication tricks, hostile headers, gzip
oddities, rate-limit corners, a credentials secret that cannot be read, the IAM grants each
function's code actually needs, and the promises SECURITY.md makes.

Seven of these were bugs when the review wrote them (non-ASCII basic auth and a superscript
timestamp digit gave 500s, a shared HMAC key, a limit of one request locking a caller out, replays
of signed requests queued again, multi-member gzip cut short, an unreadable secret reported as an
internal error); they are fixed and stay as regression tests. The others pin what held.
"""

from __future__ import annotations

import copy
import gzip
import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.client
import pytest
from botocore.exceptions import ClientError

from pdrelay.config import Caller, RelayConfig, parse_config
from pdrelay.errors import ConfigError, TooManyRequests, Unauthorized
from pdrelay.ingest.auth import authenticate, enforce_rate, sign
from pdrelay.ingest.body import inflate
from pdrelay.local.apigw import api_gateway_event
from pdrelay.local.emulator import EmulatorServer
from pdrelay.local.runtime import FakeLambdaContext
from pdrelay.local.template import load_template
from pdrelay.settings import get_settings
from tests.conftest import ROOT, load_event, unique
from tests.integration.conftest import Aws, ConfigWriter, Handler

KEY = "REV1EWR0UT1NGKEY0000000000000001"
OTHER_KEY = "REV1EWR0UT1NGKEY0000000000000002"
INLINE = "inline-token-for-review-000001"
LIMITED = "limited-token-for-review-00001"
SM_TOKEN = "token-kept-in-secrets-manager-01"
HMAC_A = "hmac-key-of-signer-a-for-the-review-00001"
HMAC_B = "hmac-key-of-signer-b-for-the-review-00002"
NOW = 1_795_512_600.0


# -- helpers ---------------------------------------------------------------------------------------
@pytest.fixture
def configure(write_config: ConfigWriter) -> ConfigWriter:
    return write_config


def doc(**extra: Any) -> dict[str, Any]:
    """Two routes; 'local' may send anywhere, 'a' (signs) only to 'ops', 'b' (signs) only to 'db'."""
    return {
        "default_route": "ops",
        "routes": {"ops": {"routing_key": KEY}, "db": {"routing_key": OTHER_KEY}},
        "callers": [
            {"name": "local", "token": INLINE},
            {"name": "a", "hmac_keys": [HMAC_A], "routes": ["ops"]},
            {"name": "b", "hmac_keys": [HMAC_B], "routes": ["db"], "require_signature": True},
        ],
        **extra,
    }


def call(
    ingest: Handler, body: bytes, headers: dict[str, str], path: str = "/v1/alerts/alertmanager", method: str = "POST"
) -> tuple[int, dict[str, Any], dict[str, str]]:
    answer = ingest(api_gateway_event(method, path, {"content-type": "application/json", **headers}, body))
    return answer["statusCode"], json.loads(answer["body"]), answer.get("headers") or {}


def firing() -> bytes:
    body = copy.deepcopy(load_event("formats/alertmanager/firing.json"))
    body["alerts"][0]["fingerprint"] = unique("fp")
    return json.dumps(body).encode()


def signed(body: bytes, key: str, stamp: int | None = None) -> dict[str, str]:
    stamp = int(time.time()) if stamp is None else stamp
    return {"x-pdrelay-timestamp": str(stamp), "x-pdrelay-signature": sign(key, stamp, body)}


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def basic(userinfo: str) -> dict[str, str]:
    import base64

    return {"authorization": "Basic " + base64.b64encode(userinfo.encode()).decode()}


def config() -> RelayConfig:
    return parse_config(json.dumps(doc()))


# -- authentication: what holds -------------------------------------------------------------------
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
        authenticate(config(), headers, query, b"{}", now=NOW)


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
    assert authenticate(config(), headers, {}, b"{}", now=NOW).name == "local"


@pytest.mark.parametrize("userinfo", ["", ":", "sns", "sns:", f"{INLINE}:", f"{INLINE}"])
def test_basic_auth_without_a_password_is_no_credential(userinfo: str) -> None:
    with pytest.raises(Unauthorized) as refused:
        authenticate(config(), basic(userinfo), {}, b"{}", now=NOW)
    assert refused.value.message in ("missing credentials", "invalid credentials")


def test_an_empty_or_blank_signature_header_does_not_lift_require_signature() -> None:
    strict = parse_config(
        json.dumps(
            doc(
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
        authenticate(config(), headers, {}, body, now=NOW)


def test_token_and_key_mistakes_in_config_never_give_an_empty_credential() -> None:
    for caller in (
        {"name": "x", "token": ""},
        {"name": "x", "tokens": [""]},
        {"name": "x", "hmac_keys": [""]},
        {"name": "x", "token": None},
    ):
        with pytest.raises(ConfigError):
            parse_config(json.dumps(doc(callers=[caller])))


# -- authentication: bugs -------------------------------------------------------------------------
def test_an_hmac_key_given_to_two_callers_is_refused_at_load() -> None:
    shared = doc(
        callers=[
            {"name": "a", "hmac_keys": [HMAC_A], "routes": ["ops"]},
            {"name": "b", "hmac_keys": [HMAC_A], "routes": ["db"]},
        ]
    )
    with pytest.raises(ConfigError) as refused:
        parse_config(json.dumps(shared))
    assert HMAC_A not in str(refused.value)


# -- over the handler: routes, hostile headers, gzip ----------------------------------------------
def test_a_signature_valid_for_one_caller_reaches_only_that_callers_routes(
    aws: Aws, ingest: Handler, configure: Any
) -> None:
    configure(doc())
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


LATIN1_JUNK = "\u00e9\u00ff\u00b2"  # what a UTF-8 or Latin-1 byte in a header decodes to


@pytest.mark.parametrize(
    "headers",
    [
        {"authorization": "Bearer " + "x" * 200_000},
        {"authorization": "Basic " + "QUJD" * 50_000},
        {"authorization": f"Bearer {LATIN1_JUNK}"},
        {"authorization": "Bearer", "x-pdrelay-route": "ops"},
        {"authorization": "Basic !!!!"},
        {"authorization": f"Bearer {INLINE}", "content-type": "application/json" + "; x=1" * 20_000},
        {"authorization": f"Bearer {INLINE}", "content-type": f"application/{LATIN1_JUNK}"},
        {"authorization": f"Bearer {INLINE}", "content-encoding": "gzip, gzip"},
        {"authorization": f"Bearer {INLINE}", "content-encoding": LATIN1_JUNK},
        {"authorization": f"Bearer {INLINE}", "x-pdrelay-route": LATIN1_JUNK * 1000},
        {"authorization": f"Bearer {INLINE}", "idempotency-key": "k" * 100_000},
        {
            "authorization": f"Bearer {INLINE}",
            "x-pdrelay-signature": "sha256=" + LATIN1_JUNK,
            "x-pdrelay-timestamp": str(int(time.time())),
        },
        {"x-pdrelay-signature": "sha256=" + "0" * 64, "x-pdrelay-timestamp": "9" * 12},
        {"x-pdrelay-signature": "sha256=" + "0" * 64},
        {"content-length": "-1", "transfer-encoding": "chunked", "authorization": f"Bearer {INLINE}"},
    ],
)
def test_hostile_headers_are_answered_with_a_4xx_or_accepted_never_a_5xx(
    aws: Aws, ingest: Handler, configure: Any, headers: dict[str, str]
) -> None:
    configure(doc())
    status, answer, _ = call(ingest, firing(), headers)
    assert status < 500, answer
    assert INLINE not in json.dumps(answer)


def test_basic_auth_with_non_ascii_credentials_is_a_401(aws: Aws, ingest: Handler, configure: Any) -> None:
    configure(doc())
    status, answer, headers = call(ingest, firing(), {"authorization": f"Basic {LATIN1_JUNK}"})
    assert (status, answer["message"]) == (401, "missing credentials")
    assert "WWW-Authenticate" in headers


def test_a_superscript_digit_in_the_signature_timestamp_is_a_401(aws: Aws, ingest: Handler, configure: Any) -> None:
    configure(doc())
    status, answer, _ = call(
        ingest, firing(), {"x-pdrelay-timestamp": "\u00b2", "x-pdrelay-signature": "sha256=" + "0" * 64}
    )
    assert (status, answer["message"]) == (401, "invalid signature")


@pytest.mark.parametrize(
    ("body", "status"),
    [
        pytest.param(b"", 400, id="no bytes"),
        pytest.param(gzip.compress(b""), 400, id="a member holding nothing"),
        pytest.param(gzip.compress(b"   \n"), 400, id="blank"),
        pytest.param(gzip.compress(b"{}")[:10], 400, id="the header alone"),
        pytest.param(b"\x1f\x8b", 400, id="the magic alone"),
        pytest.param(gzip.compress(gzip.compress(b"{}")), 400, id="gzip inside gzip"),
    ],
)
def test_gzip_oddities_are_a_4xx(aws: Aws, ingest: Handler, configure: Any, body: bytes, status: int) -> None:
    configure(doc())
    got, answer, _ = call(ingest, body, {**bearer(INLINE), "content-encoding": "gzip"})
    assert got == status, answer
    assert aws.drain() == []


def test_a_signed_gzip_body_with_bytes_appended_after_signing_is_refused(
    aws: Aws, ingest: Handler, configure: Any
) -> None:
    configure(doc())
    packed = gzip.compress(firing())
    headers = {**signed(packed, HMAC_A), "content-encoding": "gzip"}
    assert call(ingest, packed + b"tail", headers)[0] == 401
    assert call(ingest, packed, headers)[0] == 202


def test_a_gzip_body_of_several_members_is_inflated_whole() -> None:
    plain = json.dumps({"alerts": [{"status": "firing", "labels": {"alertname": "x"}}]}).encode()
    half = len(plain) // 2
    assert inflate(gzip.compress(plain[:half]) + gzip.compress(plain[half:]), 10_000) == plain


# -- rate limits ----------------------------------------------------------------------------------
class Buckets:
    """The dedup store's bucket interface over a dict."""

    def __init__(self) -> None:
        self.items: dict[str, Any] = {}

    def get_bucket(self, key: str) -> Any:
        return self.items.get(key)

    def put_bucket(self, key: str, bucket: Any, previous_version: int) -> None:
        self.items[key] = bucket


def limited(requests: int, per_seconds: int = 60) -> Caller:
    return Caller.model_validate(
        {
            "name": f"limited-{requests}",
            "token": LIMITED,
            "rate_limit": {"requests": requests, "per_seconds": per_seconds},
        }
    )


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


# -- the credentials secret -----------------------------------------------------------------------
@pytest.fixture
def secret_config(aws: Aws, configure: Any) -> dict[str, Any]:
    with_secret = doc(
        callers=[{"name": "local", "token": INLINE}, {"name": "am"}], credentials_secret="secret:pdrelay/review-callers"
    )
    configure(with_secret)
    return with_secret


def _failing(operation: str, code: str) -> Any:
    real = getattr(botocore.client.BaseClient, "_make_api_call")  # noqa: B009 - private

    def make(self: Any, name: str, params: dict[str, Any]) -> Any:
        if name == operation:
            raise ClientError({"Error": {"Code": code, "Message": f"{code} (review)"}}, name)
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
            Name="pdrelay/review-callers",
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


# -- replay protection for signed requests --------------------------------------------------------
def test_a_captured_signed_v2_event_replayed_is_answered_as_a_duplicate(
    aws: Aws, ingest: Handler, configure: Any
) -> None:
    configure(doc())
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


# -- IAM: every AWS call a function makes is granted to its role ----------------------------------
TEMPLATE = load_template(ROOT / "template.yaml")["Resources"]
# Batch operations are authorised as their single counterparts.
AUTHORISED_AS = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}


def granted(function: str) -> set[tuple[str, bool]]:
    """(action, on an index) pairs the function's role allows."""
    role = TEMPLATE[function]["Properties"]["Role"]["Fn::GetAtt"][0]
    documents = [p["PolicyDocument"] for p in TEMPLATE[role]["Properties"].get("Policies") or []]
    documents += [
        r["Properties"]["PolicyDocument"]
        for r in TEMPLATE.values()
        if r["Type"] == "AWS::IAM::RolePolicy" and r["Properties"]["RoleName"] == {"Ref": role}
    ]
    found: set[tuple[str, bool]] = set()
    for document in documents:
        for statement in document["Statement"]:
            if statement["Effect"] != "Allow":
                continue
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            on_index = "/index/" in json.dumps(statement["Resource"])
            found.update((str(a), on_index) for a in actions)
    return found


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, bool]]]:
    calls: list[tuple[str, bool]] = []
    real = getattr(botocore.client.BaseClient, "_make_api_call")  # noqa: B009 - private

    def record(self: Any, name: str, params: dict[str, Any]) -> Any:
        prefix = self.meta.service_model.signing_name
        calls.append((f"{prefix}:{AUTHORISED_AS.get(name, name)}", "IndexName" in params))
        return real(self, name, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", record)
    yield calls


def test_each_function_calls_only_what_its_role_grants(
    aws: Aws,
    pagerduty: EmulatorServer,
    ingest: Handler,
    dispatch: Handler,
    monkeypatch: pytest.MonkeyPatch,
    recorded: list[tuple[str, bool]],
) -> None:
    """The real handlers against moto, configuration in SSM and credentials in Secrets Manager."""
    ssm, secrets = boto3.client("ssm"), boto3.client("secretsmanager")
    ssm.put_parameter(
        Name="/pdrelay/config",
        Type="SecureString",
        Value=json.dumps(
            doc(
                callers=[{"name": "local", "token": INLINE}, {"name": "am", "rate_limit": {"requests": 60}}],
                credentials_secret="secret:pdrelay/iam-callers",
            )
        ),
    )
    secrets.create_secret(
        Name="pdrelay/iam-callers", SecretString=json.dumps({"callers": {"am": {"tokens": [SM_TOKEN]}}})
    )
    monkeypatch.setenv("PDRELAY_CONFIG", "ssm:/pdrelay/config")
    get_settings.cache_clear()
    seen: dict[str, set[tuple[str, bool]]] = {}

    def run(function: str, work: Any) -> None:
        recorded.clear()
        work()
        seen[function] = set(recorded)

    def ingest_work() -> None:
        body = firing()
        assert call(ingest, body, bearer(SM_TOKEN))[0] == 202
        assert call(ingest, body, bearer(SM_TOKEN))[1].get("replayed") is True
        v2 = {
            "routing_key": "ops",
            "event_action": "trigger",
            "dedup_key": unique("k"),
            "payload": {"summary": "s", "source": "x", "severity": "error"},
        }
        assert (
            call(
                ingest, json.dumps(v2).encode(), {**bearer(INLINE), "idempotency-key": unique("i")}, path="/v2/enqueue"
            )[0]
            == 202
        )
        status, probe, _ = call(ingest, b"", bearer(INLINE), path="/v1/test/ops")
        assert status == 202
        assert call(ingest, b"", bearer(INLINE), path=f"/v1/test/{probe['probe']}", method="GET")[0] == 200

    run("IngestFunction", ingest_work)
    messages = aws.drain()
    assert messages

    def dispatch_work() -> None:
        event = {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": {"ApproximateReceiveCount": "1"},
                    "messageAttributes": {},
                    "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:us-east-1:1:q",
                }
                for m in messages
            ]
        }
        assert dispatch(event)["batchItemFailures"] == []

    run("DispatchFunction", dispatch_work)
    aws.sqs.send_message(QueueUrl=aws.dlq_url, MessageBody=messages[0]["Body"])
    from pdrelay.local.template import read_spec

    spec = read_spec(ROOT / "template.yaml")
    for function, events in (
        (
            "RedriveFunction",
            [{"action": "inspect"}, {"action": "redrive", "route": "ops"}, {"action": "purge", "confirm": True}],
        ),
        ("SweepFunction", [{}]),
    ):
        handler = spec.functions[function].load_handler()
        run(function, lambda h=handler, e=events, f=function: [h(x, FakeLambdaContext(f)) for x in e])
    assert {"IngestFunction", "DispatchFunction", "RedriveFunction", "SweepFunction"} <= set(seen)
    assert ("secretsmanager:GetSecretValue", False) in seen["IngestFunction"]
    assert ("dynamodb:Query", True) in seen["SweepFunction"]
    for function, calls in seen.items():
        allowed = granted(function)
        missing = sorted(f"{a}{' (index)' if idx else ''}" for a, idx in calls if (a, idx) not in allowed)
        assert not missing, f"{function} calls what its role does not grant: {missing}"
