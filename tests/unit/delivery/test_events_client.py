"""The Events API client classifies every answer and reads Retry-After; tests inject a transport, no
network."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
import requests
from requests.adapters import BaseAdapter

from pdrelay.delivery.events_api import EventsClient, retry_after_seconds
from pdrelay.errors import PermanentDelivery, RetryableDelivery

RECEIVED = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)


class ScriptedTransport(BaseAdapter):
    """Answers each request with the next scripted status/body, or raises the scripted exception."""

    def __init__(self, *answers: Any) -> None:
        super().__init__()
        self.answers = list(answers)
        self.requests: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        status, body = answer
        response = requests.Response()
        response.status_code = status
        response._content = json.dumps(body).encode() if not isinstance(body, bytes) else body
        response.request = request
        return response

    def close(self) -> None:
        pass


def client_with(*answers: Any) -> tuple[EventsClient, ScriptedTransport]:
    transport = ScriptedTransport(*answers)
    session = requests.Session()
    session.mount("https://", transport)
    return EventsClient("https://events.example.test", session=session), transport


def test_202_is_delivered_with_pagerdutys_dedup_key() -> None:
    client, transport = client_with((202, {"status": "success", "dedup_key": "k1"}))
    delivered = client.send({"event_action": "trigger"})
    assert (delivered.status, delivered.dedup_key) == (202, "k1")
    assert transport.requests[0].url == "https://events.example.test/v2/enqueue"


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


@pytest.mark.parametrize("error", [requests.ConnectTimeout(), requests.ReadTimeout(), requests.ConnectionError()])
def test_timeouts_and_connection_errors_are_retryable(error: Exception) -> None:
    client, _ = client_with(error)
    with pytest.raises(RetryableDelivery):
        client.send({})


def test_retry_after_as_an_http_date_without_zone_is_read_as_utc() -> None:
    soon = RECEIVED + timedelta(seconds=30)
    value = format_datetime(soon.replace(tzinfo=None))  # "... -0000"
    assert retry_after_seconds(value, RECEIVED) == 30.0
    assert retry_after_seconds(value, RECEIVED + timedelta(seconds=40)) == 0.0  # already past: no wait
    assert retry_after_seconds("soon", RECEIVED) is None
    assert retry_after_seconds("120", RECEIVED) == 120.0
