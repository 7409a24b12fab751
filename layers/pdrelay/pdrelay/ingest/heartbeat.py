"""Heartbeat contact at ingest: ``POST /v1/heartbeat/{route}`` (a ping, for senders that only
ping), and the contact every accepted request gives its route (:func:`note_contact`). What a
heartbeat is and how silence pages: :mod:`pdrelay.policy.heartbeats`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pdrelay.errors import BadRequest, ConfigError
from pdrelay.ingest.admission import admit
from pdrelay.ingest.request import Deps, IncomingRequest
from pdrelay.models import Alert
from pdrelay.observability import logger
from pdrelay.policy import heartbeats
from pdrelay.policy.routing import select_route
from pdrelay.policy.windows import format_duration
from pdrelay.table import DedupStore


def note_contact(
    deps: Deps, route_name: str | None, alerts: Sequence[Alert], caller: str, fmt: str, request: IncomingRequest
) -> None:
    """An accepted request for ``route_name`` is contact for its heartbeat, if it has one (and, with
    a ``when``, if one of ``alerts`` matches). Routes without a heartbeat cost nothing."""
    route = deps.config.routes.get(route_name or "")
    heartbeat = route.heartbeat if route is not None else None
    if heartbeat is None or route_name is None or deps.dynamodb is None or not deps.settings.table_name:
        return
    if heartbeat.counts(alerts):
        heartbeats.record_contact(
            DedupStore(deps.dynamodb, deps.settings.table_name),
            route_name,
            heartbeat,
            request.received_at,
            heartbeats.last_sent(caller, fmt, alerts),
        )


def accept_heartbeat(request: IncomingRequest, route_name: str, deps: Deps) -> dict[str, Any]:
    """``POST /v1/heartbeat/{route}``: contact for the route's heartbeat; nothing is queued. The
    body, if any, is ignored."""
    caller, request = admit(request, deps)
    destination = select_route(deps.config, caller, {}, {"route": route_name})
    heartbeat = deps.config.routes[route_name].heartbeat
    if heartbeat is None:
        raise BadRequest(f"route {route_name!r} has no heartbeat", ["configure routes.<route>.heartbeat.every"])
    if deps.dynamodb is None or not deps.settings.table_name:
        raise ConfigError("heartbeats need the dedup table")
    heartbeats.record_contact(
        DedupStore(deps.dynamodb, deps.settings.table_name),
        route_name,
        heartbeat,
        request.received_at,
        {"caller": caller.name, "format": "ping"},
    )
    logger.debug("heartbeat ping", extra={"route": destination.route, "caller": caller.name})
    return {"status": "accepted", "route": route_name, "every": format_duration(heartbeat.every)}
