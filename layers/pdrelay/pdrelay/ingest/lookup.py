"""``GET /v1/alerts/{dedup_key}``: an alert's state per destination, from the dedup table.

Read-only, for operators and tools: the caller authenticates as for any endpoint, needs
``read_alerts: true`` in its configuration (a sender's token reads nothing: summaries and details
can be sensitive), and sees only the routes it may send to (``?route=NAME`` narrows to one). The
items are found from each route's routing-key history (:mod:`pdrelay.ops.alerts`): no scan. A dedup
key with ``/`` in it is sent percent-encoded (``%2F``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from pdrelay.errors import ConfigError, Forbidden, NotFound
from pdrelay.ingest.admission import admit
from pdrelay.ingest.request import Deps, IncomingRequest
from pdrelay.ops.alerts import describe, items_of
from pdrelay.policy.routing import select_route
from pdrelay.table import DedupStore


def alert_state(request: IncomingRequest, dedup_key: str, deps: Deps) -> dict[str, Any]:
    caller, request = admit(request, deps)
    if not caller.read_alerts:
        raise Forbidden(
            f"caller {caller.name!r} may not read alerts",
            ["set read_alerts: true on a caller meant for reading (callers in the configuration)"],
        )
    if deps.dynamodb is None or not deps.settings.table_name:
        raise ConfigError("looking up an alert needs the dedup table")
    key = unquote(dedup_key)
    if request.query.get("route"):
        routes = [select_route(deps.config, caller, {}, {"route": request.query["route"]}).route]
    else:
        routes = [name for name in deps.config.routes if not caller.routes or name in caller.routes]
    current = [k for name in routes for k in deps.config.routes[name or ""].targets.values()]
    store = DedupStore(deps.dynamodb, deps.settings.table_name)
    records = items_of(store, key, routes, current)
    if not records:
        raise NotFound(
            "unknown alert",
            [
                f"no alert with dedup key {key!r} on route(s) {', '.join(str(r) for r in routes) or '(none)'}: "
                "never sent there, or resolved longer ago than the table keeps alerts"
            ],
        )
    now = request.received_at
    return {"dedup_key": key, "destinations": [describe(r, now) for r in records]}
