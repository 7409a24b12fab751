"""Uptime Kuma's *Webhook* notification, body type ``application/json``.

User documentation: docs/senders/uptime_kuma.md.

The body is built in Uptime Kuma's ``server/notification-providers/webhook.js``: the heartbeat is
``Heartbeat.toJSON()`` plus ``timezone``, ``timezoneOffset`` and ``localDateTime``; the monitor is
``Monitor.toJSON()`` without its sensitive fields. ``heartbeat.time`` is written with
``dayjs.utc()`` as "YYYY-MM-DD HH:mm:ss.SSS" without a zone; ``localDateTime`` is derived from it
in the server's ``timezone``, which is what the consistency check compares. The other body types
(``form-data``: the JSON in a multipart field; a custom template) are not read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pdrelay.errors import BadRequest
from pdrelay.formats import ParseContext, Parsed
from pdrelay.formats._common import SEVERITY_WORDS, compact, links, obj, safe_url, summary, text
from pdrelay.models import Alert, Severity
from pdrelay.timeutil import iso, parse_time

NAME = "uptime_kuma"
DETECT_ORDER = 85
REPLAY_BY_BODY = True  # every heartbeat carries its own time (a test message repeated within the window is one)
CLIENT = "Uptime Kuma"

DOWN, UP, PENDING, MAINTENANCE = 0, 1, 2, 3
STATUS_NAMES = {DOWN: "DOWN", UP: "UP", PENDING: "PENDING", MAINTENANCE: "MAINTENANCE"}
TEST_SUFFIX = " testing"
CERTIFICATE = re.compile(r"^\[(?P<name>[^\]]*)\]\[(?P<url>[^\]]*)\]\s")  # then "certificate ... expire"
OFFSET = re.compile(r"^([+-])(\d{2}):?(\d{2})$")
CLOCK_TOLERANCE = timedelta(minutes=1)


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")

    severity: Severity = Field("error", description="Severity of monitors without a 'severity' tag.")
    base_url: str | None = Field(None, description="Uptime Kuma's address, for links to the monitor's page.")
    certificate_expiry: Literal["ignore", "trigger"] = Field(
        "ignore", description="Certificate expiry warnings: noted only, or paged at warning."
    )

    @field_validator("base_url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is not None and not value.lower().startswith(("https://", "http://")):
            raise ValueError("must be an http(s):// URL, e.g. https://status.example.com")
        return value.rstrip("/") if value else value


def detect(doc: Any, headers: Mapping[str, str]) -> bool:
    if not isinstance(doc, dict) or "msg" not in doc or "heartbeat" not in doc or "monitor" not in doc:
        return False
    heartbeat, monitor = doc.get("heartbeat"), doc.get("monitor")
    return (heartbeat is None or (isinstance(heartbeat, dict) and "status" in heartbeat)) and (
        monitor is None or isinstance(monitor, dict)
    )


def _status(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _offset(value: Any) -> timedelta | None:
    match = OFFSET.match(text(value) or "")
    if not match:
        return None
    sign = -1 if match.group(1) == "-" else 1
    return sign * timedelta(hours=int(match.group(2)), minutes=int(match.group(3)))


def heartbeat_time(heartbeat: Mapping[str, Any]) -> datetime | None:
    """``time`` read as UTC, when ``localDateTime`` and ``timezoneOffset`` (if sent) agree with it."""
    moment = parse_time(text(heartbeat.get("time")))
    if moment is None:
        return None
    local, offset = parse_time(text(heartbeat.get("localDateTime"))), _offset(heartbeat.get("timezoneOffset"))
    if local is not None and offset is not None and abs((local - offset) - moment) > CLOCK_TOLERANCE:
        return None
    return moment


def _tags(value: Any) -> dict[str, str]:
    found: dict[str, str] = {}
    for item in value if isinstance(value, list) else []:
        if isinstance(item, dict) and text(item.get("name")):
            found[str(text(item.get("name")))] = text(item.get("value")) or ""
    return found


def _address(monitor: Mapping[str, Any]) -> str | None:
    url = safe_url(monitor.get("url"))
    if url and url.lower() not in ("https://", "http://"):
        return url
    host = text(monitor.get("hostname"))
    port = monitor.get("port")
    if host and isinstance(port, int) and not isinstance(port, bool) and port > 0:
        return f"{host}:{port}"
    return host


def _without_heartbeat(msg: str | None, options: Options, ctx: ParseContext) -> Parsed:
    """A test, a certificate expiry warning, or another message about no heartbeat."""
    if msg and msg.lower().endswith(TEST_SUFFIX):
        return Parsed(
            alerts=[
                Alert(
                    format=NAME,
                    identity="test",
                    action="trigger",
                    occurred_at=ctx.received_at,
                    summary=summary(f"Uptime Kuma: {msg}", fallback="Uptime Kuma test notification"),
                    source="Uptime Kuma",
                    severity=options.severity,
                    timestamp=ctx.received_at,
                    custom_details={"msg": msg},
                    client=CLIENT,
                    test=True,
                )
            ]
        )
    lowered = (msg or "")[:4096].lower()
    certificate = CERTIFICATE.match(msg or "") if "certificate" in lowered and "expire" in lowered else None
    if certificate and options.certificate_expiry == "trigger":
        name, url = certificate.group("name"), safe_url(certificate.group("url")) or ""
        return Parsed(
            alerts=[
                Alert(
                    format=NAME,
                    identity=f"certificate/{name}/{url}",
                    action="trigger",
                    occurred_at=ctx.received_at,
                    summary=summary(msg, fallback=f"{name}: certificate expires soon"),
                    source=url or name or "Uptime Kuma",
                    severity="warning",
                    timestamp=ctx.received_at,
                    class_="certificate expiry",
                    custom_details=compact({"msg": msg, "monitor": name, "url": url}),
                    links=links((url, "Checked URL")),
                    client=CLIENT,
                )
            ]
        )
    if certificate:
        return Parsed(
            notes=["Uptime Kuma certificate expiry warning: not paged (route option certificate_expiry: ignore)"]
        )
    if not msg:
        raise BadRequest("invalid Uptime Kuma notification", ["heartbeat: missing, and no msg"])
    return Parsed(notes=["Uptime Kuma message without a heartbeat: not paged"])


def parse(doc: Any, context: ParseContext) -> Parsed:
    options = context.options if isinstance(context.options, Options) else Options()
    if not isinstance(doc, dict):
        raise BadRequest(
            "an Uptime Kuma notification is a JSON object",
            ["body: expected an object; choose the webhook's 'application/json' body type"],
        )
    msg = text(doc.get("msg"))
    heartbeat, monitor = obj(doc.get("heartbeat")), obj(doc.get("monitor"))
    if not heartbeat:
        return _without_heartbeat(msg, options, context)
    status = _status(heartbeat.get("status"))
    monitor_id = text(monitor.get("id")) or text(heartbeat.get("monitorID"))
    name = text(monitor.get("name")) or (f"monitor {monitor_id}" if monitor_id else "Uptime Kuma monitor")
    if status in (PENDING, MAINTENANCE):
        return Parsed(notes=[f"Uptime Kuma monitor {name!r} is {STATUS_NAMES[status]}: not paged"])
    if status not in (DOWN, UP):
        raise BadRequest(
            "unknown Uptime Kuma heartbeat status",
            [f"heartbeat.status: {heartbeat.get('status')!r}, expected 0 (DOWN) to 3 (MAINTENANCE)"],
        )
    if not monitor_id:
        raise BadRequest("invalid Uptime Kuma notification", ["monitor.id: missing (and heartbeat.monitorID)"])

    state = STATUS_NAMES[status]
    beat_time = heartbeat_time(heartbeat)
    occurred = beat_time or context.received_at
    tags = _tags(monitor.get("tags"))
    address = _address(monitor)
    path = text(monitor.get("pathName"))
    segments = monitor.get("path")
    parents = [text(p) for p in segments if text(p)] if isinstance(segments, list) else []
    group = " / ".join(str(p) for p in parents[:-1]) or (
        path.rsplit(" / ", 1)[0].strip() if path and " / " in path else None
    )
    kind = text(monitor.get("type"))
    reason = text(heartbeat.get("msg"))
    reason = None if reason == "N/A" else reason  # Uptime Kuma's filler for an empty message
    page = f"{options.base_url}/dashboard/{monitor_id}" if options.base_url and monitor_id.isdigit() else None
    tag_severity = (tags.get("severity") or "").strip().lower()
    details = compact(
        {
            "monitor_id": monitor_id,
            "monitor": name,
            "description": text(monitor.get("description")),
            "type": kind,
            "url": address,
            "path": path,
            "tags": tags,
            "interval": monitor.get("interval"),
            "max_retries": monitor.get("maxretries"),
            "status": state,
            "heartbeat_msg": reason,
            "ping_ms": heartbeat.get("ping") if isinstance(heartbeat.get("ping"), int | float) else None,
            "duration_s": heartbeat.get("duration") if isinstance(heartbeat.get("duration"), int | float) else None,
            "retries": heartbeat.get("retries"),
            "down_count": heartbeat.get("downCount"),
            "important": heartbeat.get("important") if isinstance(heartbeat.get("important"), bool) else None,
            "time_utc": iso(beat_time) if beat_time else None,
            "local_time": text(heartbeat.get("localDateTime")),
            "timezone": text(heartbeat.get("timezone")),
            "msg": msg,
        }
    )
    return Parsed(
        alerts=[
            Alert(
                format=NAME,
                identity=monitor_id,
                action="trigger" if status == DOWN else "resolve",
                occurred_at=occurred,
                summary=summary(f"{name} is {state}: {reason}" if reason else None, msg, fallback=f"{name} is {state}"),
                source=address or name,
                severity=cast(Severity, SEVERITY_WORDS.get(tag_severity, options.severity)),
                timestamp=occurred,
                component=kind,
                group=group,
                class_=kind,
                custom_details=details,
                links=links((page, "Monitor in Uptime Kuma"), (address, "Checked URL")),
                client=CLIENT,
                client_url=page,
            )
        ]
    )
