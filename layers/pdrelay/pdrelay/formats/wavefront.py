"""Wavefront (VMware Aria Operations for Applications, formerly Tanzu Observability) webhook
alert targets.

User documentation: docs/senders/wavefront.md (with the template; a test renders it).

Both pdrelay's template and the stock *Webhook Generic* one are read: times as
``MM/dd/yyyy HH:mm:ss Z`` strings or epoch milliseconds, image links as a list or the generic
template's "[url, url]" string. ``notificationId`` is kept out of the details on purpose: it would
make every notification look changed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from pdrelay.errors import BadRequest
from pdrelay.formats import ParseContext, Parsed
from pdrelay.formats._common import compact, http_link, links, summary, text
from pdrelay.models import Action, Alert, Image
from pdrelay.timeutil import iso, parse_time

NAME = "wavefront"
DETECT_ORDER = 60
REPLAY_BY_BODY = True  # each notification has its own notificationId

SEVERITIES = {"SEVERE": "critical", "WARN": "warning", "WARNING": "warning", "SMOKE": "info", "INFO": "info"}
TRIGGERS = {
    "ALERT_OPENED",
    "ALERT_UPDATED",
    "ALERT_STATUS_UPDATED",
    "ALERT_RETRIGGERED",
    "ALERT_RE_TRIGGERED",
    "ALERT_SEVERITY_UPDATE",
    "ALERT_SEVERITY_UPDATED",
}
RESOLVES = {"ALERT_RESOLVED"}
TESTS = {"ALERT_TESTING", "ALERT_TEST"}
NOTED = {
    "ALERT_SNOOZED": "snoozed",
    "ALERT_MAINTENANCE": "in a maintenance window",
    "ALERT_AFFECTED_BY_MAINTENANCE": "in a maintenance window",
    "ALERT_AFFECTED_BY_MAINTENANCE_WINDOW": "in a maintenance window",
    "ALERT_NO_DATA": "reporting no data",
    "ALERT_HAS_NO_DATA": "reporting no data",
    "ALERT_NO_DATA_RESOLVED": "reporting data again",
    "ALERT_HAS_NO_DATA_RESOLVED": "reporting data again",
    "ALERT_NO_DATA_MAINTENANCE": "without data in a maintenance window",
    "ALERT_ENTERED_MAINTENANCE_FROM_NO_DATA": "without data in a maintenance window",
    "ALERT_INVALID": "invalid (its query fails)",
    "ALERT_NO_LONGER_INVALID": "no longer invalid",
}
_WAVEFRONT_TIME = "%m/%d/%Y %H:%M:%S %z"


def detect(doc: Any, headers: Mapping[str, str]) -> bool:
    return isinstance(doc, dict) and "alertId" in doc and "notificationId" in doc and "reason" in doc


def reason_of(value: object) -> str | None:
    """``reason`` as Wavefront's trigger constant: "Alert Opened" and "ALERT_OPENED" alike."""
    found = text(value)
    if not found:
        return None
    constant = re.sub(r"[^A-Z0-9]+", "_", found.upper()).strip("_")
    return constant if constant.startswith("ALERT_") else f"ALERT_{constant}"


def wavefront_time(value: object, epoch: object = None) -> datetime | None:
    """An epoch (ms or s) or Wavefront's "MM/dd/yyyy HH:mm:ss Z" (or ISO 8601)."""
    for candidate in (epoch, value):
        found = text(candidate)
        if not found:
            continue
        if re.fullmatch(r"\d{9,16}", found):
            moment = parse_time(int(found))
        else:
            try:
                moment = datetime.strptime(found, _WAVEFRONT_TIME)
            except ValueError:
                moment = parse_time(found)
        if moment is not None:
            return moment
    return None


def strings(value: object) -> list[str]:
    """A list of non-empty strings from a JSON list, or from a "[a, b]" string."""
    if isinstance(value, list):
        return [s for s in (text(item) for item in value) if s]
    found = text(value)
    if not found:
        return []
    if found.startswith("[") and found.endswith("]"):
        found = found[1:-1]
    return [part.strip() for part in found.split(",") if part.strip()]


def series(value: object) -> list[str]:
    """Failing series: the alert-series strings of pdrelay's template, or the generic template's
    ``[host, metric, [tags]]`` triples, as one line each."""
    lines: list[str] = []
    for item in value if isinstance(value, list) else []:
        if isinstance(item, list):
            parts = [
                ", ".join(s for s in (text(t) for t in part) if s) if isinstance(part, list) else text(part)
                for part in item
            ]
            line = " ".join(p for p in parts if p)
        else:
            line = text(item) or ""
        if line:
            lines.append(line)
    return lines


