"""The ingest endpoints, as :mod:`pdrelay.handlers.ingest` calls them, and the HTTP answers.

The handler adapts API Gateway events to :class:`IncomingRequest` and calls one ``accept_*``
function (or :func:`test_report`); HTTP status codes are decided here, in :func:`error_response`,
and nowhere else. An alert's way through ingest, a module per step:

- :mod:`~pdrelay.ingest.request`: the request as it arrived and what the endpoints work with (:class:`Deps`)
- :mod:`~pdrelay.ingest.admission`: who calls (:mod:`~pdrelay.ingest.auth`), within its rate, with a
  readable body; each request answered once (:mod:`~pdrelay.ingest.replay`)
- :mod:`~pdrelay.ingest.body`: size, content type, gzip, JSON with the place of its problems
- :mod:`~pdrelay.ingest.parsing`: the format's alerts, a monitor's test notifications per the route
- :mod:`~pdrelay.ingest.fanout`: a queue message per alert and destination (the route's rules),
  scrubbed (:mod:`~pdrelay.ingest.scrub`), then :mod:`~pdrelay.ingest.enqueue`
- :mod:`~pdrelay.ingest.probes` (``/v1/test``), :mod:`~pdrelay.ingest.changes` (change events) and
  :mod:`~pdrelay.ingest.heartbeat` (``/v1/heartbeat``; and the contact every accepted request
  gives its route's heartbeat): the endpoints with a job of their own
- :mod:`~pdrelay.ingest.lookup` (``GET /v1/alerts/{dedup_key}``): an alert's state in the table, read-only
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pdrelay import formats
from pdrelay.config import Caller
from pdrelay.errors import (
    BadRequest,
    ConfigError,
    EnqueueError,
    PayloadTooLarge,
    PdrelayError,
    RequestError,
    TooManyRequests,
    UpstreamError,
)
from pdrelay.formats import ParseContext
from pdrelay.ingest.admission import admit, answer_once
from pdrelay.ingest.body import decode_json
from pdrelay.ingest.changes import accept_change
from pdrelay.ingest.fanout import enqueue_alerts, fan_out, logged
from pdrelay.ingest.heartbeat import accept_heartbeat, note_contact
from pdrelay.ingest.lookup import alert_state
from pdrelay.ingest.parsing import parse_payload, tests_handled
from pdrelay.ingest.probes import accept_test, test_report
from pdrelay.ingest.replay import replay_key
from pdrelay.ingest.request import Deps, IncomingRequest
from pdrelay.models import make_message
from pdrelay.observability import ALERTS_RECEIVED, REQUESTS_REJECTED, count, logger
from pdrelay.policy.routing import route_for_routing_key, select_route

__all__ = [
    "ALARM_ACTION_CALLER",
    "Deps",
    "IncomingRequest",
    "accept_alarm_action",
    "accept_alerts",
    "accept_change",
    "accept_heartbeat",
    "accept_test",
    "accept_v1_event",
    "accept_v2_event",
    "alert_state",
    "decode_json",
    "deps_from_environment",
    "error_response",
    "fan_out",
    "test_report",
]

# pdrelay.ops.configtool imports these from here by their names before the split into modules.
ALARM_ACTION_CALLER = Caller.model_construct(name="cloudwatch-alarm-action", token="", routes=(), default_route=None)


def accept_alarm_action(event: dict[str, Any], request_id: str, received_at: datetime, deps: Deps) -> dict[str, Any]:
    """A CloudWatch alarm's Lambda action invoking the ingest function directly: IAM (the function's
    resource policy) has already said who may call, and the alarm goes to the default route."""
    body = json.dumps(event, separators=(",", ":")).encode()
    request = IncomingRequest(body=body, request_id=request_id, received_at=received_at)
    return accept_alerts(request, "cloudwatch", deps, caller=ALARM_ACTION_CALLER)


def accept_alerts(
    request: IncomingRequest, format_name: str, deps: Deps, caller: Caller | None = None
) -> dict[str, Any]:
    """``POST /v1/alerts/{format}``: the 202 body, or a RequestError.

    Each alert of a request is answered on its own: one the format refuses is listed under
    ``rejected`` while the others are queued; only a request with nothing usable is a 400.
    """
    caller, request = admit(request, deps, caller)
    doc = decode_json(request.body, deps.settings.max_string_chars)
    fmt = formats.detect(doc, request.headers) if format_name == "auto" else formats.get(format_name)
    count(ALERTS_RECEIVED, Format=fmt.name)
    destination = select_route(deps.config, caller, request.headers, request.query)
    route = deps.config.routes.get(destination.route or "")
    context = ParseContext(
        received_at=request.received_at,
        headers=request.headers,
        body=request.body,
        options=route.options_for(fmt) if route is not None else fmt.options_for(None),
    )
    parsed = parse_payload(fmt, doc, context)
    if len(parsed.alerts) > deps.settings.max_alerts_per_request:
        raise PayloadTooLarge(
            f"{len(parsed.alerts)} alerts in one request; the limit is {deps.settings.max_alerts_per_request}",
            ["split them over several requests"],
        )
    alerts = tests_handled(parsed, route, destination.route)
    if not alerts and not parsed.notes and not parsed.after:
        raise BadRequest(f"invalid {fmt.name} payload", parsed.rejected or ["the payload carries no alerts"])
    fanned = fan_out(alerts, destination, deps.config, request)
    messages = fanned.messages
    parsed.notes.extend(fanned.notes)
    several = route is not None and (len(route.targets) > 1 or bool(route.rules))

    def work() -> dict[str, Any]:
        enqueue_alerts(messages, deps)
        for action in parsed.after:
            action()
        logger.info(
            "alerts accepted",
            extra={
                "format": fmt.name,
                "route": destination.route,
                "caller": caller.name,
                "alerts": [logged(m, several) for m in messages],
                "rejected": len(parsed.rejected),
                "notes": parsed.notes,
            },
        )
        answer: dict[str, Any] = {
            "status": "accepted",
            "format": fmt.name,
            "detected": format_name == "auto",
            "route": destination.route,
            "accepted": len(messages),
            "alerts": [
                {
                    "action": m.alert.action,
                    "dedup_key": m.dedup_key,
                    "identity": m.alert.identity,
                    **({"test": True} if m.alert.test else {}),
                    **({"destination": m.destination, "rule": m.rule} if several else {}),
                }
                for m in messages
            ],
        }
        if parsed.rejected:
            answer["rejected"] = parsed.rejected
        if parsed.notes:
            answer["notes"] = parsed.notes
        return answer

    # Contact for the route's heartbeat, also when this is a replay: the sender is alive.
    note_contact(deps, destination.route, parsed.alerts, caller.name, fmt.name, request)
    # A request with work of its own at ingest (an SNS subscription to confirm) is remembered even
    # when the dispatcher would tell its events apart: that work is not the dispatcher's.
    by_body = fmt.replay_by_body and not parsed.after
    key = replay_key(caller.name, "v1", fmt.name, destination.route, request.body, request.headers, by_body=by_body)
    return answer_once(key, work, deps, signed="x-pdrelay-signature" in request.headers)


def accept_v2_event(request: IncomingRequest, deps: Deps) -> dict[str, Any]:
    """``POST /v2/enqueue``: answered exactly as PagerDuty answers."""
    message = _accept_pagerduty_event(request, deps, "events_v2", "routing_key")
    return {"status": "success", "message": "Event processed", "dedup_key": message["dedup_key"]}


def accept_v1_event(request: IncomingRequest, deps: Deps) -> dict[str, Any]:
    """``POST /generic/2010-04-15/create_event.json``: answered as Events API v1 answers."""
    message = _accept_pagerduty_event(request, deps, "events_v1", "service_key")
    return {"status": "success", "message": "Event processed", "incident_key": message["dedup_key"]}


def _accept_pagerduty_event(request: IncomingRequest, deps: Deps, format_name: str, key_field: str) -> dict[str, Any]:
    caller, request = admit(request, deps)
    doc = decode_json(request.body, deps.settings.max_string_chars)
    if not isinstance(doc, dict):
        raise BadRequest("Event object is invalid", ["Event object must be a JSON object"])
    fmt = formats.get(format_name)
    count(ALERTS_RECEIVED, Format=fmt.name)
    destination = route_for_routing_key(deps.config, caller, doc.get(key_field), field=key_field)
    (alert,) = parse_payload(fmt, doc, ParseContext(received_at=request.received_at, headers=request.headers)).alerts
    fanned = fan_out([alert], destination, deps.config, request)
    dedup_key = (
        alert.dedup_key
        or make_message(
            alert, route=None, routing_key=destination.routing_key, received_at=request.received_at, request_id=""
        ).dedup_key
    )

    def work() -> dict[str, Any]:
        enqueue_alerts(fanned.messages, deps)
        logger.info(
            "event accepted",
            extra={
                "format": fmt.name,
                "route": destination.route,
                "caller": caller.name,
                "dedup_key": dedup_key,
                "action": alert.action,
                "destinations": [m.destination or "-" for m in fanned.messages],
                **(
                    {"rules": sorted({m.rule for m in fanned.messages if m.rule})}
                    if any(m.rule for m in fanned.messages)
                    else {}
                ),
                "notes": fanned.notes,
            },
        )
        return {"dedup_key": dedup_key, "format": fmt.name}

    note_contact(deps, destination.route, [alert], caller.name, fmt.name, request)
    # The same event body legitimately recurs (trigger, resolve, trigger again): explicit ids only.
    return answer_once(
        replay_key(caller.name, format_name, fmt.name, destination.route, request.body, request.headers, by_body=False),
        work,
        deps,
        signed="x-pdrelay-signature" in request.headers,
    )


# PagerDuty's Events API v1 answered throttling with 403, and the PagerDuty Agent relies on it: it
# retries a 403 later but moves an event answered with any other 4xx to its error queue for good.
V1_THROTTLED = 403


def error_response(
    exc: PdrelayError, *, pagerduty_style: bool = False, events_v1: bool = False
) -> tuple[int, dict[str, Any]]:
    """The one place that maps errors to HTTP statuses and bodies. ``pagerduty_style``: a
    PagerDuty-compatible endpoint (a 400 in PagerDuty's words); ``events_v1``: the Events API v1
    endpoint, where being over the rate limit is a 403 (:data:`V1_THROTTLED`), not a 429, and a
    refusal that is final (a route the caller may not use) is a 400."""
    if isinstance(exc, RequestError):
        status = exc.status
        if events_v1 and isinstance(exc, TooManyRequests):
            status = V1_THROTTLED
        elif events_v1 and status == V1_THROTTLED:
            # A route this caller may not use: final, so a 400 the Agent puts in its error queue
            # (where an operator sees it), not a 403 it would retry for ever.
            status = 400
        count(REQUESTS_REJECTED, Status=str(status))
        if pagerduty_style and status == 400:
            return status, {
                "status": "invalid event",
                "message": "Event object is invalid",
                "errors": exc.problems or [exc.message],
            }
        body: dict[str, Any] = {"status": "rejected", "message": exc.message}
        if exc.problems:
            body["errors"] = exc.problems
        return status, body
    if isinstance(exc, EnqueueError):
        logger.error("enqueue failed", extra={"error": str(exc)})
        return 503, {"status": "unavailable", "message": "the alert could not be queued; retry"}
    if isinstance(exc, UpstreamError):
        logger.warning("upstream call failed", extra={"error": str(exc)})
        return 502, {"status": "unavailable", "message": str(exc)}
    if isinstance(exc, ConfigError):
        logger.error("configuration error", extra={"error": str(exc)})
        return 500, {"status": "error", "message": "pdrelay is misconfigured; see its logs"}
    logger.error("unexpected pdrelay error", extra={"error": type(exc).__name__})
    return 500, {"status": "error", "message": "internal error"}


def deps_from_environment() -> Deps:
    """Settings and clients are cached; the configuration is re-read per its cache age."""
    from pdrelay.aws import client
    from pdrelay.config import load_config
    from pdrelay.settings import get_settings

    settings = get_settings()
    return Deps(
        settings=settings,
        config=load_config(settings),
        sqs=client("sqs"),
        dynamodb=client("dynamodb"),
    )
