"""Datadog monitors, through the Webhooks integration with pdrelay's payload template.

User documentation: docs/senders/datadog.md (the template whose field names this module reads).

Datadog's webhook body is whatever the webhook's *Payload* field says, with ``$VARIABLES`` filled
in: fields are read by the template's names, and any of them still holding a ``$VARIABLE`` is
refused rather than guessed at.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from pdrelay.errors import BadRequest
from pdrelay.formats import ParseContext, Parsed
from pdrelay.formats._common import compact, links, summary, text
from pdrelay.models import SEVERITIES, Action, Alert, Image
from pdrelay.timeutil import parse_time

NAME = "datadog"
DETECT_ORDER = 40
REPLAY_BY_BODY = True  # every notification carries its own event id and date
CLIENT = "Datadog"

# The fields of the template that pdrelay reads (free text such as the message is not checked).
CHECKED_FIELDS = (
    "id",
    "alert_id",
    "alert_transition",
    "alert_type",
    "alert_priority",
    "alert_scope",
    "aggreg_key",
    "alert_cycle_key",
    "alert_title",
    "event_title",
    "event_type",
    "hostname",
    "link",
    "snapshot",
    "date",
    "last_updated",
    "org_id",
    "tags",
)
_VARIABLE = re.compile(
    r"\$(?:ALERT_[A-Z_]*[A-Z]|AGGREG_KEY|EVENT_[A-Z_]*[A-Z]|DATE|EMAIL|HOSTNAME|ID|LAST_UPDATED|LINK|LOGS_SAMPLE|"
    r"METRIC_NAMESPACE|ORG_ID|ORG_NAME|PRIORITY|SNAPSHOT|TAGS|TEXT_ONLY_MSG|USER|USERNAME)\b"
)

TRIGGERS = {"triggered", "re-triggered", "retriggered", "warn", "re-warn", "renotify", "alert", "re-alert"}
WARNINGS = {"warn", "re-warn"}
NO_DATA = {"no data", "re-no data", "nodata", "no_data"}
PRIORITIES = {"p1": "critical", "p2": "error", "p3": "warning", "p4": "info", "p5": "info"}
ALERT_TYPES = {"error": "error", "warning": "warning", "info": "info", "success": "info"}


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")

    no_data: Literal["ignore", "trigger"] = Field(
        "ignore", description="A monitor with no data: noted without paging (ignore), or paged at warning (trigger)."
    )


def detect(doc: Any, headers: Mapping[str, str]) -> bool:
    return isinstance(doc, dict) and "alert_transition" in doc and ("alert_id" in doc or "aggreg_key" in doc)


def _value(doc: Mapping[str, Any], key: str) -> str | None:
    value = doc.get(key)
    if isinstance(value, bool):
        return None
    return text(value)


def _unsubstituted(doc: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """The fields that still hold ``$VARIABLES``, and those variables' names."""
    problems: list[str] = []
    names: dict[str, None] = {}
    for key in CHECKED_FIELDS:
        value = doc.get(key)
        if isinstance(value, str) and (found := _VARIABLE.findall(value)):
            problems.append(f"{key}: still {', '.join(dict.fromkeys(found))}")
            names.update(dict.fromkeys(found))
    return problems, list(names)


def _time(value: object) -> datetime | None:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    return parse_time(value)


def _tags(value: str | None) -> list[str]:
    return [tag for tag in (part.strip() for part in (value or "").split(",")) if tag]


def _tag(tags: list[str], *keys: str) -> str | None:
    for key in keys:
        for tag in tags:
            name, sep, val = tag.partition(":")
            if sep and name == key and val.strip():
                return val.strip()
    return None


def _less_severe(a: str, b: str) -> str:
    return max(a, b, key=SEVERITIES.index)


def _monitor_url(link: str | None, monitor: str | None) -> str | None:
    if not (link and monitor and monitor.isdigit()):
        return None
    try:
        parts = urlsplit(link)
    except ValueError:
        return None
    if parts.scheme != "https" or not parts.hostname:
        return None
    return f"https://{parts.netloc}/monitors/{monitor}"


