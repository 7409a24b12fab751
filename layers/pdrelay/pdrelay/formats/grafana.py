"""Grafana: the webhook contact point of Grafana Alerting (unified, Grafana 8+) and the webhook
notification channel of legacy dashboard alerting (Grafana 4 to 10).

User documentation: docs/senders/grafana.md.

The two are told apart by their shape: unified payloads carry an ``alerts`` list (Alertmanager's
shape, one POST per notification group); legacy ones ``state``, ``ruleId``, ``ruleName``,
``ruleUrl`` and ``evalMatches``. ``REPLAY_BY_BODY`` stays off: legacy notifications carry no time
of their own, so an identical body may be a real re-notification.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from pdrelay.errors import BadRequest
from pdrelay.formats import ParseContext, Parsed
from pdrelay.formats._common import collect, compact, first, label_hash, links, map_severity, str_map, summary, text
from pdrelay.models import Action, Alert, Image
from pdrelay.timeutil import iso, parse_time

NAME = "grafana"
DETECT_ORDER = 15
CLIENT = "Grafana"

NO_DATA_ALERTNAME = "DatasourceNoData"
ERROR_ALERTNAME = "DatasourceError"
TEST_ALERTNAME = "TestAlert"
TEST_RULE_NAME = "test notification"
LEGACY_STATES = ("alerting", "ok", "no_data", "paused", "pending", "unknown")
_UNIFIED_ALERT_KEYS = ("silenceURL", "dashboardURL", "panelURL", "valueString")


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")

    no_data: Literal["ignore", "trigger"] = Field(
        "ignore", description="A rule with no data: noted without paging (ignore), or paged at warning (trigger)."
    )


def detect(doc: Any, headers: Mapping[str, str]) -> bool:
    if not isinstance(doc, dict):
        return False
    alerts = doc.get("alerts")
    if isinstance(alerts, list):
        return (
            "orgId" in doc
            or all(key in doc for key in ("title", "state", "message"))
            or any(isinstance(a, dict) and any(key in a for key in _UNIFIED_ALERT_KEYS) for a in alerts)
        )
    if "evalMatches" in doc:
        return True
    state = doc.get("state")
    return isinstance(state, str) and state.lower() in LEGACY_STATES and ("ruleId" in doc or "ruleUrl" in doc)


def parse(doc: Any, context: ParseContext) -> Parsed:
    if not isinstance(doc, dict):
        raise BadRequest("a Grafana payload is a JSON object", ["body: expected an object"])
    options = context.options if isinstance(context.options, Options) else Options()
    if "alerts" in doc:
        return _unified(doc, context, options)
    if any(key in doc for key in ("state", "ruleId", "ruleName", "evalMatches")):
        return _legacy(doc, context, options)
    raise BadRequest(
        "not a Grafana alert payload",
        ["expected 'alerts' (Grafana Alerting) or 'state' and 'ruleId' (legacy alerting)"],
    )


# --- unified alerting ---------------------------------------------------------------------------


def _unified(doc: dict[str, Any], ctx: ParseContext, options: Options) -> Parsed:
    alerts = doc.get("alerts")
    if not isinstance(alerts, list) or not alerts:
        raise BadRequest("no alerts in the payload", ["alerts: expected a non-empty list"])
    group_status = text(doc.get("status"))
    parsed = collect(alerts, lambda raw: _unified_alert(raw, doc, group_status, ctx))
    if options.no_data == "ignore":
        kept = []
        for alert in parsed.alerts:
            if alert.action == "trigger" and alert.class_ == NO_DATA_ALERTNAME:
                rule = alert.custom_details.get("rule") or alert.identity
                parsed.notes.append(
                    f"Grafana reports no data for rule {rule!r}: not paged (grafana option no_data: ignore)"
                )
            else:
                kept.append(alert)
        parsed.alerts = kept
    truncated = doc.get("truncatedAlerts")
    if isinstance(truncated, int) and not isinstance(truncated, bool) and truncated > 0:
        parsed.notes.append(
            f"Grafana left out {truncated} alert(s) (max_alerts): they page when a later notification carries them"
        )
    return parsed


def _grafana_host(url: object) -> str | None:
    value = text(url)
    if not value:
        return None
    try:
        return urlsplit(value).hostname or None
    except ValueError:
        return None


def _is_unified_test(labels: Mapping[str, str], annotations: Mapping[str, str], raw: Mapping[str, Any]) -> bool:
    if labels.get("alertname") != TEST_ALERTNAME:
        return False
    return (
        labels.get("instance") == "Grafana"
        or annotations.get("summary", "").strip().lower() == "notification test"
        or not text(raw.get("generatorURL"))
    )


def _unified_alert(raw: Any, doc: dict[str, Any], group_status: str | None, ctx: ParseContext) -> Alert:
    if not isinstance(raw, dict):
        raise ValueError("expected an object")
    status = (text(raw.get("status")) or group_status or "").lower()
    if status not in ("firing", "resolved"):
        raise ValueError(f"status must be 'firing' or 'resolved', got {status or 'nothing'!r}")
    labels = str_map(raw.get("labels"))
    annotations = str_map(raw.get("annotations"))
    fingerprint = text(raw.get("fingerprint"))
    if not labels and not fingerprint:
        raise ValueError("labels: an alert needs labels or a fingerprint")
    identity = fingerprint or label_hash(labels)

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

    alertname = labels.get("alertname") or "Grafana alert"
    no_data = alertname == NO_DATA_ALERTNAME
    # DatasourceNoData/DatasourceError alerts name the rule they stand for in the rulename label.
    rule = labels.get("rulename") if alertname in (NO_DATA_ALERTNAME, ERROR_ALERTNAME) else None
    rule = rule or labels.get("alertname")
    where = first(labels, "instance", "host", "hostname", "job", "service")
    grafana = _grafana_host(doc.get("externalURL"))
    error = text(annotations.get("Error")) if alertname == ERROR_ALERTNAME else None
    the_summary = summary(
        f"{rule or 'Grafana rule'}: data source error: {error}" if error else None,
        annotations.get("summary"),
        annotations.get("description"),
        annotations.get("message"),
        f"{rule}: no data" if no_data and rule else None,
        fallback=f"{alertname} on {where}" if where else alertname,
    )
    image_url = text(raw.get("imageURL"))
    panel = text(raw.get("panelURL")) or text(raw.get("dashboardURL"))
    images = (
        [
            Image(
                src=image_url,
                href=panel if panel and panel.startswith(("https://", "http://")) else None,
                alt=the_summary,
            )
        ]
        if image_url and image_url.lower().startswith("https://")
        else []
    )
    values = raw.get("values")
    details: dict[str, Any] = {
        "status": status,
        "rule": rule,
        "folder": labels.get("grafana_folder"),
        "description": annotations.get("description"),
        "labels": labels,
        "annotations": annotations,
        "values": values if isinstance(values, dict) else None,
        "valueString": text(raw.get("valueString")),
        "startsAt": iso(starts_at) if starts_at else None,
        # A firing alert's endsAt moves on every notification; only a resolve's is meaningful.
        "endsAt": iso(occurred_at) if status == "resolved" else None,
        "orgId": text(doc.get("orgId")),
        "groupKey": text(doc.get("groupKey")),
        "receiver": text(doc.get("receiver")),
        "rule_url": text(raw.get("generatorURL")),
    }
    return Alert(
        format=NAME,
        identity=identity,
        action=action,
        occurred_at=occurred_at,
        summary=the_summary,
        source=where or grafana or "grafana",
        severity=map_severity(
            labels.get("severity") or labels.get("priority"), default="warning" if no_data else "error"
        ),
        timestamp=occurred_at,
        component=first(labels, "component", "service", "job"),
        group=first(labels, "cluster", "namespace", "env", "environment", "grafana_folder"),
        class_=alertname,
        custom_details=compact(details),
        links=links(
            (raw.get("generatorURL"), "Alert rule"),
            (raw.get("dashboardURL"), "Dashboard"),
            (raw.get("panelURL"), "Panel"),
            (annotations.get("runbook_url"), "Runbook"),
            (raw.get("silenceURL"), "Silence"),
            (doc.get("externalURL"), "Grafana"),
        ),
        images=images,
        client=CLIENT,
        client_url=text(raw.get("generatorURL")) or text(doc.get("externalURL")),
        test=_is_unified_test(labels, annotations, raw),
    )


# --- legacy alerting ----------------------------------------------------------------------------


def _scalar(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    return text(value)


def _legacy_identity(doc: Mapping[str, Any]) -> str | None:
    parts = [
        f"{key}={value}"
        for key in ("orgId", "dashboardId", "panelId", "ruleId")
        if (value := _scalar(doc.get(key))) is not None
    ]
    if parts:
        return "legacy:" + ",".join(parts)
    name = text(doc.get("ruleName"))
    return f"legacy:ruleName={name}" if name else None


def _is_legacy_test(doc: Mapping[str, Any]) -> bool:
    name = (text(doc.get("ruleName")) or "").lower()
    message = (text(doc.get("message")) or "").lower()
    return name == TEST_RULE_NAME or (doc.get("ruleId") == 0 and "testing the alert notification" in message)


def _eval_matches(value: object) -> list[dict[str, Any]]:
    found = []
    for item in value if isinstance(value, list) else []:
        if isinstance(item, dict):
            metric_value = item.get("value")
            found.append(
                compact(
                    {
                        "metric": text(item.get("metric")),
                        "value": metric_value if isinstance(metric_value, int | float | str) else None,
                        "tags": str_map(item.get("tags")),
                    }
                )
            )
    return found


def _legacy(doc: dict[str, Any], ctx: ParseContext, options: Options) -> Parsed:
    state = (text(doc.get("state")) or "").lower()
    if state not in LEGACY_STATES:
        raise BadRequest(
            "invalid Grafana legacy alert",
            [f"state: must be one of {', '.join(LEGACY_STATES)}, got {state or 'nothing'!r}"],
        )
    test = _is_legacy_test(doc)
    identity = "test" if test else _legacy_identity(doc)
    if identity is None:
        raise BadRequest(
            "invalid Grafana legacy alert",
            ["ruleId: needed to tell alerts apart (or dashboardId/panelId, or ruleName)"],
        )
    rule = text(doc.get("ruleName"))
    name = rule or f"rule {identity}"
    if state in ("paused", "pending", "unknown"):
        return Parsed(notes=[f"Grafana rule {name!r} is {state}: nothing to page"])
    if state == "no_data" and options.no_data == "ignore":
        return Parsed(notes=[f"Grafana reports no data for rule {name!r}: not paged (grafana option no_data: ignore)"])

    action: Action = "resolve" if state == "ok" else "trigger"
    tags = str_map(doc.get("tags"))
    matches = _eval_matches(doc.get("evalMatches"))
    match_tags = matches[0].get("tags", {}) if matches else {}
    message = text(doc.get("message"))
    grafana = _grafana_host(doc.get("ruleUrl"))
    image_url = text(doc.get("imageUrl"))
    images = (
        [Image(src=image_url, href=text(doc.get("ruleUrl")), alt=rule)]
        if image_url and image_url.lower().startswith("https://")
        else []
    )
    details = compact(
        {
            "state": state,
            "rule": rule,
            "ruleId": _scalar(doc.get("ruleId")),
            "dashboardId": _scalar(doc.get("dashboardId")),
            "panelId": _scalar(doc.get("panelId")),
            "orgId": _scalar(doc.get("orgId")),
            "title": text(doc.get("title")),
            "message": message,
            "evalMatches": matches,
            "tags": tags,
            "rule_url": text(doc.get("ruleUrl")),
        }
    )
    return Parsed(
        alerts=[
            Alert(
                format=NAME,
                identity=identity,
                action=action,
                occurred_at=ctx.received_at,
                summary=summary(
                    f"{'[No Data] ' if state == 'no_data' else ''}{rule} - {message}" if rule and message else None,
                    doc.get("title"),
                    rule,
                    message,
                    fallback=f"Grafana alert {identity}",
                ),
                source=first(tags, "instance", "host")
                or first(match_tags, "instance", "host", "hostname")
                or grafana
                or "grafana",
                severity=map_severity(
                    tags.get("severity") or tags.get("priority"), default="warning" if state == "no_data" else "error"
                ),
                component=first(tags, "component", "service", "job"),
                group=first(tags, "cluster", "namespace", "env", "environment"),
                class_=rule,
                custom_details=details,
                links=links((doc.get("ruleUrl"), "Grafana panel")),
                images=images,
                client=CLIENT,
                client_url=text(doc.get("ruleUrl")),
                test=test,
            )
        ]
    )
