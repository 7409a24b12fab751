"""Ingest: authenticate, limit, decode, detect/parse, route, enqueue; and the HTTP answers.

``functions/ingest/app.py`` adapts API Gateway events to :class:`IncomingRequest` and calls
:func:`accept_alerts` or :func:`accept_v2_event`. HTTP status codes are decided here, in
:func:`error_response`, and nowhere else.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from pdrelay import formats
from pdrelay.config import Caller, RelayConfig, Route
from pdrelay.errors import (
    BadRequest,
    ConfigError,
    EnqueueError,
    PayloadTooLarge,
    PdrelayError,
    RequestError,
    UnsupportedMediaType,
    UpstreamError,
    validation_problems,
)
from pdrelay.formats import ParseContext
from pdrelay.ingest import scrub
from pdrelay.ingest.auth import authenticate
from pdrelay.ingest.enqueue import enqueue
from pdrelay.ingest.replay import once, replay_key
from pdrelay.models import SUMMARY_LIMIT, Alert, QueueMessage, make_message, truncate, without_lone_surrogates
from pdrelay.observability import ALERTS_ACCEPTED, ALERTS_RECEIVED, REQUESTS_REJECTED, count, logger
from pdrelay.policy import rules
from pdrelay.policy.routing import Destination, route_for_routing_key, select_route
from pdrelay.settings import Settings


@dataclass(frozen=True)
class IncomingRequest:
    body: bytes
    request_id: str
    received_at: datetime
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names
    query: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Deps:
    settings: Settings
    config: RelayConfig
    sqs: Any
    dynamodb: Any = None  # for replay protection; None turns it off
    lambda_context: Any = None


def check_size(request: IncomingRequest, limit: int) -> None:
    if len(request.body) > limit:
        raise PayloadTooLarge(f"body is {len(request.body)} bytes; the limit is {limit} bytes")


# Declared types that cannot carry JSON. Anything else is read as JSON, whatever it says: SNS posts
# text/plain, and curl without -H posts application/x-www-form-urlencoded.
NOT_JSON = (
    "multipart/",
    "image/",
    "audio/",
    "video/",
    "font/",
    "text/html",
    "text/xml",
    "application/xml",
    "application/pdf",
    "application/zip",
    "application/gzip",
)


def readable_body(request: IncomingRequest, settings: Settings) -> IncomingRequest:
    """The request with its body as JSON text: content type checked, gzip inflated within bounds."""
    check_size(request, settings.max_body_bytes)
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media.startswith(NOT_JSON) or (media.endswith("+xml")):
        raise UnsupportedMediaType(
            f"content type {media[:100]!r} is not JSON",
            ["send the monitor's JSON payload (application/json; text/plain is read as JSON too, as SNS sends it)"],
        )
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding in ("", "identity"):
        return request
    if encoding not in ("gzip", "x-gzip"):
        raise UnsupportedMediaType(f"content encoding {encoding[:50]!r} is not supported", ["send gzip or no encoding"])
    return replace(request, body=inflate(request.body, settings.max_inflated_bytes))


def inflate(body: bytes, limit: int) -> bytes:
    """A gzip body inflated (every member: RFC 1952 allows several), refusing more than ``limit``
    bytes of output (a gzip bomb stops there) and anything after the last member."""
    out = bytearray()
    rest = body
    while True:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out += inflater.decompress(rest, limit + 1 - len(out))
        except zlib.error as exc:
            raise BadRequest("body is not valid gzip", [str(exc)[:200]]) from exc
        if len(out) > limit or inflater.unconsumed_tail:
            raise PayloadTooLarge(f"the gzip body inflates past {limit} bytes", ["send less, or split it"])
        if not inflater.eof:
            raise BadRequest("body is not valid gzip", ["the gzip stream ends early"])
        rest = inflater.unused_data
        if not rest:
            return bytes(out)


def decode_json(body: bytes, max_string_chars: int = 65536) -> Any:
    if not body.strip():
        raise BadRequest("empty body", ["send the monitor's JSON payload as the request body"])
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadRequest("body is not UTF-8 text", [f"invalid byte at position {exc.start}"]) from exc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadRequest("malformed JSON", [f"{exc.msg} at line {exc.lineno} column {exc.colno}"]) from exc
    except RecursionError as exc:
        raise BadRequest("malformed JSON", [f"nested deeper than {MAX_DEPTH} levels"]) from exc
    except ValueError as exc:  # e.g. an integer of thousands of digits
        raise BadRequest("malformed JSON", [str(exc)[:200]]) from exc
    problem = _shape_problem(doc, max_string_chars)
    if problem:
        raise BadRequest(*problem)
    if "\\ud" in text.lower():
        doc = without_lone_surrogates(doc)
    return doc


MAX_DEPTH = 32


def _shape_problem(doc: Any, max_chars: int) -> tuple[str, list[str]] | None:
    """Nesting past :data:`MAX_DEPTH`, or a string (or key) over ``max_chars``: why, and where.
    The walk keeps no paths (it runs on every body); the place is found only for a refused one."""
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, str):
            if len(node) > max_chars:
                return "a string is too long", [
                    f"{_path_to(doc, node) or '(body)'}: {len(node)} characters; the limit is {max_chars}"
                ]
        elif isinstance(node, dict):
            if level > MAX_DEPTH:
                return "JSON nested too deeply", [f"the limit is {MAX_DEPTH} levels"]
            for key, child in node.items():
                if len(key) > max_chars:
                    return "a key is too long", [
                        f"{_path_to(doc, key)}…: {len(key)} characters; the limit is {max_chars}"
                    ]
                stack.append((child, level + 1))
        elif isinstance(node, list):
            if level > MAX_DEPTH:
                return "JSON nested too deeply", [f"the limit is {MAX_DEPTH} levels"]
            stack.extend((child, level + 1) for child in node)
    return None


def _path_to(doc: Any, target: str) -> str:
    """Where ``target`` (a value or a key, by identity) sits in ``doc``, e.g. ``alerts[0].summary``."""
    stack: list[tuple[Any, str]] = [(doc, "")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict):
            for key, child in node.items():
                where = f"{path}.{key[:40]}" if path else key[:40]
                if key is target or child is target:
                    return where
                stack.append((child, where))
        elif isinstance(node, list):
            for i, child in enumerate(node):
                if child is target:
                    return f"{path}[{i}]"
                stack.append((child, f"{path}[{i}]"))
    return ""


def admit(request: IncomingRequest, deps: Deps, caller: Caller | None = None) -> tuple[Caller, IncomingRequest]:
    """Who is calling (signature or token, on the body as sent), within its rate limit, and the
    request with a readable body. ``caller`` given: already authenticated (a Lambda invocation)."""
    check_size(request, deps.settings.max_body_bytes)
    if caller is None:
        caller = authenticate(
            deps.config,
            request.headers,
            request.query,
            request.body,
            tolerance=deps.settings.signature_tolerance_seconds,
        )
        if deps.dynamodb is not None and deps.settings.table_name:
            from pdrelay.ingest.auth import enforce_rate
            from pdrelay.table import DedupStore

            enforce_rate(
                caller,
                DedupStore(deps.dynamodb, deps.settings.table_name),
                default_requests=deps.settings.caller_rate_limit,
                default_window=deps.settings.caller_rate_window_seconds,
            )
    return caller, readable_body(request, deps.settings)


FUTURE_TOLERANCE = timedelta(minutes=5)


def _parse(fmt: formats.Format, doc: Any, context: ParseContext) -> formats.Parsed:
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


TEST_PREFIX = "[TEST] "


def _tests_handled(parsed: formats.Parsed, route: Route | None, route_name: str | None) -> list[Alert]:
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


def scrubbed(alert: Alert) -> Alert:
    """The alert without values that look like credentials (custom_details and summary)."""
    details, found = scrub.scrub_details(alert.custom_details)
    summary, in_summary = scrub.scrub_text(alert.summary) if alert.summary else (alert.summary, 0)
    if not found and not in_summary:
        return alert
    logger.info("credentials scrubbed from an alert", extra={"values": found + in_summary})
    return alert.model_copy(
        update={"custom_details": details, "summary": truncate(summary, SUMMARY_LIMIT) if summary else summary}
    )


@dataclass
class Fanned:
    messages: list[QueueMessage] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def fan_out(
    alerts: list[Alert],
    destination: Destination,
    config: RelayConfig,
    request: IncomingRequest,
    probe: str | None = None,
) -> Fanned:
    """One queue message per alert and destination.

    A trigger goes where the route's rules send it. A resolve or acknowledge goes to every
    destination of the route, so it reaches every incident that was opened whatever the rules
    said then; destinations that never opened one answer ``unknown`` at the dispatcher, which
    costs no PagerDuty call. A request that named one routing key goes to that key alone.
    """
    out = Fanned()
    route = config.routes.get(destination.route or "")

    def add(alert: Alert, routing_key: str, name: str | None, rule: str | None) -> None:
        out.messages.append(
            make_message(
                scrubbed(alert),
                route=destination.route,
                routing_key=routing_key,
                received_at=request.received_at,
                request_id=request.request_id,
                destination=name,
                rule=rule,
                probe=probe,
            )
        )

    for alert in alerts:
        if route is None or not destination.by_name:
            name = next((n for n, k in route.targets.items() if k == destination.routing_key), None) if route else None
            add(alert, destination.routing_key, name, None)
            continue
        targets = route.targets
        plan = rules.plan(route.rules, route.rules_match, route.defaults, alert)
        for target in plan.targets:
            add(target.alert, targets[target.destination], target.destination, target.rule)
        if alert.action == "trigger":
            stopped = sorted({d for d, _ in plan.not_paged} - {t.destination for t in plan.targets})
            if stopped:
                by = ", ".join(sorted({r for _, r in plan.not_paged}))
                out.notes.append(f"{alert.identity}: not paged on {', '.join(stopped)} (rule {by}: page: false)")
        else:
            planned = {t.destination for t in plan.targets}
            for name, routing_key in targets.items():
                if name not in planned:
                    add(alert, routing_key, name, None)
    return out


def _enqueue(messages: list[QueueMessage], deps: Deps) -> None:
    if messages:
        enqueue(messages, deps.sqs, deps.settings.queue_url)
    for message in messages:
        count(ALERTS_ACCEPTED, Format=message.alert.format, Action=message.alert.action)


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
    parsed = _parse(fmt, doc, context)
    if len(parsed.alerts) > deps.settings.max_alerts_per_request:
        raise PayloadTooLarge(
            f"{len(parsed.alerts)} alerts in one request; the limit is {deps.settings.max_alerts_per_request}",
            ["split them over several requests"],
        )
    alerts = _tests_handled(parsed, route, destination.route)
    if not alerts and not parsed.notes and not parsed.after:
        raise BadRequest(f"invalid {fmt.name} payload", parsed.rejected or ["the payload carries no alerts"])
    fanned = fan_out(alerts, destination, deps.config, request)
    messages = fanned.messages
    parsed.notes.extend(fanned.notes)
    several = route is not None and (len(route.targets) > 1 or bool(route.rules))

    def work() -> dict[str, Any]:
        _enqueue(messages, deps)
        for action in parsed.after:
            action()
        logger.info(
            "alerts accepted",
            extra={
                "format": fmt.name,
                "route": destination.route,
                "caller": caller.name,
                "dedup_keys": [m.dedup_key for m in messages],
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

    key = replay_key(
        caller.name, "v1", fmt.name, destination.route, request.body, request.headers, by_body=fmt.replay_by_body
    )
    return _once(key, work, deps, signed="x-pdrelay-signature" in request.headers)


def _once(key: str | None, work: Callable[[], dict[str, Any]], deps: Deps, signed: bool = False) -> dict[str, Any]:
    window = deps.settings.replay_window_seconds
    if signed and window > 0:
        # A signature is valid while its timestamp is within ± the tolerance of receipt: its copy
        # may come up to twice the tolerance after the original.
        window = max(window, 2 * deps.settings.signature_tolerance_seconds)
    return once(
        key,
        work,
        table_name=deps.settings.table_name if deps.dynamodb is not None else "",
        window_seconds=window,
        dynamodb=deps.dynamodb,
        lambda_context=deps.lambda_context,
    )


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
    (alert,) = _parse(fmt, doc, ParseContext(received_at=request.received_at, headers=request.headers)).alerts
    fanned = fan_out([alert], destination, deps.config, request)
    dedup_key = (
        alert.dedup_key
        or make_message(
            alert, route=None, routing_key=destination.routing_key, received_at=request.received_at, request_id=""
        ).dedup_key
    )

    def work() -> dict[str, Any]:
        _enqueue(fanned.messages, deps)
        logger.info(
            "event accepted",
            extra={
                "format": fmt.name,
                "route": destination.route,
                "caller": caller.name,
                "dedup_key": dedup_key,
                "destinations": len(fanned.messages),
                "notes": fanned.notes,
            },
        )
        return {"dedup_key": dedup_key, "format": fmt.name}

    # The same event body legitimately recurs (trigger, resolve, trigger again): explicit ids only.
    return _once(
        replay_key(caller.name, format_name, fmt.name, destination.route, request.body, request.headers, by_body=False),
        work,
        deps,
        signed="x-pdrelay-signature" in request.headers,
    )


def error_response(exc: PdrelayError, *, pagerduty_style: bool = False) -> tuple[int, dict[str, Any]]:
    """The one place that maps errors to HTTP statuses and bodies."""
    if isinstance(exc, RequestError):
        status = exc.status
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


def deps_from_environment(lambda_context: Any = None) -> Deps:
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
        lambda_context=lambda_context,
    )


# -- test events (pdrelay test) ---------------------------------------------------------------------------
def _store(deps: Deps) -> Any:
    from pdrelay.table import DedupStore

    if deps.dynamodb is None:
        raise ConfigError("test events need the dedup table")
    return DedupStore(deps.dynamodb, deps.settings.table_name)


def accept_test(request: IncomingRequest, route_name: str, deps: Deps) -> dict[str, Any]:
    """``POST /v1/test/{route}``: a labelled test trigger (or, given its probe id, its resolve) to
    every destination of the route, through the queue like any alert."""
    from pdrelay.observability import mask
    from pdrelay.ops import probes

    caller, request = admit(request, deps)
    doc = decode_json(request.body, deps.settings.max_string_chars) if request.body.strip() else {}
    if not isinstance(doc, dict):
        raise BadRequest("invalid test request", ['the body is a JSON object: {"action": "trigger"|"resolve"}'])
    destination = select_route(deps.config, caller, {}, {"route": route_name})
    route = deps.config.routes[route_name]
    action = doc.get("action", "trigger")
    severity = doc.get("severity", "info")
    problems = []
    if action not in ("trigger", "resolve"):
        problems.append("action: 'trigger' or 'resolve'")
    if severity not in ("critical", "error", "warning", "info"):
        problems.append("severity: critical, error, warning or info")
    probe_id = doc.get("probe")
    if action == "resolve" and not (isinstance(probe_id, str) and probe_id.isalnum() and len(probe_id) <= 32):
        problems.append("probe: the id the trigger answered with")
    if problems:
        raise BadRequest("invalid test request", problems)
    store = _store(deps)
    if action == "trigger":
        probe_id = probes.new_probe_id()
        probes.start(store, probe_id, route_name, {n: mask(k) for n, k in route.targets.items()})
    alert = probes.test_alert(route_name, str(probe_id), action, request.received_at, caller.name, severity)
    messages = [
        make_message(
            alert,
            route=destination.route,
            routing_key=key,
            destination=name,
            received_at=request.received_at,
            request_id=request.request_id,
            probe=str(probe_id),
        )
        for name, key in route.targets.items()
    ]
    _enqueue(messages, deps)
    logger.info(
        "test event accepted",
        extra={
            "route": route_name,
            "caller": caller.name,
            "probe": probe_id,
            "action": action,
            "destinations": len(messages),
        },
    )
    return {
        "status": "accepted",
        "probe": probe_id,
        "route": route_name,
        "action": action,
        "dedup_key": messages[0].dedup_key,
        "destinations": [{"destination": m.destination, "routing_key": mask(m.routing_key)} for m in messages],
        "results": f"/v1/test/{probe_id}",
    }


def test_report(request: IncomingRequest, probe_id: str, deps: Deps) -> dict[str, Any]:
    """``GET /v1/test/{probe}``: what PagerDuty answered each destination so far."""
    from pdrelay.errors import NotFound
    from pdrelay.ops import probes

    caller, request = admit(request, deps)
    if not (probe_id.isalnum() and len(probe_id) <= 32):
        raise NotFound("no such test", ["the id is the 'probe' a test trigger answered with"])
    found = probes.report(_store(deps), probe_id)
    if found is None:
        raise NotFound("no such test", [f"no test {probe_id!r}: it may have expired"])
    if caller.routes and found.get("route") not in caller.routes:
        raise NotFound("no such test", [f"no test {probe_id!r}"])
    return found


# -- change events -------------------------------------------------------------------------------------
def accept_change(request: IncomingRequest, deps: Deps) -> dict[str, Any]:
    """``POST /v2/change/enqueue``: a change event (deploy marker), answered as PagerDuty answers.
    A route name as ``routing_key`` sends it to every destination of that route."""
    from pdrelay.models import ChangeEvent, ChangeMessage
    from pdrelay.observability import CHANGES_ACCEPTED

    caller, request = admit(request, deps)
    doc = decode_json(request.body, deps.settings.max_string_chars)
    if not isinstance(doc, dict):
        raise BadRequest("Event object is invalid", ["Event object must be a JSON object"])
    destination = route_for_routing_key(deps.config, caller, doc.get("routing_key"))
    payload = doc.get("payload")
    if not isinstance(payload, dict):
        raise BadRequest("Event object is invalid", ["'payload' is missing or not an object"])
    unknown = sorted(set(doc) - {"routing_key", "payload", "links", "images"})
    if unknown:
        raise BadRequest("Event object is invalid", [f"unknown field(s) for a change event: {', '.join(unknown)}"])
    try:
        change = ChangeEvent.model_validate({**payload, "links": doc.get("links") or []})
    except ValidationError as exc:
        raise BadRequest(
            "Event object is invalid", validation_problems(exc, prefix="payload.", empty="(payload)")
        ) from exc
    details, _found = scrub.scrub_details(change.custom_details)
    summary, _in_summary = scrub.scrub_text(change.summary)
    change = change.model_copy(update={"custom_details": details, "summary": truncate(summary, SUMMARY_LIMIT)})
    route = deps.config.routes.get(destination.route or "")
    keys = (
        route.targets
        if route is not None and destination.by_name
        else {
            next((n for n, k in (route.targets.items() if route else ()) if k == destination.routing_key), None)
            or "-": destination.routing_key
        }
    )
    messages = [
        ChangeMessage(
            change=change,
            route=destination.route,
            destination=None if name == "-" else name,
            routing_key=key,
            received_at=request.received_at,
            request_id=request.request_id,
        )
        for name, key in keys.items()
    ]

    def work() -> dict[str, Any]:
        enqueue(messages, deps.sqs, deps.settings.queue_url)
        count(CHANGES_ACCEPTED, value=len(messages))
        logger.info(
            "change event accepted",
            extra={"route": destination.route, "caller": caller.name, "destinations": len(messages)},
        )
        return {"status": "success", "message": "Change event processed"}

    key = replay_key(caller.name, "change", "change", destination.route, request.body, request.headers, by_body=False)
    answer = _once(key, work, deps, signed="x-pdrelay-signature" in request.headers)
    return {k: v for k, v in answer.items() if k in ("status", "message")}
