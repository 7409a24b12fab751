"""From a decoded document to the alerts to queue: the format's parse (an unforeseen model error is
still a 400, event times capped near receipt), then a monitor's test notifications per the route."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import ValidationError

from pdrelay import formats
from pdrelay.config import Route
from pdrelay.errors import BadRequest, validation_problems
from pdrelay.formats import ParseContext
from pdrelay.models import SUMMARY_LIMIT, Alert, truncate

FUTURE_TOLERANCE = timedelta(minutes=5)
TEST_PREFIX = "[TEST] "


def parse_payload(fmt: formats.Format, doc: Any, context: ParseContext) -> formats.Parsed:
    """The format's alerts; a model validation error the format did not foresee is still a 400.

    A monitor's clock ahead of ours (or a local time sent as UTC) must not make our own later
    events look stale: event times are capped at receipt plus five minutes.
    """
    latest = context.received_at + FUTURE_TOLERANCE
    try:
        parsed = fmt.run(doc, context)
    except ValidationError as exc:
        raise BadRequest(f"invalid {fmt.name} payload", validation_problems(exc, empty="alert")) from exc
    parsed.alerts = [
        a if a.occurred_at <= latest else a.model_copy(update={"occurred_at": latest}) for a in parsed.alerts
    ]
    return parsed


def tests_handled(parsed: formats.Parsed, route: Route | None, route_name: str | None) -> list[Alert]:
    """The alerts to queue: a monitor's test notification pages only when the route asks for it."""
    if not any(a.test for a in parsed.alerts):
        return parsed.alerts
    if route is not None and route.send_test_notifications:
        return [
            a.model_copy(update={"summary": truncate(TEST_PREFIX + a.summary, SUMMARY_LIMIT)})
            if a.test and a.summary and not a.summary.startswith(TEST_PREFIX)
            else a
            for a in parsed.alerts
        ]
    tests = sum(a.test for a in parsed.alerts)
    parsed.notes.append(
        f"{tests} test notification(s) answered without paging: route {route_name!r} "
        "does not set send_test_notifications"
    )
    return [a for a in parsed.alerts if not a.test]
