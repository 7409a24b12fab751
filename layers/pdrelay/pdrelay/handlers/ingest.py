"""API Gateway (HTTP API) → pdrelay ingest. An adapter: parse the event, call the domain, answer."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from pdrelay import __version__, formats
from pdrelay.errors import BadRequest, NotFound, PdrelayError, TooManyRequests
from pdrelay.ingest import endpoints
from pdrelay.observability import logger

app = APIGatewayHttpResolver()
V1_PATH = "/generic/2010-04-15/create_event.json"
CHANGE_PATH = "/v2/change/enqueue"
PAGERDUTY_PATHS = ("/v2/enqueue", V1_PATH, CHANGE_PATH)
# SNS sends the basic-auth credentials of a subscription URL only after a 401 that asks for them.
CHALLENGE = {"WWW-Authenticate": 'Basic realm="pdrelay", charset="UTF-8"'}


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(status_code=status, content_type="application/json", body=json.dumps(body), headers=headers)


def _request() -> endpoints.IncomingRequest:
    event = app.current_event
    raw = event.body or ""
    if event.is_base64_encoded:
        try:
            body = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError) as exc:  # ValueError: non-ASCII text flagged as base64
            raise BadRequest("body is not valid base64") from exc
    else:
        body = raw.encode("utf-8", "surrogatepass")
    epoch_ms = event.request_context.time_epoch
    received = datetime.fromtimestamp(epoch_ms / 1000, UTC) if epoch_ms else datetime.now(UTC)
    return endpoints.IncomingRequest(
        body=body,
        request_id=event.request_context.request_id or "",
        received_at=received,
        headers={k.lower(): v for k, v in (event.headers or {}).items()},
        query=dict(event.query_string_parameters or {}),
    )


@app.post("/v1/alerts/<format_name>")
def post_alerts(format_name: str) -> Response:
    return _json(
        202, endpoints.accept_alerts(_request(), format_name, endpoints.deps_from_environment(app.lambda_context))
    )


@app.post("/v2/enqueue")
def post_v2_event() -> Response:
    return _json(202, endpoints.accept_v2_event(_request(), endpoints.deps_from_environment(app.lambda_context)))


@app.post(CHANGE_PATH)
def post_change_event() -> Response:
    return _json(202, endpoints.accept_change(_request(), endpoints.deps_from_environment(app.lambda_context)))


@app.post("/v1/test/<route_name>")
def post_test(route_name: str) -> Response:
    return _json(
        202, endpoints.accept_test(_request(), route_name, endpoints.deps_from_environment(app.lambda_context))
    )


@app.get("/v1/test/<probe_id>")
def get_test(probe_id: str) -> Response:
    return _json(200, endpoints.test_report(_request(), probe_id, endpoints.deps_from_environment(app.lambda_context)))


@app.post(V1_PATH)
def post_v1_event() -> Response:
    return _json(200, endpoints.accept_v1_event(_request(), endpoints.deps_from_environment(app.lambda_context)))


@app.get("/health")
def health() -> Response:
    return _json(200, {"status": "ok", "version": __version__, "formats": ["auto", *formats.names()]})


@app.not_found
def not_found(_exc: Exception) -> Response:
    return _on_error(
        NotFound(
            "no such endpoint",
            [
                f"POST /v1/alerts/{{format}}, POST /v2/enqueue, POST {CHANGE_PATH}, POST {V1_PATH}, "
                "POST /v1/test/{route}, GET /v1/test/{probe}, GET /health"
            ],
        )
    )


@app.exception_handler(PdrelayError)
def _on_error(exc: PdrelayError) -> Response:
    path = app.current_event.path
    status, body = endpoints.error_response(exc, pagerduty_style=path in PAGERDUTY_PATHS, events_v1=path == V1_PATH)
    headers = CHALLENGE if status == 401 else None
    if isinstance(exc, TooManyRequests):  # 429, or 403 on the v1 endpoint: either way, when to come back
        headers = {"Retry-After": str(exc.retry_after)}
    return _json(status, body, headers)


@app.exception_handler(Exception)
def _on_unexpected(exc: Exception) -> Response:
    logger.exception("unexpected error in ingest")
    return _json(500, {"status": "error", "message": "internal error"})


def _alarm_action(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """A CloudWatch alarm's Lambda action: the alarm event itself, not an HTTP request."""
    try:
        return endpoints.accept_alarm_action(
            event, getattr(context, "aws_request_id", ""), datetime.now(UTC), endpoints.deps_from_environment(context)
        )
    except PdrelayError as exc:
        status, body = endpoints.error_response(exc)
        if status >= 500:
            raise  # an asynchronous invocation is retried by Lambda
        logger.warning("alarm action refused", extra={"status": status, "reason": body.get("message")})
        return {"statusCode": status, **body}


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("source") == "aws.cloudwatch" and isinstance(event.get("alarmData"), dict):
        return _alarm_action(event, context)
    return app.resolve(event, context)
