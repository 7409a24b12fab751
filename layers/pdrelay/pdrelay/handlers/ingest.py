"""API Gateway (HTTP API) → pdrelay ingest. An adapter: parse the event, call the domain, answer.

Nine routes, matched here on the method and ``rawPath`` of the HTTP API's payload format 2.0 (a
routing table of its own: a web framework's resolver cost a fifth of a second of imports at every
cold start). Every refusal is a :class:`~pdrelay.errors.PdrelayError` answered by
:func:`pdrelay.ingest.endpoints.error_response`; anything else is a 500 that says nothing more.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple

from pdrelay import __version__, formats
from pdrelay.aws import at_init
from pdrelay.errors import BadRequest, NotFound, PdrelayError, TooManyRequests
from pdrelay.ingest import endpoints
from pdrelay.observability import invocation, logger

V1_PATH = "/generic/2010-04-15/create_event.json"
CHANGE_PATH = "/v2/change/enqueue"
PAGERDUTY_PATHS = ("/v2/enqueue", V1_PATH, CHANGE_PATH)
# SNS sends the basic-auth credentials of a subscription URL only after a 401 that asks for them.
CHALLENGE = {"WWW-Authenticate": 'Basic realm="pdrelay", charset="UTF-8"'}

Answer = tuple[int, dict[str, Any]]


class Route(NamedTuple):
    method: str
    path: str  # "/v1/alerts/<format_name>": a <name> is one path segment, passed by name
    answer: Callable[..., Answer]

    @property
    def pattern(self) -> re.Pattern[str]:
        parts = re.split(r"<(\w+)>", self.path)  # literal, name, literal, ...
        regex = "".join(re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/]+)" for i, part in enumerate(parts))
        return re.compile(f"^{regex}$")


def _deps() -> endpoints.Deps:
    return endpoints.deps_from_environment()


def _health(_request: endpoints.IncomingRequest) -> Answer:
    return 200, {"status": "ok", "version": __version__, "formats": ["auto", *formats.names()]}


def _alerts(request: endpoints.IncomingRequest, format_name: str) -> Answer:
    return 202, endpoints.accept_alerts(request, format_name, _deps())


def _v2_event(request: endpoints.IncomingRequest) -> Answer:
    return 202, endpoints.accept_v2_event(request, _deps())


def _change(request: endpoints.IncomingRequest) -> Answer:
    return 202, endpoints.accept_change(request, _deps())


def _test(request: endpoints.IncomingRequest, route_name: str) -> Answer:
    return 202, endpoints.accept_test(request, route_name, _deps())


def _test_report(request: endpoints.IncomingRequest, probe_id: str) -> Answer:
    return 200, endpoints.test_report(request, probe_id, _deps())


def _heartbeat(request: endpoints.IncomingRequest, route_name: str) -> Answer:
    return 202, endpoints.accept_heartbeat(request, route_name, _deps())


def _alert_state(request: endpoints.IncomingRequest, dedup_key: str) -> Answer:
    return 200, endpoints.alert_state(request, dedup_key, _deps())


def _v1_event(request: endpoints.IncomingRequest) -> Answer:
    return 200, endpoints.accept_v1_event(request, _deps())


ROUTES = (
    Route("POST", "/v1/alerts/<format_name>", _alerts),
    Route("GET", "/v1/alerts/<dedup_key>", _alert_state),
    Route("POST", "/v2/enqueue", _v2_event),
    Route("POST", CHANGE_PATH, _change),
    Route("POST", "/v1/test/<route_name>", _test),
    Route("GET", "/v1/test/<probe_id>", _test_report),
    Route("POST", "/v1/heartbeat/<route_name>", _heartbeat),
    Route("POST", V1_PATH, _v1_event),
    Route("GET", "/health", _health),
)
_MATCHERS = [(route, route.pattern) for route in ROUTES]
NOT_FOUND = NotFound(
    "no such endpoint",
    [
        f"POST /v1/alerts/{{format}}, GET /v1/alerts/{{dedup_key}}, POST /v2/enqueue, POST {CHANGE_PATH}, "
        f"POST {V1_PATH}, POST /v1/test/{{route}}, GET /v1/test/{{probe}}, POST /v1/heartbeat/{{route}}, GET /health"
    ],
)


def _response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json", **(headers or {})},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def _request(event: dict[str, Any]) -> endpoints.IncomingRequest:
    raw = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            body = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError) as exc:  # ValueError: non-ASCII text flagged as base64
            raise BadRequest("body is not valid base64") from exc
    else:
        body = raw.encode("utf-8", "surrogatepass")
    context = event.get("requestContext") or {}
    epoch_ms = context.get("timeEpoch")
    received = datetime.fromtimestamp(epoch_ms / 1000, UTC) if epoch_ms else datetime.now(UTC)
    return endpoints.IncomingRequest(
        body=body,
        request_id=str(context.get("requestId") or ""),
        received_at=received,
        headers={str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()},
        query={str(k): str(v) for k, v in (event.get("queryStringParameters") or {}).items()},
    )


def _path(event: dict[str, Any]) -> str:
    return str(event.get("rawPath") or (event.get("requestContext") or {}).get("http", {}).get("path") or "/")


def _refused(exc: PdrelayError, path: str) -> dict[str, Any]:
    status, body = endpoints.error_response(exc, pagerduty_style=path in PAGERDUTY_PATHS, events_v1=path == V1_PATH)
    headers = CHALLENGE if status == 401 else None
    if isinstance(exc, TooManyRequests):  # 429, or 403 on the v1 endpoint: either way, when to come back
        headers = {"Retry-After": str(exc.retry_after)}
    return _response(status, body, headers)


def _http(event: dict[str, Any], context: Any) -> dict[str, Any]:
    path = _path(event)
    method = str((event.get("requestContext") or {}).get("http", {}).get("method") or "GET").upper()
    try:
        for route, pattern in _MATCHERS:
            found = pattern.match(path) if route.method == method else None
            if found is not None:
                status, body = route.answer(_request(event), **found.groupdict())
                return _response(status, body)
        raise NOT_FOUND
    except PdrelayError as exc:
        return _refused(exc, path)
    except Exception:
        logger.exception("unexpected error in ingest")
        return _response(500, {"status": "error", "message": "internal error"})


def _alarm_action(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """A CloudWatch alarm's Lambda action: the alarm event itself, not an HTTP request."""
    try:
        return endpoints.accept_alarm_action(
            event, getattr(context, "aws_request_id", ""), datetime.now(UTC), endpoints.deps_from_environment()
        )
    except PdrelayError as exc:
        status, body = endpoints.error_response(exc)
        if status >= 500:
            raise  # an asynchronous invocation is retried by Lambda
        logger.warning("alarm action refused", extra={"status": status, "reason": body.get("message")})
        return {"statusCode": status, **body}


def _request_id(event: dict[str, Any]) -> str | None:
    context = event.get("requestContext")
    return str(context.get("requestId") or "") or None if isinstance(context, dict) else None


@invocation(request_id=_request_id)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if event.get("source") == "aws.cloudwatch" and isinstance(event.get("alarmData"), dict):
        return _alarm_action(event, context)
    return _http(event, context)


at_init(endpoints.deps_from_environment)  # clients and configuration before the first request
