"""What the ingest handler refuses before any work, through the real handler against moto: a caller
over its rate limit gets a 429 with Retry-After while another goes on (a 403 on the Events API v1
endpoint, which is how PagerDuty's v1 said it and what the PagerDuty Agent retries), and input over the limits,
hostile headers and gzip oddities are a 4xx with reasons, never a 5xx, and queue nothing."""

from __future__ import annotations

import gzip
import json
import time
from typing import Any

import pytest

from tests.edge_harness import INLINE, KEY, LATIN1_JUNK, OTHER_KEY, bearer, call, firing, local_doc, signers_doc
from tests.integration.conftest import Aws, Handler

V1_PATH = "/generic/2010-04-15/create_event.json"
AGENT_TOKEN = "agent-token-000000000001"

# --- rate limits ----------------------------------------------------------------------------------


def test_a_noisy_caller_gets_429_with_retry_after_while_another_goes_on(
    aws: Aws, ingest: Handler, configure: Any
) -> None:
    configure(
        local_doc(
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


def test_over_its_limit_the_events_api_v1_endpoint_answers_403_as_pagerduty_did_and_v2_answers_429(
    aws: Aws, ingest: Handler, configure: Any
) -> None:
    # Given a PagerDuty Agent's caller allowed 6 requests a minute (a burst of one, then one every 12 s)
    configure(
        local_doc(
            callers=[
                {"name": "local", "token": INLINE},
                {"name": "agent", "token": AGENT_TOKEN, "rate_limit": {"requests": 6, "per_seconds": 60}},
            ]
        )
    )
    auth = {"authorization": f"Bearer {AGENT_TOKEN}"}
    v1 = json.dumps({"service_key": "ops", "event_type": "trigger", "description": "disk full"}).encode()
    v2 = json.dumps(
        {
            "routing_key": "ops",
            "event_action": "trigger",
            "payload": {"summary": "s", "source": "h", "severity": "info"},
        }
    ).encode()

    # When it sends faster than that through the v1 endpoint, then through /v2/enqueue
    answers = [call(ingest, v1, auth, path=V1_PATH) for _ in range(2)]
    on_v2 = call(ingest, v2, auth, path="/v2/enqueue")

    # Then v1 refuses with 403 (the Agent keeps the event and retries; any other 4xx it would park for
    # good), in v1's error shape and with Retry-After; /v2/enqueue keeps PagerDuty's v2 answer, 429
    assert [a[0] for a in answers] == [200, 403]
    _, body, headers = answers[1]
    assert body == {"status": "rejected", "message": "caller 'agent' is over its rate limit (6 requests per 60 s)"}
    assert 1 <= int(headers["Retry-After"]) <= 12
    assert on_v2[0] == 429 and on_v2[1] == body and "Retry-After" in on_v2[2]
    assert len(aws.drain()) == 1


def test_a_route_the_caller_may_not_use_is_a_final_400_on_the_events_api_v1_endpoint(
    aws: Aws, ingest: Handler, configure: Any
) -> None:
    # Given an Agent's caller allowed only route 'ops', and a second route 'db'
    configure(
        local_doc(
            routes={"ops": {"routing_key": KEY}, "db": {"routing_key": OTHER_KEY}},
            callers=[{"name": "agent", "token": AGENT_TOKEN, "routes": ["ops"]}],
        )
    )
    auth = {"authorization": f"Bearer {AGENT_TOKEN}"}
    event = {"service_key": "db", "event_type": "trigger", "description": "disk full"}

    # When it sends to 'db' through the v1 endpoint and through /v2/enqueue
    on_v1 = call(ingest, json.dumps(event).encode(), auth, path=V1_PATH)
    on_v2 = call(
        ingest,
        json.dumps(
            {
                "routing_key": "db",
                "event_action": "trigger",
                "payload": {"summary": "s", "source": "h", "severity": "info"},
            }
        ).encode(),
        auth,
        path="/v2/enqueue",
    )

    # Then v1 answers 400 with the reason (the Agent parks it where an operator sees it; a 403 it would
    # retry for ever), no Retry-After; /v2/enqueue keeps its 403; nothing is queued
    assert on_v1[0] == 400
    assert on_v1[1]["errors"] == ["caller 'agent' may not send to route 'db'"]
    assert "Retry-After" not in (on_v1[2] or {})
    assert on_v2[0] == 403
    assert aws.drain() == []


# --- input limits ---------------------------------------------------------------------------------


def test_input_limits_are_4xx_with_reasons(aws: Aws, ingest: Handler, configure: Any) -> None:
    configure(local_doc(), PDRELAY_MAX_ALERTS_PER_REQUEST="3", PDRELAY_MAX_STRING_CHARS="1000")
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
    configure(signers_doc())
    status, answer, _ = call(ingest, firing(), headers)
    assert status < 500, answer
    assert INLINE not in json.dumps(answer)


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
    configure(signers_doc())
    got, answer, _ = call(ingest, body, {**bearer(INLINE), "content-encoding": "gzip"})
    assert got == status, answer
    assert aws.drain() == []
