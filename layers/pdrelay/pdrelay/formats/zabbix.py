"""Zabbix (6.0 and later), through pdrelay's own webhook media type.

User documentation: docs/senders/zabbix.md.

The body is built by ``integrations/zabbix/pdrelay.js`` (inside ``pdrelay_media_type.yaml``):
``{"zabbix": 1, "event": {...}, "trigger": {...}, "host": {...}, "zabbix_url": ...}``, every value
a Zabbix macro as the server resolved it, times already turned into UTC ``started_at``,
``recovered_at`` and ``updated_at``. A change to the fields here is a change to that script (and
to the media type users import).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pdrelay.errors import BadRequest
from pdrelay.formats import ParseContext, Parsed
from pdrelay.formats._common import compact, http_link, links, summary, text
from pdrelay.models import Action, Alert
from pdrelay.timeutil import iso, parse_time

NAME = "zabbix"
DETECT_ORDER = 50
REPLAY_BY_BODY = True  # every notification carries its event's own time (problem, recovery or update)

NSEVERITY = {5: "critical", 4: "error", 3: "warning", 2: "warning", 1: "info", 0: "info"}
SEVERITY_NAMES = {
    "disaster": "critical",
    "high": "error",
    "average": "warning",
    "warning": "warning",
    "information": "info",
    "not classified": "info",
}
_MACRO = re.compile(r"^\{\$?[A-Z0-9_.#]+(:.*)?\}$")


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")

    identity: Literal["event", "trigger"] = Field(
        "event", description="One incident per problem event, or per trigger and host (multiple problem generation)."
    )


def detect(doc: Any, headers: Mapping[str, str]) -> bool:
    return isinstance(doc, dict) and doc.get("zabbix") in (1, "1") and isinstance(doc.get("event"), dict)


def unresolved(value: str | None) -> bool:
    """Whether ``value`` is a macro Zabbix left as written (or could not resolve)."""
    return value is not None and (value == "*UNKNOWN*" or _MACRO.match(value) is not None)


def _get(mapping: Any, key: str) -> str | None:
    """The resolved text at ``mapping[key]``: None for missing, empty, junk or unresolved macros."""
    value = text(mapping.get(key)) if isinstance(mapping, dict) else None
    return None if unresolved(value) else value


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    found = text(value)
    return int(found) if found and found.isdigit() and len(found) < 10 else None


def severity(event: Mapping[str, Any]) -> str:
    number = _int(event.get("nseverity"))
    if number in NSEVERITY:
        return NSEVERITY[number]
    return SEVERITY_NAMES.get((_get(event, "severity") or "").lower(), "error")


def _tags(raw: Any) -> dict[str, str]:
    """{EVENT.TAGSJSON} ([{"tag": .., "value": ..}]) as a mapping; a repeated tag's values joined."""
    found: dict[str, str] = {}
    if isinstance(raw, dict):
        raw = [{"tag": k, "value": v} for k, v in raw.items()]
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, dict) or not text(item.get("tag")):
            continue
        tag, value = str(text(item.get("tag"))), text(item.get("value")) or ""
        found[tag] = f"{found[tag]}, {value}" if tag in found and value else found.get(tag) or value
    return found


def _after(moment: datetime | None, start: datetime | None) -> datetime | None:
    """``moment`` unless it is missing or earlier than the problem's start."""
    return moment if moment is not None and (start is None or moment >= start) else None


