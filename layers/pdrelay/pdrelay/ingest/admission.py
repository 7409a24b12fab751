"""What every endpoint does around its own work: admit the request (who calls, by signature or
token, within its rate limit, with a readable body) and answer it once (a replayed request gets the
first answer, not a second enqueue)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pdrelay.config import Caller
from pdrelay.ingest.auth import authenticate, enforce_rate
from pdrelay.ingest.body import check_size, readable_body
from pdrelay.ingest.replay import once
from pdrelay.ingest.request import Deps, IncomingRequest
from pdrelay.table import DedupStore


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
            enforce_rate(
                caller,
                DedupStore(deps.dynamodb, deps.settings.table_name),
                default_requests=deps.settings.caller_rate_limit,
                default_window=deps.settings.caller_rate_window_seconds,
                processes=deps.settings.ingest_concurrency,
            )
    return caller, readable_body(request, deps.settings)


def answer_once(
    key: str | None, work: Callable[[], dict[str, Any]], deps: Deps, signed: bool = False
) -> dict[str, Any]:
    """``work``'s answer, run once per ``key`` within the replay window (``None``: no key, always run)."""
    if deps.dynamodb is None:  # no table, no replay protection
        return work()
    window = deps.settings.replay_window_seconds
    if signed and window > 0:
        # A signature is valid while its timestamp is within ± the tolerance of receipt: its copy
        # may come up to twice the tolerance after the original.
        window = max(window, 2 * deps.settings.signature_tolerance_seconds)
    return once(
        key,
        work,
        table_name=deps.settings.table_name,
        window_seconds=window,
        dynamodb=deps.dynamodb,
    )