def parse(doc: Any, context: ParseContext) -> Parsed:
    if not isinstance(doc, dict):
        raise BadRequest("a Wavefront payload is a JSON object", ["body: expected an object"])
    reason = reason_of(doc.get("reason"))
    alert_id = text(doc.get("alertId"))
    name = text(doc.get("name"))
    test = reason in TESTS
    if reason in NOTED:
        return Parsed(
            notes=[
                f"Wavefront alert {name or alert_id or '?'} is {NOTED[reason]} ({reason}): nothing sent to PagerDuty"
            ]
        )
    if not test and reason not in TRIGGERS | RESOLVES:
        raise BadRequest(
            "invalid Wavefront payload",
            [
                f"reason: expected ALERT_OPENED, ALERT_UPDATED, ALERT_RESOLVED or another alert target trigger, "
                f"got {text(doc.get('reason'))!r}"
            ],
        )
    if not alert_id and not test:
        raise BadRequest("invalid Wavefront payload", ["alertId: the alert's id ({{{alertId}}}) is needed"])

    started = wavefront_time(doc.get("startedTime"), doc.get("startedEpoch"))
    action: Action
    if reason in RESOLVES:
        action = "resolve"
        ended = wavefront_time(doc.get("endedTime"), doc.get("endedEpoch"))
        occurred = ended if ended is not None and (started is None or ended >= started) else context.received_at
    else:
        action = "trigger"
        occurred = context.received_at if test else started or context.received_at

    failing = strings(doc.get("failingSources"))
    url = text(doc.get("url"))
    host = None
    if url and http_link(url, "x"):
        try:
            host = urlsplit(url).hostname
        except ValueError:
            host = None
    if len(failing) == 1:
        title = f"{name or 'Wavefront alert'} on {failing[0]}"
    elif failing:
        title = f"{name or 'Wavefront alert'} ({len(failing)} sources failing)"
    else:
        title = name or f"Wavefront alert {alert_id or 'test'}"
    images = [
        Image(src=src, href=url if http_link(url, "x") else None, alt=f"{name or 'Alert'} chart")
        for src in strings(doc.get("imageLinks"))
        if http_link(src, "x")
    ]
    details = compact(
        {
            "reason": reason,
            "severity": text(doc.get("severity")),
            "condition": text(doc.get("condition")),
            "failing_sources": failing,
            "newly_failing_sources": strings(doc.get("newlyFailingSources")),
            "recovered_sources": strings(doc.get("recoveredSources")),
            "in_maintenance_sources": strings(doc.get("inMaintenanceSources")),
            "failing_series": series(doc.get("failingAlertSeries")) or series(doc.get("failingSeries")),
            "hosts_failing_message": text(doc.get("hostsFailingMessage")),
            "update_message": text(doc.get("updateMessage")) or text(doc.get("errorMessage")),
            "additional_information": text(doc.get("additionalInformation")),
            "alert_tags": strings(doc.get("alertTags")) if isinstance(doc.get("alertTags"), list) else None,
            "started": iso(started) if started else None,
            "ended": iso(occurred) if action == "resolve" else None,
            "alert_id": alert_id,
        }
    )
    link_candidates: list[tuple[object, str]] = [(url, "Wavefront alert"), (doc.get("chartUrl"), "Chart")]
    link_candidates += [(href, "Runbook") for href in strings(doc.get("runbookLinks"))]
    link_candidates += [(href, "Dashboard") for href in strings(doc.get("dashboardLinks"))]
    return Parsed(
        alerts=[
            Alert(
                format=NAME,
                # A test carries the real alert's id: kept apart, so a test page never reopens the real incident.
                identity=f"test:{alert_id}" if test and alert_id else alert_id or "test",
                action=action,
                occurred_at=occurred,
                summary=summary(title, fallback=f"Wavefront alert {alert_id or 'test'}"),
                source=(failing[0] if len(failing) == 1 else None) or host or "Wavefront",
                severity=SEVERITIES.get((text(doc.get("severity")) or "").upper(), "error"),
                timestamp=occurred,
                class_=name,
                custom_details=details,
                links=links(*link_candidates),
                images=images,
                client="Wavefront",
                client_url=url if http_link(url, "x") else None,
                test=test,
            )
        ]
    )