def parse(doc: Any, context: ParseContext) -> Parsed:
    if not isinstance(doc, dict) or not isinstance(doc.get("event"), dict):
        raise BadRequest("invalid Zabbix payload", ["event: expected an object (send it with pdrelay's media type)"])
    event: dict[str, Any] = doc["event"]
    options = context.options if isinstance(context.options, Options) else Options()
    raw_id = text(event.get("id"))
    test = raw_id is not None and _MACRO.match(raw_id) is not None  # the Test dialog: "{EVENT.ID}" as written
    event_id = _get(event, "id")
    source = _int(event.get("source"))
    if source in (1, 2) and not test:
        kind = "discovery" if source == 1 else "autoregistration"
        return Parsed(notes=[f"Zabbix {kind} event {event_id or '?'}: not paged (it has no problem to resolve)"])

    started = parse_time(event.get("started_at"))
    update_action = _get(event, "update_action")
    action: Action
    status: str
    if test:
        action, status, occurred = "trigger", "TEST", context.received_at
    elif _int(event.get("update_status")) == 1:
        words = set(re.findall(r"[a-z]+", (update_action or "").lower()))
        acked = "acknowledged" in words or (update_action is None and (_get(event, "ack") or "").lower() == "yes")
        if "closed" in words:
            action, status = "resolve", "CLOSED"
        elif acked:
            action, status = "acknowledge", "ACKNOWLEDGED"
        else:
            return Parsed(
                notes=[
                    f"Zabbix update of event {event_id or '?'} ({update_action or 'no action named'}): "
                    "nothing sent; only acknowledgements and manual closes reach PagerDuty"
                ]
            )
        occurred = _after(parse_time(event.get("updated_at")), started) or context.received_at
    else:
        value = _int(event.get("value"))
        if value == 1:
            action, status, occurred = "trigger", "PROBLEM", started or context.received_at
        elif value == 0:
            action, status = "resolve", "RESOLVED"
            occurred = _after(parse_time(event.get("recovered_at")), started) or context.received_at
        else:
            raise BadRequest(
                "invalid Zabbix payload",
                [f"event.value: expected 1 (problem) or 0 (resolved), got {text(event.get('value'))!r}"],
            )

    trigger = doc.get("trigger") if isinstance(doc.get("trigger"), dict) else {}
    host = doc.get("host") if isinstance(doc.get("host"), dict) else {}
    trigger_id = _get(trigger, "id")
    host_name = _get(host, "name")
    if test:
        identity = "test"
    elif options.identity == "trigger" and trigger_id:
        identity = f"trigger:{trigger_id}" + (f":{host_name}" if host_name else "")
    elif event_id:
        identity = f"event:{event_id}"
    else:
        raise BadRequest("invalid Zabbix payload", ["event.id: the problem event's id ({EVENT.ID}) is needed"])

    tags = _tags(event.get("tags"))
    zabbix_url = _get(doc, "zabbix_url")
    event_link = None
    if zabbix_url and trigger_id and event_id:
        event_link = f"{zabbix_url.rstrip('/')}/tr_events.php?triggerid={trigger_id}&eventid={event_id}"
    recovered = parse_time(event.get("recovered_at"))
    details = compact(
        {
            "status": status,
            "event_id": event_id,
            "severity": _get(event, "severity"),
            "operational_data": _get(event, "opdata"),
            "tags": tags,
            "trigger_id": trigger_id,
            "trigger_description": _get(trigger, "description"),
            "host": host_name,
            "host_ip": _get(host, "ip"),
            "host_groups": _get(host, "groups"),
            "problem_started": iso(started)
            if started
            else " ".join(filter(None, (_get(event, "date"), _get(event, "time")))),
            "recovery_event_id": _get(event, "recovery_id") if status == "RESOLVED" else None,
            "recovered_at": iso(recovered) if recovered and status == "RESOLVED" else None,
            "update": compact(
                {"action": update_action, "user": _get(event, "update_user"), "message": _get(event, "update_message")}
            )
            if status in ("ACKNOWLEDGED", "CLOSED")
            else None,
            "event_link": event_link,
        }
    )
    fallback = (
        "Zabbix test notification from the pdrelay media type"
        if test
        else f"Zabbix problem {event_id or trigger_id or ''}".strip()
    )
    return Parsed(
        alerts=[
            Alert(
                format=NAME,
                identity=identity,
                action=action,
                occurred_at=occurred,
                summary=summary(_get(event, "name"), _get(trigger, "description"), fallback=fallback),
                source=host_name or _get(host, "ip") or "Zabbix",
                severity=severity(event),
                timestamp=occurred,
                component=tags.get("component") or tags.get("service") or tags.get("application") or None,
                group=_get(host, "groups"),
                class_=tags.get("class") or None,
                custom_details=details,
                links=links(
                    (event_link, "Zabbix event"),
                    (_get(trigger, "url"), "Trigger URL"),
                    (None if event_link else zabbix_url, "Zabbix"),
                ),
                client="Zabbix",
                client_url=zabbix_url if http_link(zabbix_url, "Zabbix") else None,
                test=test,
            )
        ]
    )
