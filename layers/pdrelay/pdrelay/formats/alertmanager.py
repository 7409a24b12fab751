"""Prometheus Alertmanager webhook (payload version 4).

User documentation: docs/senders/alertmanager.md.

Each alert of the group is parsed on its own (``_alert``); with ``group_by: group`` the whole
notification becomes one alert (``_group``), whose details keep ``commonLabels`` for rules.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pdrelay.errors import BadRequest
from pdrelay.formats import ParseContext, Parsed
from pdrelay.formats._common import collect, compact, first, http_link, label_hash, map_severity, str_map, summary, text
from pdrelay.models import SEVERITIES, Action, Alert, Link
from pdrelay.timeutil import iso, parse_time

NAME = "alertmanager"
DETECT_ORDER = 20
REPLAY_BY_BODY = True


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")

    group_by: Literal["alert", "group"] = Field(
        "alert", description="One incident per alert (fingerprint), or per group (groupKey)."
    )


def detect(doc: Any, headers: Mapping[str, str]) -> bool:
    return (
        isinstance(doc, dict)
        and isinstance(doc.get("alerts"), list)
        and ("groupKey" in doc or "receiver" in doc)
        and "orgId" not in doc  # Grafana's payload has the same outline plus orgId
    )


def parse(doc: Any, context: ParseContext) -> Parsed:
    if not isinstance(doc, dict):
        raise BadRequest("an Alertmanager payload is a JSON object", ["body: expected an object"])
    alerts = doc.get("alerts")
    if not isinstance(alerts, list) or not alerts:
        raise BadRequest("no alerts in the payload", ["alerts: expected a non-empty list"])
    group_status = text(doc.get("status"))
    options = context.options if isinstance(context.options, Options) else Options()
    if options.group_by == "group":
        parsed = Parsed(alerts=[_group(doc, alerts, context)])
    else:
        parsed = collect(alerts, lambda raw: _alert(raw, doc, group_status, context))
    truncated = doc.get("truncatedAlerts")
    if isinstance(truncated, int) and truncated > 0:
        parsed.notes.append(
            f"Alertmanager left out {truncated} alert(s) (max_alerts): they page when a later notification carries them"
        )
    return parsed


def _group(doc: dict[str, Any], alerts: list[Any], ctx: ParseContext) -> Alert:
    """The whole group as one alert, as Alertmanager's PagerDuty notifier sees it."""
    key = text(doc.get("groupKey"))
    if not key:
        raise BadRequest("invalid Alertmanager payload", ["groupKey: needed to page per group (group_by: group)"])
    status = (text(doc.get("status")) or "").lower()
    if status not in ("firing", "resolved"):
        raise BadRequest("invalid Alertmanager payload", [f"status: must be 'firing' or 'resolved', got {status!r}"])
    members = [a for a in alerts if isinstance(a, dict)]
    firing = [a for a in members if (text(a.get("status")) or status) == "firing"]
    resolved = [a for a in members if (text(a.get("status")) or status) == "resolved"]
    common = str_map(doc.get("commonLabels"))
    group_labels = str_map(doc.get("groupLabels"))
    annotations = str_map(doc.get("commonAnnotations"))
    severities = [map_severity(str_map(a.get("labels")).get("severity")) for a in firing or members]
    severity = min(severities, key=SEVERITIES.index) if severities else "error"
    truncated = doc["truncatedAlerts"] if isinstance(doc.get("truncatedAlerts"), int) else 0
    count = len(firing) + (truncated if status == "firing" else 0)
    name = group_labels.get("alertname") or common.get("alertname") or "alerts"
    label_text = " ".join(f"{k}={v}" for k, v in sorted(group_labels.items()) if k != "alertname")
    title = f"[{status.upper()}:{count if status == 'firing' else len(resolved)}] {name}"

    def brief(alert: dict[str, Any]) -> str:
        labels = str_map(alert.get("labels"))
        notes = str_map(alert.get("annotations"))
        where = first(labels, "instance", "job", "service") or text(alert.get("fingerprint")) or "?"
        return f"{where}: {notes.get('summary') or notes.get('description') or labels.get('alertname', '')}".strip()

    details = compact(
        {
            "status": status,
            "groupKey": key,
            "groupLabels": group_labels,
            "commonLabels": common,
            "commonAnnotations": annotations,
            "firing": [brief(a) for a in firing],
            "resolved": [brief(a) for a in resolved],
            "truncatedAlerts": truncated or None,
            "receiver": text(doc.get("receiver")),
        }
    )
    return Alert(
        format=NAME,
        identity="group:" + hashlib.sha256(key.encode()).hexdigest()[:32],
        action="trigger" if status == "firing" else "resolve",
        occurred_at=ctx.received_at,
        summary=summary(annotations.get("summary"), f"{title} {label_text}".strip(), fallback=title),
        source=text(doc.get("externalURL")) or "alertmanager",
        severity=severity,
        timestamp=ctx.received_at,
        component=first(common, "component", "service", "job"),
        group=first(common, "cluster", "namespace", "env", "environment"),
        class_=name,
        custom_details=details,
        links=[link for link in (http_link(doc.get("externalURL"), "Alertmanager"),) if link is not None],
        client="Prometheus Alertmanager",
        client_url=text(doc.get("externalURL")),
    )


