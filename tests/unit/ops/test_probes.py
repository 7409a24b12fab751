"""A test probe's report translates each destination's answer into advice an operator can act on."""

from __future__ import annotations

import pytest

from pdrelay.ops.probes import advice


@pytest.mark.parametrize(
    ("status", "error", "expected"),
    [
        (202, None, "ok: PagerDuty accepted the event"),
        (
            400,
            "PagerDuty rejected the event: Event object is invalid; Invalid routing key",
            "the routing key is not an Events API v2 integration key",
        ),
        (
            400,
            "PagerDuty rejected the event: Event object is invalid; 'payload.summary' is missing",
            "PagerDuty refused the event as invalid",
        ),
        (404, "PagerDuty answered 404: Not Found", "the Events API URL looks wrong"),
        (429, "PagerDuty answered 429: Too many requests (retrying)", "throttling this routing key"),
        (503, "PagerDuty answered 503 (retrying)", "PagerDuty had a problem answering"),
        (None, "could not connect to the Events API (retrying)", "cannot reach the Events API"),
        (None, "timed out waiting for the Events API (retrying)", "did not answer in time"),
    ],
)
def test_a_test_report_translates_answers_into_advice(status: int | None, error: str | None, expected: str) -> None:
    assert expected in advice(status, error)
