"""The PagerDuty Events API v2 client: building events by PagerDuty's rules, sending, classifying.

- ``links`` and ``images`` at the top level of the event; images only over HTTPS.
- ``payload.summary`` at most 1024 characters, ``dedup_key`` at most 255.
- The whole event at most 512 KB: ``custom_details`` is trimmed first, and says so.
- Resolves and acknowledges carry the full payload too, so PagerDuty's event rules route them
  like the trigger.

Answers: 2xx delivered; 400 :class:`PermanentDelivery`; 429, other 4xx/5xx, timeouts and
connection errors :class:`RetryableDelivery`. One urllib3 pool manager per client: urllib3 is
botocore's own HTTP library, already imported with boto3, where ``requests`` would add about 30 ms
to every cold start of the dispatch and sweep functions.
"""

from __future__ import annotations

import functools
import json
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import urllib3
from urllib3.exceptions import HTTPError, NewConnectionError, ProtocolError
from urllib3.exceptions import TimeoutError as PoolTimeout

from pdrelay.errors import PermanentDelivery, RetryableDelivery
from pdrelay.models import SUMMARY_LIMIT, ChangeMessage, QueueMessage, truncate
from pdrelay.timeutil import SYSTEM_CLOCK, Clock, iso

MAX_EVENT_BYTES = 512 * 1024
TRIM_NOTE_KEY = "pdrelay_note"


def payload_snapshot(message: QueueMessage) -> dict[str, Any]:
    """The payload fields kept in the dedup table, for later events that carry none."""
    a = message.alert
    snap = {
        "summary": a.summary,
        "source": a.source,
        "severity": a.severity,
        "component": a.component,
        "group": a.group,
        "class": a.class_,
    }
    return {k: v for k, v in snap.items() if v}


def build_event(message: QueueMessage, action: str, stored: dict[str, Any] | None = None) -> dict[str, Any]:
    a = message.alert
    stored = stored or {}
    summary = a.summary or stored.get("summary") or f"{a.format} alert {a.identity}"
    payload: dict[str, Any] = {
        "summary": truncate(summary, SUMMARY_LIMIT),
        "source": a.source or stored.get("source") or "pdrelay",
        "severity": a.severity if a.summary else stored.get("severity", a.severity),
        "timestamp": iso(a.timestamp or a.occurred_at),
    }
    for key, value in (("component", a.component), ("group", a.group), ("class", a.class_)):
        value = value or stored.get(key)
        if value:
            payload[key] = value
    details = dict(a.custom_details)
    dropped_images = [i.src for i in a.images if not i.src.lower().startswith("https://")]
    if dropped_images:
        details[TRIM_NOTE_KEY] = f"{len(dropped_images)} image(s) dropped: PagerDuty shows HTTPS images only"
    if details:
        payload["custom_details"] = details
    event: dict[str, Any] = {
        "routing_key": message.routing_key,
        "event_action": action,
        "dedup_key": message.dedup_key,
        "payload": payload,
        "client": a.client or "pdrelay",
    }
    if a.client_url and a.client_url.lower().startswith(("https://", "http://")):
        event["client_url"] = a.client_url
    if a.links:
        event["links"] = [link.model_dump(exclude_none=True) for link in a.links]
    images = [i.model_dump(exclude_none=True) for i in a.images if i.src.lower().startswith("https://")]
    if images:
        event["images"] = images
    return fit_size(event)


def change_event(message: ChangeMessage) -> dict[str, Any]:
    """A change event for ``/v2/change/enqueue`` (no action, dedup key or severity)."""
    c = message.change
    payload: dict[str, Any] = {"summary": truncate(c.summary, SUMMARY_LIMIT)}
    if c.source:
        payload["source"] = c.source
    if c.timestamp:
        payload["timestamp"] = iso(c.timestamp)
    if c.custom_details:
        payload["custom_details"] = c.custom_details
    event: dict[str, Any] = {"routing_key": message.routing_key, "payload": payload}
    if c.links:
        event["links"] = [link.model_dump(exclude_none=True) for link in c.links]
    return fit_size(event)


def _size(doc: Any) -> int:
    return len(json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode())