def _alert(raw: Any, doc: dict[str, Any], group_status: str | None, ctx: ParseContext) -> Alert:
    if not isinstance(raw, dict):
        raise ValueError("expected an object")
    status = (text(raw.get("status")) or group_status or "").lower()
    if status not in ("firing", "resolved"):
        raise ValueError(f"status must be 'firing' or 'resolved', got {status or 'nothing'!r}")
    labels = str_map(raw.get("labels"))
    annotations = str_map(raw.get("annotations"))
    if not labels and not text(raw.get("fingerprint")):
        raise ValueError("labels: an alert needs labels or a fingerprint")
    identity = text(raw.get("fingerprint")) or label_hash(labels)

    starts_at = parse_time(raw.get("startsAt"))
    ends_at = parse_time(raw.get("endsAt"))
    action: Action
    if status == "firing":
        action = "trigger"
        occurred_at = starts_at or ctx.received_at
    else:
        action = "resolve"
        usable_end = ends_at is not None and (starts_at is None or ends_at >= starts_at)
        occurred_at = ends_at if usable_end and ends_at else ctx.received_at

    alertname = labels.get("alertname") or "alert"
    where = first(labels, "instance", "job", "service")
    fallback = f"{alertname} on {where}" if where else alertname
    links = [
        link
        for link in (
            http_link(raw.get("generatorURL"), "Source"),
            http_link(annotations.get("runbook_url"), "Runbook"),
            http_link(annotations.get("dashboard_url") or annotations.get("dashboard"), "Dashboard"),
            http_link(doc.get("externalURL"), "Alertmanager"),
        )
        if link is not None
    ]
    details: dict[str, Any] = {
        "status": status,
        "labels": labels,
        "annotations": annotations,
        "startsAt": iso(starts_at) if starts_at else None,
        "receiver": text(doc.get("receiver")),
        "groupKey": text(doc.get("groupKey")),
    }
    if status == "resolved":
        # A firing alert's endsAt moves on every notification; only a resolve's is meaningful.
        details["endsAt"] = iso(occurred_at)
    truncated = doc.get("truncatedAlerts")
    if isinstance(truncated, int) and truncated > 0:
        details["truncatedAlerts"] = truncated
    return Alert(
        format=NAME,
        identity=identity,
        action=action,
        occurred_at=occurred_at,
        summary=summary(
            annotations.get("summary"),
            annotations.get("description"),
            annotations.get("message"),
            fallback=fallback,
        ),
        source=where or text(doc.get("externalURL")) or "alertmanager",
        severity=map_severity(labels.get("severity")),
        timestamp=occurred_at,
        component=first(labels, "component", "service", "job"),
        group=first(labels, "cluster", "namespace", "env", "environment"),
        class_=alertname,
        custom_details={k: v for k, v in details.items() if v is not None},
        links=[Link.model_validate(link) for link in links],
        client="Prometheus Alertmanager",
        client_url=text(doc.get("externalURL")),
    )
