"""One exception hierarchy for pdrelay.

::

    PdrelayError
    ├── ConfigError              configuration document or settings are invalid
    ├── RequestError             the caller sent something we refuse (HTTP 4xx)
    │   ├── BadRequest           400: malformed body, unknown format, missing fields
    │   ├── Unauthorized         401: no or wrong credentials
    │   ├── Forbidden            403: credentials valid, route not allowed for them
    │   ├── NotFound             404: no such path
    │   ├── PayloadTooLarge      413: body (or its inflated size, or its alert count) over a limit
    │   ├── UnsupportedMediaType 415: a content type or encoding pdrelay does not read
    │   └── TooManyRequests      429: the caller is over its rate limit (with Retry-After; 403 on
    │                            the Events API v1 endpoint, as v1 said it)
    ├── EnqueueError             SQS did not take every message (HTTP 503, caller retries)
    ├── UpstreamError            a call ingest makes for the sender failed, e.g. confirming an
    │                            SNS subscription (HTTP 502, the sender retries)
    ├── StoreError               DynamoDB failed in a way a retry may fix
    │   └── ConcurrentUpdate     the conditional write lost a race
    ├── DeliveryError            the Events API did not take an event
    │   ├── PermanentDelivery    400 from PagerDuty: never retried, goes to the DLQ
    │   └── RetryableDelivery    429, 5xx, timeouts, connection errors
    └── RestApiError             PagerDuty's REST API (read by `pdrelay reconcile`) failed: ``status``
                                 says how (401 a wrong key, 429 too fast, 0 unreachable)

HTTP status codes are decided in one place: :func:`pdrelay.ingest.endpoints.error_response`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import ValidationError


def validation_problems(exc: ValidationError, *, prefix: str = "", empty: str = "(top level)") -> list[str]:
    """A pydantic error as the ``where: why`` lines users see, one per mistake: ``where`` is the
    field's path after ``prefix`` (``empty`` for the object itself); pydantic's "Value error, " is dropped."""
    return [
        f"{prefix}{'.'.join(str(p) for p in e['loc']) or empty}: {e['msg'].removeprefix('Value error, ')}"
        for e in exc.errors()
    ]


class PdrelayError(Exception):
    """Base of every error pdrelay raises on purpose."""


class ConfigError(PdrelayError):
    """The configuration is invalid; ``problems`` says where."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        self.message = message
        self.problems = problems or []
        detail = "; ".join(self.problems)
        super().__init__(f"{message}: {detail}" if detail else message)


class RequestError(PdrelayError):
    status = 400

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems or []


class BadRequest(RequestError):
    status = 400


class Unauthorized(RequestError):
    status = 401


class Forbidden(RequestError):
    status = 403


class NotFound(RequestError):
    status = 404


class PayloadTooLarge(RequestError):
    status = 413


class UnsupportedMediaType(RequestError):
    status = 415


class TooManyRequests(RequestError):
    status = 429

    def __init__(self, message: str, problems: list[str] | None = None, *, retry_after: int = 1) -> None:
        super().__init__(message, problems)
        self.retry_after = retry_after


class EnqueueError(PdrelayError):
    """Not every message reached SQS; nothing may be answered 202."""


class UpstreamError(PdrelayError):
    """A call made on the sender's behalf failed; retrying the request may pass."""


class StoreError(PdrelayError):
    """The dedup table could not be read or written."""


class ConcurrentUpdate(StoreError):
    """Another dispatcher changed the item between our read and our write. ``current`` is the item as
    DynamoDB found it when the write's condition failed, when the store asked for it (no re-read)."""

    def __init__(self, message: str, current: Any = None) -> None:
        super().__init__(message)
        self.current = current


class DeliveryError(PdrelayError):
    def __init__(self, message: str, status: int | None = None, errors: list[str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.errors = errors or []


class PermanentDelivery(DeliveryError):
    """PagerDuty rejected the event (400): retrying cannot help."""


class RetryableDelivery(DeliveryError):
    """PagerDuty or the network failed in a way that may pass."""

    def __init__(
        self, message: str, status: int | None = None, errors: list[str] | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status, errors)
        self.retry_after = retry_after


class RestApiError(PdrelayError):
    """PagerDuty's REST API refused or failed a request (``status`` 0: no answer)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status
