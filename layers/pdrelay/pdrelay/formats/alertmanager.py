"""Prometheus Alertmanager webhook (payload version 4).

- Firing vs recovered: each alert's own ``status`` (the top-level ``status`` only summarises the
  group); an alert without one takes the group's.
- Identity: ``fingerprint``; older senders without it get a hash of the sorted labels (which is
  what Alertmanager's fingerprint is derived from too).
- Ordering time: ``startsAt`` for firing; ``endsAt`` for resolved, or the time pdrelay received it
  when ``endsAt`` is Go's zero time or earlier than ``startsAt``.
- Severity: the ``severity`` label (see ``_common.SEVERITY_WORDS``), ``error`` when absent.
- Summary: annotations ``summary``, ``description``, ``message``; else alertname and instance.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from pdrelay.errors import BadRequest
from pdrelay.formats import ParseContext
from pdrelay.formats._common import first, http_link, map_severity, str_map, summary, text
from pdrelay.models import Action, Alert, Link
from pdrelay.timeutil import iso, parse_time

NAME = "alertmanager"
DETECT_ORDER = 20


def detect(doc: Any, headers: Mapping[str, str]) -> bool:
    return (
        isinstance(doc, dict)
        and isinstance(doc.get("alerts"), list)
        and ("groupKey" in doc or "receiver" in doc)
        and "orgId" not in doc  # Grafana's payload has the same outline plus orgId
    )


def label_hash(labels: Mapping[str, str]) -> str:
    canonical = json.dumps(sorted(labels.items()), separators=(",", ":"))
    return "labels-" + hashlib.sha256(canonical.encode()).hexdigest()[:32]


def parse(doc: Any, context: ParseContext) -> list[Alert]:
    if not isinstance(doc, dict):
        raise BadRequest("an Alertmanager payload is a JSON object", ["body: expected an object"])
    alerts = doc.get("alerts")
    if not isinstance(alerts, list) or not alerts:
        raise BadRequest("no alerts in the payload", ["alerts: expected a non-empty list"])
    group_status = text(doc.get("status"))
    problems: list[str] = []
    result: list[Alert] = []
    for index, raw in enumerate(alerts):
        if not isinstance(raw, dict):
            problems.append(f"alerts[{index}]: expected an object")
            continue
        try:
            result.append(_alert(raw, doc, group_status, context))
        except ValueError as exc:
            problems.append(f"alerts[{index}]: {exc}")
        except ValidationError as exc:
            problems.extend(f"alerts[{index}]: {e['msg']}" for e in exc.errors())
    if problems:
        raise BadRequest("invalid Alertmanager payload", problems)
    return result


def _alert(raw: dict[str, Any], doc: dict[str, Any], group_status: str | None, ctx: ParseContext) -> Alert:
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
            annotations.get("summary"), annotations.get("description"), annotations.get("message"),
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