def fit_size(event: dict[str, Any], limit: int = MAX_EVENT_BYTES) -> dict[str, Any]:
    """Trim ``custom_details`` (largest values first) until the event fits in ``limit`` bytes."""
    if _size(event) <= limit:
        return event
    details = dict(event["payload"].get("custom_details") or {})
    removed: list[str] = []
    while details and _size(event) > limit:
        biggest = max(details, key=lambda k: _size(details[k]))
        details.pop(biggest)
        removed.append(biggest)
        note = f"custom_details trimmed to fit PagerDuty's 512 KB event limit; removed: {', '.join(sorted(removed))}"
        event["payload"]["custom_details"] = {**details, TRIM_NOTE_KEY: truncate(note, 2000)}
    if _size(event) > limit:
        # Links/images alone can be oversized; keep the event deliverable.
        event.pop("images", None)
        event["links"] = event.get("links", [])[:10]
    return event


@dataclass(frozen=True)
class Delivered:
    status: int
    dedup_key: str | None


class EventsClient:
    """Sends events to ``{base_url}/v2/enqueue`` through one pool manager (tests may give their own:
    anything with urllib3's ``request(method, url, body=, headers=, timeout=)``)."""

    def __init__(
        self,
        base_url: str,
        *,
        connect_timeout: float = 3.05,
        read_timeout: float = 6.0,
        pool: Any = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.clock = clock  # reads Retry-After dates
        self.timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout)
        self.pool = pool if pool is not None else pool_for(self.base_url)

    def send(self, event: dict[str, Any], path: str = "/v2/enqueue") -> Delivered:
        body = json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()
        try:
            answer = self.pool.request(
                "POST", self.base_url + path, body=body, headers=HEADERS, timeout=self.timeout, retries=False
            )
        except NewConnectionError as exc:  # (a subclass of the connect timeout: refused, no route, DNS)
            raise RetryableDelivery("could not connect to the Events API") from exc
        except PoolTimeout as exc:
            raise RetryableDelivery("timed out waiting for the Events API") from exc
        except ProtocolError as exc:  # the connection dropped mid-request
            raise RetryableDelivery("could not connect to the Events API") from exc
        except HTTPError as exc:
            raise RetryableDelivery(f"request to the Events API failed: {type(exc).__name__}") from exc
        return classify(answer, self.clock.now())


HEADERS = {"Content-Type": "application/json", "User-Agent": "pdrelay"}


def pool_for(base_url: str) -> urllib3.PoolManager:
    """The process's pool manager for ``base_url``: through the proxy the environment names for its
    scheme (``HTTPS_PROXY``...) unless ``NO_PROXY`` exempts its host, as requests and botocore do.
    One per proxy (or none) per process, so every Events API client in it (the dispatcher's, the
    sweep's made each minute, reconcile's) keeps its connections to PagerDuty. No retries here: the
    dispatcher decides when to try again (back-off, breaker, DLQ)."""
    parts = urlsplit(base_url)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(parts.hostname or ""):
        return _pool(proxy)
    return _pool(None)


@functools.cache
def _pool(proxy: str | None) -> urllib3.PoolManager:
    if proxy:
        return urllib3.ProxyManager(proxy, num_pools=4, maxsize=16, retries=False)
    return urllib3.PoolManager(num_pools=4, maxsize=16, retries=False)


def forget_pools() -> None:
    """Drop the kept pools (tests, and the local stack when it starts or stops)."""
    _pool.cache_clear()


def classify(answer: urllib3.BaseHTTPResponse, now: datetime) -> Delivered:
    status = answer.status
    try:
        body = json.loads(answer.data or b"null")
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    if 200 <= status < 300:
        return Delivered(status=status, dedup_key=body.get("dedup_key"))
    message = str(body.get("message") or answer.reason or "no message")[:500]
    errors = [str(e)[:500] for e in body.get("errors", []) if isinstance(e, str | int | float)][:20]
    if status == 400:
        raise PermanentDelivery(f"PagerDuty rejected the event: {message}", status=status, errors=errors)
    raise RetryableDelivery(
        f"PagerDuty answered {status}: {message}",
        status=status,
        errors=errors,
        retry_after=retry_after_seconds(answer.headers.get("Retry-After"), now),
    )


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` as seconds from ``now`` (delta-seconds or an HTTP date), capped at an hour; None if absent."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), 3600.0)
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)  # "-0000" means UTC without a stated zone
        return max(0.0, min((when - now).total_seconds(), 3600.0))
    except (TypeError, ValueError, OverflowError):
        return None
