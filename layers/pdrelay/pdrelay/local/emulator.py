"""A PagerDuty Events API v2 emulator, for demos and tests, on 127.0.0.1.

It validates events as PagerDuty documents them and keeps incidents per (routing key, dedup key)
with PagerDuty's dedup rules: a trigger whose key matches an open incident adds to its log; after a
resolve the same key opens a new incident; acknowledge/resolve for unknown or resolved keys are
accepted and dropped. ``GET /`` shows incidents as a page, ``GET /incidents`` as JSON,
``GET /events`` lists every event received, ``POST /_reset`` clears everything.

Faults, for tests and demos (``POST /_faults`` with a list of rules, ``DELETE /_faults`` clears):

- ``{"mode": "status", "status": 500, "count": 3}``: the next 3 events are answered 500, not applied;
- ``{"mode": "outage", "status": 503}``: every event is answered 503 until cleared;
- ``{"mode": "slow", "delay": 8, "count": 2}``: apply, then answer after ``delay`` seconds
  (past the client's timeout, as when PagerDuty took an event but the answer never arrived);
- ``{"mode": "drop", "count": 2, "apply": true}``: close the connection without an answer;
- ``{"mode": "rate_limit", "limit": 120, "window": 60, "retry_after": null}``: PagerDuty's
  per-routing-key limit: events over ``limit`` in the sliding ``window`` get 429 (with
  ``Retry-After`` when given).

Any rule may add ``"routing_key": KEY`` to apply to that integration only, and a 400 rule may give
PagerDuty's ``errors`` (e.g. ``["Invalid routing key"]``, its answer for a key that is no
Events API v2 integration).

The REST API v2 subset ``pdrelay reconcile`` reads, under ``/rest`` (so its base URL is
``<emulator>/rest``, where PagerDuty's is ``https://api.pagerduty.com``), with PagerDuty's request
and answer shapes: every request needs ``Authorization: Token token=<api key>`` (401 otherwise;
the key is :data:`EMULATOR_API_KEY` unless the server is given another); lists use classic paging
(``limit`` at most 100, ``offset``, ``more``, ``total`` with ``total=true``; ``offset + limit``
over 10000 is a 400).

- ``GET /rest/services?include[]=integrations``: a service per routing key the emulator has seen
  (or was given), each with one Events API v2 integration whose ``integration_key`` is that key;
- ``GET /rest/incidents`` with ``service_ids[]``, ``statuses[]``, ``incident_key``, ``date_range``:
  incidents, ``incident_key`` being the dedup key;
- ``GET /rest/incidents/{id}/alerts``: the incident's alerts (here one, its ``alert_key`` the
  incident's key, triggered until the incident resolves: the emulator does not group alerts);
- ``GET /rest/incidents/{id}``, and ``PUT /rest/incidents/{id}`` with
  ``{"incident": {"type": "incident_reference", "status": "resolved"}}`` and a ``From`` header:
  a person resolving (or acknowledging) the incident by hand.
"""

from __future__ import annotations

import hashlib
import html
import itertools
import json
import re
import threading
import time
import uuid
from collections import defaultdict, deque
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

ROUTING_KEY_RE = re.compile(r"^[A-Za-z0-9]{32}$")
MAX_EVENT_BYTES = 512 * 1024
SEVERITIES = ("critical", "error", "warning", "info")
EMULATOR_API_KEY = "pdrelay-emulator-api-key"  # the emulator's REST API key: not a secret
REST_PREFIX = "/rest"
REST_MAX_RECORDS = 10000  # PagerDuty's classic paging: offset + limit may not exceed it


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _mask(key: str) -> str:
    return "…" + key[-4:]


