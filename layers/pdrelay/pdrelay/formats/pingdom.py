"""Pingdom (SolarWinds) state change webhooks, for uptime checks (HTTP, HTTP_CUSTOM, TCP, PING, DNS,
UDP, SMTP, POP3, IMAP) and transaction checks (``check_type: TRANSACTION``). Pingdom posts one
JSON object per state change, only on a change.

- Firing vs recovered: ``current_state``: ``DOWN`` (uptime) and ``FAILING`` (transaction; also
  ``FAILURE``/``FAILED``) trigger; ``UP`` and ``SUCCESS`` resolve. Any other state (``UNKNOWN``,
  ``PAUSED``...) is noted in the answer and pages no one.
- Identity: ``check_id``, the same for a check's DOWN and UP (without one: the check's name).
- Severity: ``importance_level``: ``HIGH`` critical, ``LOW`` warning; ``error`` when absent or
  unknown. (Pingdom's "importance" is the check's alerting importance: a LOW check is one its owner
  marked as not urgent.)
- Summary: "<check name> is DOWN: <description>" (the short error, e.g. "Timeout (> 30s)"), else
  "... : <long description>". Source: ``check_params.full_url``, else ``hostname``, else the check
  name. Component: ``check_params.hostname``; group: the first tag; class: ``check_type``.
- Links: the uptime report of the check in Pingdom (``my.pingdom.com/app/reports/uptime#check=<id>``,
  also ``client_url``; transaction checks have no such page and get none) and the checked URL.
- custom_details: check id, name and type, previous and current state, importance, descriptions,
  ``custom_message``, tags, the check parameters (without request headers or POST data, which can
  hold the checked site's credentials), the two probes that confirmed the change, the state
  change time, the payload version.
- Test notifications: Pingdom documents none for webhooks (the sample it shows in its docs is an
  ordinary DOWN of check 12345); nothing is recognised as a test.
- Ordering time: ``state_changed_timestamp`` (epoch seconds), else ``state_changed_utc_time`` (UTC
  without a zone), else pdrelay's receipt.
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
