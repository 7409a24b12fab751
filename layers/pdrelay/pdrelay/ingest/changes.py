"""``POST /v2/change/enqueue``: PagerDuty change events (deploy markers), checked as PagerDuty
checks them, scrubbed of credentials, and queued to the destinations their routing key names."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from pdrelay.errors import BadRequest, validation_problems
from pdrelay.ingest import scrub
from pdrelay.ingest.admission import admit, answer_once
from pdrelay.ingest.body import decode_json
from pdrelay.ingest.enqueue import enqueue
from pdrelay.ingest.replay import replay_key
from pdrelay.ingest.request import Deps, IncomingRequest
from pdrelay.models import SUMMARY_LIMIT, ChangeEvent, ChangeMessage, truncate
from pdrelay.observability import CHANGES_ACCEPTED, count, logger
from pdrelay.policy.routing import route_for_routing_key


def accept_change(request: IncomingRequest, deps: Deps) -> dict[str, Any]:
    """``POST /v2/change/enqueue``: a change event (deploy marker), answered as PagerDuty answers.
    A route name as ``routing_key`` sends it to every destination of that route."""
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
    answer = answer_once(key, work, deps, signed="x-pdrelay-signature" in request.headers)
    return {k: v for k, v in answer.items() if k in ("status", "message")}