@dataclass
class Incident:
    number: int
    routing_key: str
    dedup_key: str
    status: str
    summary: str
    severity: str
    source: str
    created_at: str
    updated_at: str
    log: list[dict[str, Any]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"Q{self.number:06d}"

    def public(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["routing_key"] = _mask(self.routing_key)
        doc["id"] = self.id
        return doc

    def rest_alert(self, base: str) -> dict[str, Any]:
        """The incident's one alert as PagerDuty's REST API v2 lists it (``/incidents/{id}/alerts``)."""
        return {
            "id": f"A{self.number:06d}",
            "type": "alert",
            "summary": self.summary,
            "status": "resolved" if self.status == "resolved" else "triggered",
            "alert_key": self.dedup_key,
            "created_at": self.created_at,
            "incident": {"id": self.id, "type": "incident_reference", "self": f"{base}/incidents/{self.id}"},
        }

    def rest(self, base: str) -> dict[str, Any]:
        """The incident as PagerDuty's REST API v2 shows it."""
        service = service_id(self.routing_key)
        return {
            "id": self.id,
            "type": "incident",
            "summary": f"[#{self.number}] {self.summary}",
            "self": f"{base}/incidents/{self.id}",
            "html_url": f"{base}/incidents/{self.id}",
            "incident_number": self.number,
            "title": self.summary,
            "status": self.status,
            "incident_key": self.dedup_key,
            "urgency": "high",
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "last_status_change_at": self.updated_at,
            "service": {
                "id": service,
                "type": "service_reference",
                "summary": _service_name(self.routing_key),
                "self": f"{base}/services/{service}",
                "html_url": f"{base}/services/{service}",
            },
        }


def service_id(routing_key: str) -> str:
    """The emulator's service for a routing key (PagerDuty-like: P and six characters)."""
    return "P" + hashlib.sha256(routing_key.encode()).hexdigest()[:6].upper()


def _service_name(routing_key: str) -> str:
    return f"emulated service {_mask(routing_key)}"


def rest_service(routing_key: str, base: str, with_integrations: bool) -> dict[str, Any]:
    """A service as PagerDuty's REST API v2 lists it, with its Events API v2 integration."""
    sid = service_id(routing_key)
    integration = "PI" + hashlib.sha256(b"integration:" + routing_key.encode()).hexdigest()[:5].upper()
    reference: dict[str, Any] = {
        "id": integration,
        "type": "events_api_v2_inbound_integration_reference",
        "summary": "Events API v2",
        "self": f"{base}/services/{sid}/integrations/{integration}",
    }
    if with_integrations:
        reference = {
            **reference,
            "type": "events_api_v2_inbound_integration",
            "name": "Events API v2",
            "integration_key": routing_key,
            "service": {"id": sid, "type": "service_reference"},
        }
    return {
        "id": sid,
        "type": "service",
        "name": _service_name(routing_key),
        "summary": _service_name(routing_key),
        "self": f"{base}/services/{sid}",
        "html_url": f"{base}/services/{sid}",
        "status": "active",
        "integrations": [reference],
    }


def _envelope_errors(event: Any, raw_size: int) -> list[str] | None:
    """Size, shape and routing key, common to both kinds of event; None when the event is an object."""
    if raw_size > MAX_EVENT_BYTES:
        return [f"Event is {raw_size} bytes; the limit is {MAX_EVENT_BYTES}"]
    if not isinstance(event, dict):
        return ["Event object must be a JSON object"]
    return None


def _key_errors(event: dict[str, Any]) -> list[str]:
    key = event.get("routing_key")
    if not isinstance(key, str) or not ROUTING_KEY_RE.fullmatch(key):
        return ["'routing_key' is invalid: it must be a 32-character integration key"]
    return []


def _summary_errors(payload: dict[str, Any]) -> list[str]:
    summary = payload.get("summary")
    if not isinstance(summary, str) or not summary:
        return ["'payload.summary' is missing or blank"]
    if len(summary) > 1024:
        return ["'payload.summary' is longer than 1024 characters"]
    return []


def validate_event(event: Any, raw_size: int) -> list[str]:
    """PagerDuty's documented rules for an Events API v2 event."""
    early = _envelope_errors(event, raw_size)
    if early is not None:
        return early
    errors = _key_errors(event)
    action = event.get("event_action")
    if action not in ("trigger", "acknowledge", "resolve"):
        errors.append("'event_action' is invalid")
    dedup = event.get("dedup_key")
    if dedup is not None and (not isinstance(dedup, str) or not dedup or len(dedup) > 255):
        errors.append("'dedup_key' must be a string of 1 to 255 characters")
    if action in ("acknowledge", "resolve") and not dedup:
        errors.append("'dedup_key' is required for acknowledge and resolve")
    payload = event.get("payload")
    if action == "trigger":
        if not isinstance(payload, dict):
            errors.append("'payload' is missing")
        else:
            errors.extend(_summary_errors(payload))
            if not isinstance(payload.get("source"), str) or not payload.get("source"):
                errors.append("'payload.source' is missing or blank")
            if payload.get("severity") not in SEVERITIES:
                errors.append("'payload.severity' is invalid")
    if isinstance(payload, dict) and ("links" in payload or "images" in payload):
        errors.append("'links' and 'images' belong at the top level of the event, not in 'payload'")
    for image in event.get("images") or []:
        if not isinstance(image, dict) or not str(image.get("src", "")).startswith("https://"):
            errors.append("'images[].src' must be an HTTPS URL")
    for link in event.get("links") or []:
        if not isinstance(link, dict) or not isinstance(link.get("href"), str):
            errors.append("'links[].href' is required")
    return errors


def validate_change_event(event: Any, raw_size: int) -> list[str]:
    """PagerDuty's documented rules for a change event (no action, dedup key or severity)."""
    early = _envelope_errors(event, raw_size)
    if early is not None:
        return early
    errors = _key_errors(event)
    payload = event.get("payload")
    if not isinstance(payload, dict):
        return [*errors, "'payload' is missing"]
    errors.extend(_summary_errors(payload))
    errors.extend(
        f"'{name}' does not belong in a change event"
        for name in ("event_action", "dedup_key", "severity")
        if name in event or name in payload
    )
    return errors


class EmulatorState:
    def __init__(self, routing_keys: tuple[str, ...] = ()) -> None:
        self.lock = threading.Lock()
        self.configured = tuple(routing_keys)
        self.services: dict[str, None] = dict.fromkeys(routing_keys)  # routing keys with a service, in order
        self.incidents: list[Incident] = []
        self.events: list[dict[str, Any]] = []
        self.change_events: list[dict[str, Any]] = []
        self.faults: list[dict[str, Any]] = []
        self.requests: list[tuple[float, str]] = []  # (time, masked routing key) of every valid event
        self.answers: dict[int, int] = defaultdict(int)  # status → how many times answered
        self._windows: dict[str, deque[float]] = defaultdict(deque)
        self._numbers = itertools.count(1)

    def reset(self) -> None:
        with self.lock:
            self.incidents.clear()
            self.events.clear()
            self.change_events.clear()
            self.faults.clear()
            self.requests.clear()
            self.answers.clear()
            self._windows.clear()
            self.services = dict.fromkeys(self.configured)

    def set_faults(self, rules: list[dict[str, Any]]) -> None:
        with self.lock:
            self.faults = [dict(rule) for rule in rules]
            self._windows.clear()

    def fault_for(self, event: dict[str, Any]) -> dict[str, Any] | None:
        """The fault to apply to this (valid) event, consuming one use of a counted rule."""
        now = time.monotonic()
        with self.lock:
            for rule in self.faults:
                if rule.get("routing_key") not in (None, event["routing_key"]):
                    continue  # a fault for one integration only
                mode = rule.get("mode")
                if mode == "rate_limit":
                    window = self._windows[event["routing_key"]]
                    while window and now - window[0] >= float(rule.get("window", 60)):
                        window.popleft()
                    if len(window) >= int(rule.get("limit", 120)):
                        return {"mode": "status", "status": 429, "retry_after": rule.get("retry_after")}
                    continue
                if "count" in rule:
                    if rule["count"] <= 0:
                        continue
                    rule["count"] -= 1
                return rule
        return None

    def admitted(self, event: dict[str, Any]) -> None:
        """Count an applied event against its key's rate-limit window."""
        with self.lock:
            self._windows[event["routing_key"]].append(time.monotonic())

    def _open(self, routing_key: str, dedup_key: str) -> Incident | None:
        for incident in reversed(self.incidents):
            if incident.routing_key == routing_key and incident.dedup_key == dedup_key:
                return incident if incident.status != "resolved" else None
        return None

    def apply(self, event: dict[str, Any]) -> str:
        action = event["event_action"]
        key = event["routing_key"]
        dedup = event.get("dedup_key") or uuid.uuid4().hex
        payload = event.get("payload") or {}
        now = _now()
        with self.lock:
            self.events.append(
                {"received_at": now, "t": time.time(), **event, "routing_key": _mask(key), "dedup_key": dedup}
            )
            self.services.setdefault(key, None)
            incident = self._open(key, dedup)
            entry = {"at": now, "action": action, "summary": payload.get("summary")}
            if action == "trigger":
                if incident is None:
                    incident = Incident(
                        number=next(self._numbers),
                        routing_key=key,
                        dedup_key=dedup,
                        status="triggered",
                        summary=payload["summary"],
                        severity=payload["severity"],
                        source=payload["source"],
                        created_at=now,
                        updated_at=now,
                    )
                    self.incidents.append(incident)
                incident.log.append(entry)
                incident.updated_at = now
            elif incident is not None:
                incident.status = "acknowledged" if action == "acknowledge" else "resolved"
                incident.log.append(entry)
                incident.updated_at = now
        return dedup

    def max_rate(self, window: float) -> dict[str, int]:
        """The most events any routing key sent within one sliding ``window`` (seconds)."""
        with self.lock:
            by_key: dict[str, list[float]] = defaultdict(list)
            for moment, key in self.requests:
                by_key[key].append(moment)
        result = {}
        for key, times in by_key.items():
            times.sort()
            best, start = 0, 0
            for end, moment in enumerate(times):
                while moment - times[start] >= window:
                    start += 1
                best = max(best, end - start + 1)
            result[key] = best
        return result

    def set_status(self, incident_id: str, status: str) -> Incident | None:
        """A person acknowledging or resolving an incident at PagerDuty (REST ``PUT /incidents/{id}``)."""
        with self.lock:
            for incident in self.incidents:
                if incident.id == incident_id:
                    if incident.status != status and incident.status != "resolved":
                        incident.status = status
                        incident.updated_at = _now()
                        incident.log.append({"at": incident.updated_at, "action": status, "summary": "by hand"})
                    return incident
        return None

    def snapshot(self, routing_key: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [i.public() for i in self.incidents if routing_key in (None, i.routing_key)]


class _Handler(BaseHTTPRequestHandler):
    server: EmulatorServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without TCP_NODELAY, Nagle's algorithm and the
    # client's delayed ACK add ~40 ms to every keep-alive request.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(
        self, status: int, body: Any, content_type: str = "application/json", headers: dict[str, str] | None = None
    ) -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        with self.server.state.lock:
            self.server.state.answers[status] += 1
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        try:
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (a "slow" fault outlasting its timeout): as it would be at PagerDuty

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_POST(self) -> None:
        path = urlparse(self.path).path
        raw = self._body()
        state = self.server.state
        if path == "/_reset":
            state.reset()
            self._send(200, {"status": "reset"})
            return
        if path == "/_faults":
            try:
                rules = json.loads(raw or b"[]")
            except ValueError:
                rules = None
            if not isinstance(rules, list | dict):
                self._send(400, {"status": "invalid", "message": "a fault rule or a list of them"})
                return
            state.set_faults(rules if isinstance(rules, list) else [rules])
            self._send(200, {"status": "faults set", "faults": state.faults})
            return
        try:
            event = json.loads(raw)
        except ValueError:
            self._send(
                400, {"status": "invalid event", "message": "Event object is invalid", "errors": ["Malformed JSON"]}
            )
            return
        if path == "/v2/change/enqueue":
            errors = validate_change_event(event, len(raw))
            if errors:
                self._send(400, {"status": "invalid event", "message": "Event object is invalid", "errors": errors})
                return
            with state.lock:
                state.change_events.append({**event, "routing_key": _mask(event["routing_key"]), "received_at": _now()})
            self._send(202, {"status": "success", "message": "Change event processed"})
            return
        if path != "/v2/enqueue":
            self._send(404, {"status": "not found"})
            return
        errors = validate_event(event, len(raw))
        if errors:
            self._send(400, {"status": "invalid event", "message": "Event object is invalid", "errors": errors})
            return
        with state.lock:
            state.requests.append((time.time(), _mask(event["routing_key"])))
        fault = state.fault_for(event)
        mode = fault.get("mode") if fault else None
        if mode in ("status", "outage"):
            status = int(fault.get("status", 503)) if fault else 503
            headers = {"Retry-After": str(fault["retry_after"])} if fault and fault.get("retry_after") else None
            if status == 400:
                body = {
                    "status": "invalid event",
                    "message": "Event object is invalid",
                    "errors": list(fault.get("errors") or ["rejected by the emulator's fault injection"])
                    if fault
                    else [],
                }
            else:
                body = {"status": "error", "message": "Too many requests" if status == 429 else "Service unavailable"}
            self._send(status, body, headers=headers)
            return
        if mode == "drop":
            if fault and fault.get("apply", False):
                state.apply(event)
                state.admitted(event)
            self.close_connection = True
            self.connection.shutdown(2)
            return
        dedup = state.apply(event)
        state.admitted(event)
        if mode == "slow" and fault:
            time.sleep(float(fault.get("delay", 10)))
        self._send(202, {"status": "success", "message": "Event processed", "dedup_key": dedup})

    # -- the REST API v2 subset (see the module's docstring) -------------------------------------
    def _rest_error(self, status: int, message: str, code: int, errors: list[str] | None = None) -> None:
        self._send(status, {"error": {"message": message, "code": code, "errors": errors or []}})

    def _rest_authorized(self) -> bool:
        if self.headers.get("Authorization") == f"Token token={self.server.api_key}":
            return True
        self._rest_error(401, "Unauthorized", 2006, ["Authentication failed"])
        return False

    def _rest_page(self, name: str, items: list[dict[str, Any]], query: dict[str, list[str]]) -> None:
        try:
            limit = min(int(query.get("limit", ["25"])[0]), 100)
            offset = int(query.get("offset", ["0"])[0])
        except ValueError:
            self._rest_error(400, "Invalid Input Provided", 2001, ["limit and offset are whole numbers"])
            return
        if limit < 1 or offset < 0 or offset + limit > REST_MAX_RECORDS:
            self._rest_error(400, "Invalid Input Provided", 2001, [f"offset + limit may not exceed {REST_MAX_RECORDS}"])
            return
        page = items[offset : offset + limit]
        total = len(items) if query.get("total", ["false"])[0] == "true" else None
        more = offset + len(page) < len(items)
        self._send(200, {name: page, "limit": limit, "offset": offset, "more": more, "total": total})

    def _rest_get(self, path: str, query: dict[str, list[str]]) -> None:
        state = self.server.state
        base = self.server.url + REST_PREFIX
        if path == "/services":
            with state.lock:
                keys = list(state.services)
            wanted = "integrations" in query.get("include[]", [])
            self._rest_page("services", [rest_service(k, base, wanted) for k in keys], query)
            return
        if path == "/incidents":
            services = set(query.get("service_ids[]", []))
            statuses = set(query.get("statuses[]", []))
            key = query.get("incident_key", [None])[0]
            with state.lock:
                found = [
                    i.rest(base)
                    for i in state.incidents
                    if (not services or service_id(i.routing_key) in services)
                    and (not statuses or i.status in statuses)
                    and key in (None, i.dedup_key)
                ]
            self._rest_page("incidents", found, query)
            return
        if path.startswith("/incidents/") and path.endswith("/alerts"):
            wanted_id = path.removeprefix("/incidents/").removesuffix("/alerts")
            with state.lock:
                incidents = [i for i in state.incidents if i.id == wanted_id]
                alerts = [i.rest_alert(base) for i in incidents]
            if incidents:
                self._rest_page("alerts", alerts, query)
            else:
                self._rest_error(404, "Not Found", 2100)
            return
        if path.startswith("/incidents/"):
            with state.lock:
                match = [i.rest(base) for i in state.incidents if i.id == path.removeprefix("/incidents/")]
            if match:
                self._send(200, {"incident": match[0]})
            else:
                self._rest_error(404, "Not Found", 2100)
            return
        self._rest_error(404, "Not Found", 2100)

    def do_PUT(self) -> None:
        url = urlparse(self.path)
        raw = self._body()
        if not url.path.startswith(REST_PREFIX + "/"):
            self._send(404, {"status": "not found"})
            return
        if not self._rest_authorized():
            return
        path = url.path.removeprefix(REST_PREFIX)
        if not path.startswith("/incidents/"):
            self._rest_error(404, "Not Found", 2100)
            return
        if not self.headers.get("From"):
            self._rest_error(400, "Invalid Input Provided", 2001, ["A From header (a user's email) is required"])
            return
        try:
            incident = json.loads(raw or b"{}").get("incident") or {}
        except (ValueError, AttributeError):
            incident = {}
        status = incident.get("status") if isinstance(incident, dict) else None
        if status not in ("acknowledged", "resolved"):
            self._rest_error(400, "Invalid Status Provided", 1003)
            return
        changed = self.server.state.set_status(path.removeprefix("/incidents/"), status)
        if changed is None:
            self._rest_error(404, "Not Found", 2100)
            return
        self._send(200, {"incident": changed.rest(self.server.url + REST_PREFIX)})

    def do_DELETE(self) -> None:
        if urlparse(self.path).path == "/_faults":
            self.server.state.set_faults([])
            self._send(200, {"status": "faults cleared"})
        else:
            self._send(404, {"status": "not found"})

    def do_GET(self) -> None:
        url = urlparse(self.path)
        query = parse_qs(url.query)
        state = self.server.state
        if url.path.startswith(REST_PREFIX + "/"):
            if self._rest_authorized():
                self._rest_get(url.path.removeprefix(REST_PREFIX), query)
            return
        if url.path == "/incidents":
            self._send(200, state.snapshot(query.get("routing_key", [None])[0]))
        elif url.path in ("/events", "/change_events"):
            with state.lock:  # copied under the lock, sent after it: _send takes it too
                events = list(state.events if url.path == "/events" else state.change_events)
            self._send(200, events)
        elif url.path == "/":
            self._send(200, render_page(state.snapshot()), "text/html; charset=utf-8")
        else:
            self._send(404, {"status": "not found"})


def render_page(incidents: list[dict[str, Any]]) -> str:
    rows = "".join(
        f"<tr><td>#{i['number']}</td><td class='{i['status']}'>{i['status']}</td>"
        f"<td>{html.escape(i['severity'])}</td><td>{html.escape(i['summary'])}</td>"
        f"<td><code>{html.escape(i['dedup_key'])}</code></td><td>{i['routing_key']}</td>"
        f"<td>{len(i['log'])}</td><td>{i['updated_at']}</td></tr>"
        for i in reversed(incidents)
    )
    return (
        "<!doctype html><meta charset=utf-8><meta http-equiv=refresh content=3>"
        "<title>pdrelay - PagerDuty emulator</title>"
        "<style>body{font-family:sans-serif}td,th{padding:4px 8px;border-bottom:1px solid #ddd}"
        ".triggered{color:#c00}.acknowledged{color:#c80}.resolved{color:#080}</style>"
        "<h1>PagerDuty Events API emulator</h1><table><tr><th>incident</th><th>status</th>"
        "<th>severity</th><th>summary</th><th>dedup key</th><th>routing key</th><th>events</th>"
        f"<th>updated</th></tr>{rows}</table>"
    )


class EmulatorServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        api_key: str = EMULATOR_API_KEY,
        routing_keys: tuple[str, ...] = (),
    ) -> None:
        super().__init__((host, port), _Handler)
        self.state = EmulatorState(routing_keys)
        self.api_key = api_key  # what the REST API accepts in `Authorization: Token token=...`
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.server_name_str}:{self.server_address[1]}"

    @property
    def rest_url(self) -> str:
        """The REST API v2 subset's base URL (PagerDuty's: https://api.pagerduty.com)."""
        return self.url + REST_PREFIX

    @property
    def server_name_str(self) -> str:
        host = self.server_address[0]
        return host.decode() if isinstance(host, bytes) else str(host)

    def start(self) -> EmulatorServer:
        self._thread = threading.Thread(target=self.serve_forever, name="pd-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
