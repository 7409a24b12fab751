"""Caller authentication and per-caller rate limits.

Credentials, in the order they are looked for:

1. an HMAC-SHA256 signature over the raw body, for senders that sign: ``X-Pdrelay-Timestamp:
   <unix seconds>`` and ``X-Pdrelay-Signature: sha256=<hex of HMAC(key, "<timestamp>." + body)>``.
   The timestamp must be within ``PDRELAY_SIGNATURE_TOLERANCE_SECONDS`` (300) of now, so a
   captured request cannot be replayed later; the body is signed as sent (before gzip inflation);
2. a bearer token, basic auth whose password is the token (SNS subscriptions, senders that only
   take a URL), or a ``token`` query parameter (Sentry, Pingdom, Splunk: no headers at all).

Every credential of every caller is compared, in constant time, whatever matched first, so timing
says nothing about which one was close. A caller may hold several tokens and keys at once (rotate:
add the new one, move the senders, remove the old). ``require_signature`` refuses a caller's
unsigned requests. SNS sends basic auth only after a 401 that asks for it, so 401 answers carry
``WWW-Authenticate: Basic``. Nothing here logs a credential, and no answer echoes one.

Rate limits: each caller has a limit (``rate_limit`` on the caller, else
``PDRELAY_CALLER_RATE_LIMIT`` per ``PDRELAY_CALLER_RATE_WINDOW_SECONDS``) shared by every ingest
instance, so one noisy or hostile caller cannot spend the PagerDuty budget of the others: a GCRA
in the dedup table, taken with one conditional update and no read (:class:`CallerPolicy`); a
caller sending a few requests a minute is admitted on each instance's own count without one.
Over it: 429 with ``Retry-After`` (403 on the Events API v1 endpoint: see
:func:`pdrelay.ingest.endpoints.error_response`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pdrelay.config import Caller, RelayConfig
from pdrelay.delivery.pacing import Allowance
from pdrelay.errors import TooManyRequests, Unauthorized
from pdrelay.table import caller_bucket

TIMESTAMP_HEADER = "x-pdrelay-timestamp"
SIGNATURE_HEADER = "x-pdrelay-signature"
DEFAULT_TOLERANCE_SECONDS = 300


def presented_token(headers: Mapping[str, str]) -> str | None:
    value = headers.get("authorization", "").strip()
    scheme, _, credential = value.partition(" ")
    scheme = scheme.lower()
    credential = credential.strip()
    if scheme == "bearer" and credential:
        return credential
    if scheme == "basic" and credential:
        try:
            decoded = base64.b64decode(credential, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):  # ValueError: non-ASCII text (UnicodeDecodeError is one too)
            return None
        _user, sep, password = decoded.partition(":")
        return password if sep and password else None
    return None


def sign(key: str, timestamp: int | str, body: bytes) -> str:
    """The ``X-Pdrelay-Signature`` value for ``body`` sent at ``timestamp`` (for senders and tests)."""
    return "sha256=" + hmac.new(key.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def _signed_by(config: RelayConfig, headers: Mapping[str, str], body: bytes, now: float, tolerance: int) -> Caller:
    stamp = headers.get(TIMESTAMP_HEADER, "").strip()
    given = headers.get(SIGNATURE_HEADER, "").strip()
    if not (stamp.isascii() and stamp.isdigit()) or len(stamp) > 12:
        raise Unauthorized("invalid signature", [f"{TIMESTAMP_HEADER} must be the signing time in Unix seconds"])
    if abs(now - int(stamp)) > tolerance:
        raise Unauthorized(
            "invalid signature",
            [f"{TIMESTAMP_HEADER} is more than {tolerance} s from pdrelay's clock: sign each request when it is sent"],
        )
    if not given.startswith("sha256="):
        raise Unauthorized(
            "invalid signature", [f"{SIGNATURE_HEADER} is 'sha256=<hex HMAC-SHA256 of \"<timestamp>.<body>\">'"]
        )
    presented = given.encode()
    match: Caller | None = None
    for caller in config.callers:
        for key in caller.hmac_keys:
            if hmac.compare_digest(presented, sign(key, stamp, body).encode()) and match is None:
                match = caller
    if match is None:
        raise Unauthorized("invalid signature", ["the signature does not match the body with any configured key"])
    return match


def authenticate(
    config: RelayConfig,
    headers: Mapping[str, str],
    query: Mapping[str, str] | None = None,
    body: bytes = b"",
    *,
    now: float | None = None,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> Caller:
    if headers.get(SIGNATURE_HEADER):
        return _signed_by(config, headers, body, time.time() if now is None else now, tolerance)
    token = presented_token(headers) or ((query or {}).get("token") or "").strip() or None
    if token is None:
        raise Unauthorized(
            "missing credentials",
            [
                "send 'Authorization: Bearer <token>', basic auth with the token as the password, "
                "?token=<token> in the URL (for senders that cannot set headers), "
                f"or sign the body ({SIGNATURE_HEADER})"
            ],
        )
    given = token.encode()
    match: Caller | None = None
    for caller in config.callers:
        for candidate in caller.all_tokens:
            if hmac.compare_digest(given, candidate.encode()) and match is None:
                match = caller
    if match is None:
        raise Unauthorized("invalid credentials")
    if match.require_signature:
        raise Unauthorized("signature required", [f"caller {match.name!r} must sign its requests ({SIGNATURE_HEADER})"])
    return match


@dataclass(frozen=True)
class CallerPolicy:
    """A caller's limit as a GCRA: ``requests`` per ``window`` seconds with a burst of
    ``max(1, requests // 6)`` at once. Of that burst, each of the ``processes`` ingest functions
    that may run at once may admit ``(burst - 1) // processes`` requests per window on its own count
    (:class:`~pdrelay.delivery.pacing.Allowance`), so a caller sending a few requests a minute
    never touches the table; the shared item holds the rest."""

    requests: int
    window_seconds: float
    processes: int = 0  # 0: no own allowance (every request asks the table)

    @property
    def burst(self) -> int:
        return max(1, self.requests // 6)

    @property
    def own_allowance(self) -> int:
        return (self.burst - 1) // self.processes if self.processes > 0 else 0

    @property
    def interval(self) -> float:
        # A limit no larger than the burst (1 to 11) still refills: that many per window.
        return self.window_seconds / ((self.requests - self.burst) or self.requests)

    @property
    def tolerance(self) -> float:
        return (self.burst - 1 - self.own_allowance * max(self.processes, 1)) * self.interval


_OWN = Allowance()  # this process's own count per caller
_LAST_TAT: dict[str, float] = {}  # the caller's theoretical arrival time this process saw last


def forget_counts() -> None:
    """Forget this process's own counts (tests: each starts as a fresh execution environment)."""
    _OWN.sent.clear()
    _LAST_TAT.clear()


def enforce_rate(
    caller: Caller,
    store: Any,
    *,
    default_requests: int,
    default_window: int,
    processes: int = 0,
    now: float | None = None,
) -> None:
    """Take one request from the caller's limit, or raise :class:`TooManyRequests`: from this
    process's own allowance when it has one left, else with one conditional update of the
    caller's item in the table (no read)."""
    limit = caller.rate_limit
    requests_, window = (limit.requests, limit.per_seconds) if limit else (default_requests, default_window)
    if requests_ <= 0:
        return
    policy = CallerPolicy(requests_, float(window), processes)
    moment = time.time() if now is None else now
    key = caller_bucket(caller.name)
    if _OWN.take(key, moment, policy):
        return
    wait, tat = store.take_caller_slot(
        key, moment, policy.interval, policy.tolerance, busy_first=_LAST_TAT.get(key, 0.0) > moment
    )
    _LAST_TAT[key] = tat
    if len(_LAST_TAT) > 10_000:  # callers come and go
        _LAST_TAT.clear()
    if wait > 0:
        raise TooManyRequests(
            f"caller {caller.name!r} is over its rate limit ({requests_} requests per {window} s)",
            retry_after=max(1, math.ceil(wait - 1e-6)),
        )
