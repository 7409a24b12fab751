"""No request makes the ingest handler fail (hypothesis, moto in process).

API Gateway events (built by ``pdrelay.local.apigw.api_gateway_event``, as the local stack builds them)
with a random method, a path among the real ones (and some that are not), query strings, headers
(content type, content encoding, good, bad and garbage credentials, a signature, the SNS type header)
and bodies (real fixtures mutated, gzip or not, random bytes, a base64 flag that may lie) go to
pdrelay.handlers.ingest's ``lambda_handler``. Whatever comes in:

* no exception escapes and the answer is never a 5xx;
* every 4xx is JSON with a non-empty ``message`` (or PagerDuty-style ``errors``);
* no answer contains the caller's token or a routing key.

One moto mock serves every example. Seeded; see tests/fuzz_counter.py.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, note, seed
from hypothesis import strategies as st

from pdrelay import formats
from pdrelay.formats import cloudwatch
from pdrelay.local.apigw import api_gateway_event
from tests import sns_signing
from tests.conftest import ROUTING_KEY, TOKEN
from tests.formats_harness import cases
from tests.fuzz_counter import SEED, Timer, fuzz_settings, fuzz_totals
from tests.integration.conftest import Aws, Handler
from tests.unit.formats.test_fuzz import JSON, mutated

__all__ = ["fuzz_totals"]  # the session's fixture, requested below

EXAMPLES = 1500
FIXTURES = cases()
NAMES = formats.names()
BASIC = "Basic " + base64.b64encode(f"sns:{TOKEN}".encode()).decode()

PATHS = st.one_of(
    st.sampled_from(["auto", *NAMES, "nope", "", "..", "%2e%2e", "alertmanager/extra"]).map(
        lambda name: f"/v1/alerts/{name}"
    ),
    st.sampled_from(
        [
            "/v2/enqueue",
            "/v2/change/enqueue",
            "/generic/2010-04-15/create_event.json",
            "/health",
            "/v1/test/default",
            "/v1/test/nope",
            "/v1/test/" + "a" * 40,
            "/v1/test/abc123",
            "/",
            "/v1",
            "/v1/alerts",
            "/v2/enqueue/",
            "/health?x=1",
            "//v2//enqueue",
        ]
    ),
    st.text(alphabet="/abcv12._-%~", max_size=30).map(lambda p: "/" + p),
)
METHODS = st.sampled_from(["POST"] * 6 + ["GET"] * 2 + ["PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])
AUTHORIZATION = st.sampled_from(
    [f"Bearer {TOKEN}"] * 6
    + [
        BASIC,
        f"bearer   {TOKEN}  ",
        None,
        "Bearer",
        "Bearer wrong-token-000000000000",
        "Basic !!!notbase64",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Token abc",
        "\u00e9\u0000",
        "Bearer " + TOKEN[:-1],
    ]
)
CONTENT_TYPES = st.sampled_from(
    [
        None,
        "application/json",
        "application/json",
        "application/json; charset=utf-8",
        "text/plain; charset=UTF-8",
        "application/x-www-form-urlencoded",
        "application/octet-stream",
        "multipart/form-data; boundary=x",
        "text/html",
        "application/xml",
        "image/png",
        "application/vnd.api+json",
        "application/soap+xml",
        ";;",
        "\u00ff/\u00ff",
    ]
)
ENCODINGS = st.sampled_from([None] * 6 + ["gzip", "gzip", "x-gzip", "identity", "br", "deflate, gzip", "GZIP", "?"])
# A route name the caller sent comes back in "unknown route '...'": its own input, so never a secret here.
QUERIES = st.lists(
    st.one_of(
        st.tuples(st.just("token"), st.sampled_from([TOKEN, TOKEN, "wrong", "", "a,b"])),
        st.tuples(st.sampled_from(["route", "x"]), st.sampled_from(["default", "nope", "", "%00", "a,b", "\u00e9"])),
    ),
    max_size=3,
)


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["fixture"] * 5 + ["pagerduty", "json", "bytes", "empty", "text"]))
    if kind == "fixture":
        return json.dumps(draw(mutated(draw(st.sampled_from(FIXTURES))))).encode()
    if kind == "pagerduty":
        doc = {
            "routing_key": draw(st.sampled_from(["default", ROUTING_KEY, "nope", "", None])),
            "event_action": draw(st.sampled_from(["trigger", "resolve", "bogus"])),
            "service_key": draw(st.sampled_from(["default", ROUTING_KEY, "x"])),
            "event_type": draw(st.sampled_from(["trigger", "resolve", "acknowledge", "x"])),
            "payload": draw(
                st.one_of(
                    JSON,
                    st.fixed_dictionaries(
                        {
                            "summary": st.text(max_size=30),
                            "source": st.text(max_size=10),
                            "severity": st.sampled_from(["critical", "info", "loud"]),
                        }
                    ),
                )
            ),
        }
        return json.dumps({k: v for k, v in doc.items() if draw(st.booleans()) or k == "payload"}).encode()
    if kind == "json":
        return json.dumps(draw(JSON)).encode()
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "text":
        return draw(st.text(max_size=200)).encode("utf-8", "surrogatepass")
    return b""


@st.composite
def requests_(draw: st.DrawFn) -> tuple[dict[str, Any], list[str]]:
    """An API Gateway event, and the secrets the answer must not contain."""
    method, path, body = draw(METHODS), draw(PATHS), draw(bodies())
    headers: dict[str, str] = {}
    secrets = [TOKEN, ROUTING_KEY]
    for name, value in (
        ("authorization", draw(AUTHORIZATION)),
        ("content-type", draw(CONTENT_TYPES)),
        ("content-encoding", draw(ENCODINGS)),
    ):
        if value is not None:
            headers[name] = value
    if headers.get("content-encoding", "").lower() in ("gzip", "x-gzip") and draw(st.integers(0, 3)):
        body = gzip.compress(body)
    extra = draw(st.sampled_from([None] * 8 + ["signature", "sns", "idempotency", "route"]))
    if extra == "signature":
        headers["x-pdrelay-timestamp"] = draw(st.sampled_from(["0", "1700000000", "99999999999999", "x", ""]))
        headers["x-pdrelay-signature"] = draw(st.sampled_from(["sha256=" + "0" * 64, "sha256=", "md5=x", "x"]))
    elif extra == "sns":
        headers["x-amz-sns-message-type"] = draw(st.sampled_from(["Notification", "SubscriptionConfirmation", "x"]))
    elif extra == "idempotency":
        headers["idempotency-key"] = draw(st.sampled_from(["k1", "k2", ""]))
    elif extra == "route":
        headers["x-pdrelay-route"] = draw(st.sampled_from(["default", "nope", ""]))
    query = "&".join(f"{k}={v}" for k, v in draw(QUERIES))
    event = api_gateway_event(method, path + (("&" if "?" in path else "?") + query if query else ""), headers, body)
    if draw(st.integers(0, 9)) == 0 and (event["isBase64Encoded"] or event["body"].isascii()):
        # A base64 flag that lies. (A non-ASCII body flagged base64 is a 500: see the xfail test below.)
        event["isBase64Encoded"] = not event["isBase64Encoded"]
    return event, secrets


@pytest.fixture
def relay_env(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    monkeypatch.setenv("PDRELAY_ROUTING_KEY", ROUTING_KEY)
    monkeypatch.setenv("PDRELAY_CALLER_RATE_LIMIT", "1000000")  # every example would be a 429 after 600
    monkeypatch.setattr(cloudwatch, "fetch_certificate", lambda _url: sns_signing.certificate_pem())
    monkeypatch.setattr(cloudwatch, "visit_subscribe_url", lambda _url: None)
    yield aws


def check(answer: dict[str, Any], secrets: list[str]) -> int:
    status = int(answer["statusCode"])
    text = answer.get("body") or ""
    assert status < 500, f"{status}: {text[:500]}"
    for secret in secrets:
        assert secret not in text, "an answer echoes a credential or a routing key"
    assert not any(secret in str(v) for v in (answer.get("headers") or {}).values() for secret in secrets)
    if status >= 400:
        body = json.loads(text)
        assert isinstance(body, dict)
        assert (isinstance(body.get("message"), str) and body["message"].strip()) or body.get("errors"), text
    return status


@pytest.mark.usefixtures("fuzz_totals")
def test_no_request_makes_ingest_fail_or_leak_a_credential(relay_env: Aws, ingest: Handler) -> None:
    statuses: dict[int, int] = {}
    samples: list[str] = []
    timer = Timer("ingest")

    @seed(SEED)
    @fuzz_settings(EXAMPLES)
    @given(request=requests_())
    def fuzz(request: tuple[dict[str, Any], list[str]]) -> None:
        event, secrets = request
        note(json.dumps(event)[:3000])
        timer.tick()
        answer = ingest(event)
        status = check(answer, secrets)
        if status == 404 and len(samples) < 3:
            samples.append(f"{event['requestContext']['http']['method']} {event['rawPath']}: {answer['body'][:200]}")
        statuses[status] = statuses.get(status, 0) + 1

    try:
        fuzz()
    finally:
        ran = timer.done()
    assert ran >= EXAMPLES * 0.9
    # The requests reach refusals of each kind. (Run alone, about a third are accepted; after the unit fuzz
    # in one process hypothesis draws far more unknown paths and methods, so 2xx is not required here.)
    assert {400, 401, 404} <= set(statuses), (statuses, samples)


def test_a_non_ascii_body_flagged_base64_is_a_400_not_a_500(relay_env: Aws, ingest: Handler) -> None:
    """Found by the fuzz test above (seed 7): API Gateway never sends this, but a 5xx makes senders retry."""
    event = api_gateway_event(
        "POST",
        "/v1/alerts/auto",
        {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"},
        '{"é": 1}'.encode(),
    )
    event["isBase64Encoded"] = True
    answer = ingest(event)
    assert answer["statusCode"] == 400, answer
