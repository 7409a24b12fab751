"""Which PagerDuty routing key an alert goes to.

A request names a route (``?route=NAME`` or the ``X-Pdrelay-Route`` header), never a routing key
in the URL; without one it takes the caller's default route, then the document's. On the
PagerDuty-compatible endpoint the body's ``routing_key`` may be a route name (the route's rules
then choose its destinations), one of a route's routing keys (that service only), or (only with
``allow_unlisted_routing_keys``) any integration key, passed through.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pdrelay.config import ROUTING_KEY_RE, Caller, RelayConfig
from pdrelay.errors import BadRequest, Forbidden


@dataclass(frozen=True)
class Destination:
    route: str | None
    routing_key: str  # the route's first destination, or the key the event named
    by_name: bool = True  # the route was named (its rules apply), not one of its keys


def _allowed(caller: Caller, route: str) -> None:
    if caller.routes and route not in caller.routes:
        raise Forbidden(f"caller {caller.name!r} may not send to route {route!r}")


def select_route(
    config: RelayConfig, caller: Caller, headers: Mapping[str, str], query: Mapping[str, str]
) -> Destination:
    requested = query.get("route") or headers.get("x-pdrelay-route")
    name = requested or caller.default_route or config.default_route
    if name not in config.routes:
        raise BadRequest(f"unknown route {name!r}", [f"configured routes: {', '.join(config.routes)}"])
    _allowed(caller, name)
    return Destination(route=name, routing_key=config.routes[name].primary_key)


def route_for_routing_key(
    config: RelayConfig, caller: Caller, value: object, field: str = "routing_key"
) -> Destination:
    """Resolve the ``routing_key`` (v2) or ``service_key`` (v1) field of a PagerDuty-compatible event."""
    if not isinstance(value, str) or not value:
        raise BadRequest("Event object is invalid", [f"'{field}' is missing or blank"])
    if value in config.routes:
        _allowed(caller, value)
        return Destination(route=value, routing_key=config.routes[value].primary_key)
    named = config.route_for_key(value)
    if named is not None:
        _allowed(caller, named)
        return Destination(route=named, routing_key=value, by_name=False)
    if config.allow_unlisted_routing_keys and not caller.routes and ROUTING_KEY_RE.fullmatch(value):
        return Destination(route=None, routing_key=value, by_name=False)
    raise BadRequest(
        "Event object is invalid",
        [f"'{field}' is neither a configured route name nor a configured routing key"],
    )