def parse(doc: Any, context: ParseContext) -> Parsed:
    if not isinstance(doc, dict):
        raise BadRequest("a Datadog webhook payload is a JSON object", ["body: expected an object"])
    unfilled, names = _unsubstituted(doc)
    if unfilled:
        raise BadRequest(
            f"the webhook template was not substituted: {' '.join(names)}; Datadog fills variables "
            "only in the webhook's payload field",
            unfilled,
        )
    if "alert_transition" not in doc:
        raise BadRequest(
            "not pdrelay's Datadog payload template",
            ["alert_transition: missing; use the Payload template in docs/senders/datadog.md"],
        )
    options = context.options if isinstance(context.options, Options) else Options()

    transition = _value(doc, "alert_transition") or ""
    kind = transition.lower()
    alert_type = (_value(doc, "alert_type") or "").lower()
    priority = (_value(doc, "alert_priority") or "").lower()
    title = _value(doc, "alert_title") or _value(doc, "event_title")
    test = "[test]" in (title or "").lower() or kind == "test"

    monitor = _value(doc, "alert_id")
    scope_tags = sorted(set(_tags(_value(doc, "alert_scope"))) - {"*"})
    scope = ",".join(scope_tags)
    aggreg = _value(doc, "aggreg_key")
    if monitor and scope:
        identity = f"monitor:{monitor}:{scope}"
    elif aggreg:
        identity = f"aggreg:{aggreg}"
    elif monitor:
        identity = f"monitor:{monitor}"
    elif test:
        identity = "test"
    else:
        raise BadRequest(
            "invalid Datadog payload",
            [
                "alert_id: the monitor id is needed to tell alerts apart ($ALERT_ID)",
                "aggreg_key: or the aggregation key ($AGGREG_KEY)",
            ],
        )
    if test and identity != "test":
        identity = "test:" + identity
    name = title or f"monitor {monitor or aggreg or '?'}"

    action: Action
    no_data = kind in NO_DATA
    if kind in TRIGGERS or no_data:
        action = "trigger"
    elif "recovered" in kind or kind in ("resolved", "ok"):
        action = "resolve"
    elif alert_type in ("error", "warning"):
        action = "trigger"
    elif alert_type == "success":
        action = "resolve"
    else:
        return Parsed(
            notes=[
                f"Datadog {name!r}: transition {transition or 'none'!r} ({alert_type or 'no type'}): nothing to page"
            ]
        )
    if no_data and options.no_data == "ignore":
        return Parsed(notes=[f"Datadog reports no data for {name!r}: not paged (datadog option no_data: ignore)"])

    if no_data:
        severity = "warning"
    else:
        severity = PRIORITIES.get(priority) or ALERT_TYPES.get(alert_type) or "error"
        if kind in WARNINGS or alert_type == "warning":
            severity = _less_severe(severity, "warning")

    tags = _tags(_value(doc, "tags"))
    occurred_at = _time(doc.get("date")) or _time(doc.get("last_updated")) or context.received_at
    link = _value(doc, "link")
    monitor_url = _monitor_url(link, monitor)
    snapshot = _value(doc, "snapshot")
    images = (
        [Image(src=snapshot, href=link if link and link.startswith("https://") else None, alt=title)]
        if snapshot and snapshot.lower().startswith("https://")
        else []
    )
    details = compact(
        {
            "transition": transition,
            "alert_type": alert_type,
            "priority": _value(doc, "alert_priority"),
            "monitor_id": monitor,
            "scope": scope,
            "status": _value(doc, "alert_status"),
            "metric": _value(doc, "alert_metric"),
            "query": _value(doc, "alert_query"),
            "event_type": _value(doc, "event_type"),
            "message": _value(doc, "event_msg"),
            "tags": tags,
            "event_id": _value(doc, "id"),
            "aggreg_key": aggreg,
            "alert_cycle_key": _value(doc, "alert_cycle_key"),
            "hostname": _value(doc, "hostname"),
            "org": _value(doc, "org_name") or _value(doc, "org_id"),
            "monitor_url": monitor_url,
        }
    )
    fallback = f"Datadog monitor {monitor} {scope}".strip() if monitor else f"Datadog alert {identity}"
    return Parsed(
        alerts=[
            Alert(
                format=NAME,
                identity=identity,
                action=action,
                occurred_at=occurred_at,
                summary=summary(title, _value(doc, "alert_status"), fallback=fallback),
                source=_value(doc, "hostname")
                or _tag(scope_tags, "host")
                or scope
                or _tag(tags, "host", "service")
                or "datadog",
                severity=severity,
                timestamp=occurred_at,
                component=_tag(scope_tags, "service") or _tag(tags, "service"),
                group=_tag(scope_tags, "env") or _tag(tags, "env"),
                class_=_value(doc, "alert_metric") or _value(doc, "event_type"),
                custom_details=details,
                links=links((monitor_url, "Datadog monitor"), (link, "Datadog event")),
                images=images,
                client=CLIENT,
                client_url=monitor_url or link,
                test=test,
            )
        ]
    )
