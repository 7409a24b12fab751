"""The Events API client classifies every answer and reads Retry-After; tests inject a transport, no
network."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
import urllib3
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ProtocolError, ReadTimeoutError

from pdrelay.delivery.events_api import EventsClient, pool_for, retry_after_seconds
from pdrelay.errors import PermanentDelivery, RetryableDelivery

RECEIVED = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)


class ScriptedPool:
    """In place of urllib3's pool manager: answers each request with the next scripted status/body
    (a real ``urllib3.HTTPResponse``), or raises the scripted exception."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.requests: list[dict[str, Any]] = []

    def request(self, method: str, url: str, **kwargs: Any) -> urllib3.HTTPResponse:
        self.requests.append({"method": method, "url": url, **kwargs})
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        status, body, *headers = answer
        data = json.dumps(body).encode() if not isinstance(body, bytes) else body
        return urllib3.HTTPResponse(body=data, status=status, headers=(headers or [{}])[0], preload_content=True)


def client_with(*answers: Any) -> tuple[EventsClient, ScriptedPool]:
    pool = ScriptedPool(*answers)
    return EventsClient("https://events.example.test", pool=pool), pool


def test_202_is_delivered_with_pagerdutys_dedup_key() -> None:
    client, transport = client_with((202, {"status": "success", "dedup_key": "k1"}))
    delivered = client.send({"event_action": "trigger", "payload": {"summary": "Plattenplatz fast voll: db-1 \u00e4"}})
    assert (delivered.status, delivered.dedup_key) == (202, "k1")
    (sent,) = transport.requests
    assert (sent["method"], sent["url"]) == ("POST", "https://events.example.test/v2/enqueue")
    assert sent["headers"]["Content-Type"] == "application/json"
    assert json.loads(sent["body"]) == {
        "event_action": "trigger",
        "payload": {"summary": "Plattenplatz fast voll: db-1 \u00e4"},
    }
    assert sent["retries"] is False  # the dispatcher decides when to try again


def test_400_is_permanent_with_pagerdutys_error_text() -> None:
    client, _ = client_with(
        (
            400,
            {
                "status": "invalid event",
                "message": "Event object is invalid",
                "errors": ["'payload.summary' is missing"],
            },
        )
    )
    with pytest.raises(PermanentDelivery) as caught:
        client.send({})
    assert caught.value.status == 400
    assert caught.value.errors == ["'payload.summary' is missing"]


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_throttling_and_server_errors_are_retryable(status: int) -> None:
    client, _ = client_with((status, b"<html>oops</html>"))
    with pytest.raises(RetryableDelivery) as caught:
        client.send({})
    assert caught.value.status == status


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (ConnectTimeoutError(None, "connect timed out"), "timed out waiting for the Events API"),
        (ReadTimeoutError(None, "/v2/enqueue", "read timed out"), "timed out waiting for the Events API"),
        (NewConnectionError(None, "refused"), "could not connect to the Events API"),  # type: ignore[arg-type]
        (ProtocolError("Connection aborted."), "could not connect to the Events API"),
    ],
)
def test_timeouts_and_connection_errors_are_retryable(error: Exception, said: str) -> None:
    client, _ = client_with(error)
    with pytest.raises(RetryableDelivery) as caught:
        client.send({})
    assert str(caught.value) == said and caught.value.status is None


def test_a_429_says_how_long_pagerduty_asked_to_wait() -> None:
    client, _ = client_with((429, {"status": "throttle event", "message": "Requests throttled"}, {"Retry-After": "30"}))
    with pytest.raises(RetryableDelivery) as caught:
        client.send({})
    assert (caught.value.status, caught.value.retry_after) == (429, 30.0)
    assert str(caught.value) == "PagerDuty answered 429: Requests throttled"


def test_retry_after_as_an_http_date_without_zone_is_read_as_utc() -> None:
    soon = RECEIVED + timedelta(seconds=30)
    value = format_datetime(soon.replace(tzinfo=None))  # "... -0000"
    assert retry_after_seconds(value, RECEIVED) == 30.0
    assert retry_after_seconds(value, RECEIVED + timedelta(seconds=40)) == 0.0  # already past: no wait
    assert retry_after_seconds("soon", RECEIVED) is None
    assert retry_after_seconds("120", RECEIVED) == 120.0


def test_the_environments_proxy_is_used_unless_no_proxy_exempts_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert not isinstance(pool_for("https://events.pagerduty.com"), urllib3.ProxyManager)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example.test:3128")
    pool = pool_for("https://events.pagerduty.com")
    assert isinstance(pool, urllib3.ProxyManager) and pool.proxy is not None
    assert (pool.proxy.host, pool.proxy.port) == ("proxy.example.test", 3128)
    monkeypatch.setenv("NO_PROXY", "events.pagerduty.com")
    assert not isinstance(pool_for("https://events.pagerduty.com"), urllib3.ProxyManager)


def test_every_client_in_a_process_shares_one_pool_and_so_its_kept_connections(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The sweep makes a client each minute; its connection to PagerDuty is the one kept since the last
    for name in ("HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    first, later = EventsClient("https://events.pagerduty.com"), EventsClient("https://events.pagerduty.com")
    assert first.pool is later.pool
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example.test:3128")
    assert EventsClient("https://events.pagerduty.com").pool is not first.pool  # another proxy, another pool
