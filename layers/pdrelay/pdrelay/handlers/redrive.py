"""Invoked by operators: inspect the DLQ, move messages back (all, or one route/routing key), purge.

Event: {"action": "inspect" | "redrive" | "purge", "route": NAME, "routing_key": KEY,
        "dry_run": bool, "limit": N, "confirm": true (purge only)}
"""

from __future__ import annotations

from typing import Any

from pdrelay.errors import ConfigError
from pdrelay.observability import invocation, logger
from pdrelay.ops import resources


@invocation()
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        result = resources.run_redrive(event or {}, resources.from_environment())
    except ConfigError as exc:
        return {"error": str(exc)}
    logger.info(
        "redrive done",
        extra={
            "action": (event or {}).get("action", "inspect"),
            "result": {k: v for k, v in result.items() if k != "messages"},
        },
    )
    return result
