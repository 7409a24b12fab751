"""``POST /v1/test/{route}`` and ``GET /v1/test/{probe}``: probes over HTTP.

This module is the endpoints: it admits and checks the request, queues the probe's messages to
every destination of the route, and answers a report only to a caller allowed that route. What a
probe is (its id, its labelled alert, its records in the dedup table, the advice in its report)
lives in :mod:`pdrelay.ops.probes`, shared with ``pdrelay test`` and the dispatcher.
"""

from __future__ import annotations

from typing import Any

from pdrelay.errors import BadRequest, ConfigError, NotFound
from pdrelay.ingest.admission import admit
from pdrelay.ingest.body import decode_json
from pdrelay.ingest.fanout import enqueue_alerts
from pdrelay.ingest.request import Deps, IncomingRequest
from pdrelay.models import make_message
from pdrelay.observability import logger, mask
from pdrelay.ops import probes as probe_records
from pdrelay.policy.routing import select_route
from pdrelay.table import DedupStore


def _store(deps: Deps) -> DedupStore:
    if deps.dynamodb is None:
        raise ConfigError("test events need the dedup table")
    return DedupStore(deps.dynamodb, deps.settings.table_name)


def accept_test(request: IncomingRequest, route_name: str, deps: Deps) -> dict[str, Any]:
    """``POST /v1/test/{route}``: a labelled test trigger (or, given its probe id, its resolve) to
    every destination of the route, through the queue like any alert."""
    caller, request = admit(request, deps)
    doc = decode_json(request.body, deps.settings.max_string_chars) if request.body.strip() else {}
    if not isinstance(doc, dict):
        raise BadRequest("invalid test request", ['the body is a JSON object: {"action": "trigger"|"resolve"}'])
    destination = select_route(deps.config, caller, {}, {"route": route_name})
    route = deps.config.routes[route_name]
    action = doc.get("action", "trigger")
    severity = doc.get("severity", "info")
    problems: list[str] = []
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
        probe_id = probe_records.new_probe_id()
        probe_records.start(store, probe_id, route_name, {n: mask(k) for n, k in route.targets.items()})
    alert = probe_records.test_alert(route_name, str(probe_id), action, request.received_at, caller.name, severity)
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
    enqueue_alerts(messages, deps)
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
        "destinations": [
            {"destination": m.destination, "routing_key": mask(m.routing_key), "dedup_key": m.dedup_key}
            for m in messages
        ],
        "results": f"/v1/test/{probe_id}",
    }


def test_report(request: IncomingRequest, probe_id: str, deps: Deps) -> dict[str, Any]:
    """``GET /v1/test/{probe}``: what PagerDuty answered each destination so far."""
    caller, request = admit(request, deps)
    if not (probe_id.isalnum() and len(probe_id) <= 32):
        raise NotFound("no such test", ["the id is the 'probe' a test trigger answered with"])
    found = probe_records.report(_store(deps), probe_id)
    if found is None:
        raise NotFound("no such test", [f"no test {probe_id!r}: it may have expired"])
    if caller.routes and found.get("route") not in caller.routes:
        raise NotFound("no such test", [f"no test {probe_id!r}"])
    return found
