"""Pingdom (SolarWinds) state change webhooks, for uptime and transaction checks.

User documentation: docs/senders/pingdom.md.

``check_params`` can carry the checked site's request headers and POST data: ``_safe_params``
leaves them out of ``custom_details``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pdrelay.errors import BadRequest
from pdrelay.formats import ParseContext, Parsed
from pdrelay.formats._common import compact, links, obj, safe_url, summary, text
from pdrelay.models import Action, Alert, Severity
from pdrelay.timeutil import iso, parse_time

NAME = "pingdom"
DETECT_ORDER = 80
REPLAY_BY_BODY = True  # every webhook carries its state change time
CLIENT = "Pingdom"

TRIGGER_STATES = ("down", "failing", "failure", "failed")
RESOLVE_STATES = ("up", "success")
IMPORTANCE: dict[str, Severity] = {"high": "critical", "low": "warning"}
SECRET_PARAM_WORDS = ("header", "auth", "post", "pass", "user", "secret", "token", "key", "cookie")
UPTIME_REPORT = "https://my.pingdom.com/app/reports/uptime#check={}"


def detect(doc: Any, headers: Mapping[str, str]) -> bool:
    return (
        isinstance(doc, dict)
        and "check_id" in doc
        and "current_state" in doc
        and ("check_name" in doc or "check_type" in doc or "previous_state" in doc)
    )


def _time(doc: dict[str, Any]) -> Any:
    stamp = doc.get("state_changed_timestamp")
    if isinstance(stamp, int | float) and not isinstance(stamp, bool) and stamp > 0:
        return parse_time(stamp)
    return parse_time(text(doc.get("state_changed_utc_time")))  # naive: read as UTC, as Pingdom means


def _probe(value: Any) -> dict[str, Any]:
    probe = obj(value)
    return compact(
        {"location": text(probe.get("location")), "ip": text(probe.get("ip")), "ipv6": text(probe.get("ipv6"))}
    )


def _safe_params(params: dict[str, Any]) -> dict[str, Any]:
    """The check parameters without request headers and bodies, which may carry the checked site's
    credentials (a custom ``Authorization`` header, POST data)."""
    return {
        k: safe_url(v) if k.lower() in ("url", "full_url") else v
        for k, v in params.items()
        if not any(word in k.lower() for word in SECRET_PARAM_WORDS) or isinstance(v, bool)
    }


def _tags(value: Any) -> list[str]:
    """Tags as names: the webhook sends strings; the API's objects ({name, type}) are read too."""
    found = []
    for item in value if isinstance(value, list) else []:
        name = text(item.get("name")) if isinstance(item, dict) else text(item)
        if name:
            found.append(name)
    return found


def parse(doc: Any, context: ParseContext) -> Parsed:
    if not isinstance(doc, dict):
        raise BadRequest("a Pingdom webhook is a JSON object", ["body: expected an object"])
    check_id = text(doc.get("check_id"))
    name = text(doc.get("check_name"))
    if not check_id and not name:
        raise BadRequest("invalid Pingdom webhook", ["check_id: missing"])
    state = text(doc.get("current_state")) or ""
    action: Action
    if state.lower() in TRIGGER_STATES:
        action = "trigger"
    elif state.lower() in RESOLVE_STATES:
        action = "resolve"
    elif state:
        return Parsed(
            notes=[
                f"Pingdom check {name or check_id!r} is {state}: not paged (only DOWN/FAILING page, UP/SUCCESS resolve)"
            ]
        )
    else:
        raise BadRequest("invalid Pingdom webhook", ["current_state: missing"])

    params = obj(doc.get("check_params"))
    check_type = text(doc.get("check_type"))
    hostname = text(params.get("hostname"))
    full_url = safe_url(params.get("full_url"))
    tags = _tags(doc.get("tags"))
    changed = _time(doc)
    occurred = changed or context.received_at
    title = name or f"Pingdom check {check_id}"
    report = (
        UPTIME_REPORT.format(check_id)
        if check_id and check_id.isdigit() and ((check_type or "").upper() != "TRANSACTION")
        else None
    )
    reason = text(doc.get("description")) or text(doc.get("long_description"))
    details = compact(
        {
            "check_id": check_id,
            "check_name": name,
            "check_type": check_type,
            "previous_state": text(doc.get("previous_state")),
            "current_state": state,
            "importance_level": text(doc.get("importance_level")),
            "description": text(doc.get("description")),
            "long_description": text(doc.get("long_description")),
            "custom_message": text(doc.get("custom_message")),
            "tags": tags,
            "check_params": _safe_params(params),
            "first_probe": _probe(doc.get("first_probe")),
            "second_probe": _probe(doc.get("second_probe")),
            "state_changed_at": iso(changed) if changed else None,
            "version": text(doc.get("version")),
        }
    )
    return Parsed(
        alerts=[
            Alert(
                format=NAME,
                identity=check_id or f"name:{name}",
                action=action,
                occurred_at=occurred,
                summary=summary(f"{title} is {state}: {reason}" if reason else None, fallback=f"{title} is {state}"),
                source=full_url or hostname or title,
                severity=IMPORTANCE.get((text(doc.get("importance_level")) or "").lower(), "error"),
                timestamp=occurred,
                component=hostname,
                group=tags[0] if tags else None,
                class_=check_type,
                custom_details=details,
                links=links((report, "Check in Pingdom"), (full_url, "Checked URL")),
                client=CLIENT,
                client_url=report,
            )
        ]
    )
