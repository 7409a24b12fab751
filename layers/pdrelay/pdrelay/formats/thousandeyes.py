"""ThousandEyes alert notification webhooks: the custom webhook with pdrelay's template (the
current kind, with the API v7 alert's variables) and the basic (legacy) webhook's fixed JSON.

User documentation: docs/senders/thousandeyes.md (with the template; a test renders it).

Shapes:

- custom webhook: ``{"thousandeyes": 7, "notificationId", "type", "alert": {"id", "severity",
  "alertType", "firstSeen", "timeCleared", "accountId", "rule": {...}, "test": {...},
  "targets": [...], "details": [...]}}``. Handlebars escapes HTML in ``{{ }}``, so every text is
  HTML-unescaped.
- basic webhook: ``{"eventType", "eventId", "alert": {"alertId", "ruleId", "ruleName",
  "ruleExpression", "testId", "testName", "type", "dateStart", "dateEnd", "permalink", "severity",
  "violationCount", "agents"|"monitors": [...], "apiLinks"}}``, or ``"agentAlert"`` for agent
  notifications. ``WEBHOOK_TEST`` carries no alert: its identity is ``test``.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pdrelay.errors import BadRequest
from pdrelay.formats import ParseContext
from pdrelay.formats._common import compact, links, listed, summary, text
from pdrelay.models import Action, Alert
from pdrelay.timeutil import iso, parse_time

NAME = "thousandeyes"
DETECT_ORDER = 65
REPLAY_BY_BODY = True  # every notification carries its own eventId / notificationId

SEVERITIES = {"CRITICAL": "critical", "MAJOR": "error", "MINOR": "warning", "INFO": "info"}
EVENT_TYPES: dict[str, Action] = {
    "ALERT_NOTIFICATION_TRIGGER": "trigger",
    "ALERT_NOTIFICATION_CLEAR": "resolve",
    "AGENT_ALERT_NOTIFICATION_TRIGGER": "trigger",
    "AGENT_ALERT_NOTIFICATION_CLEAR": "resolve",
}
TEST_EVENT = "WEBHOOK_TEST"
CUSTOM_TYPES: dict[str, Action] = {"2": "trigger", "1": "resolve", "TRIGGER": "trigger", "CLEAR": "resolve"}
APP = "https://app.thousandeyes.com"


def detect(doc: Any, headers: Mapping[str, str]) -> bool:
    if not isinstance(doc, dict):
        return False
    if doc.get("thousandeyes") in (7, "7") and isinstance(doc.get("alert"), dict):
        return True
    event_type = doc.get("eventType")
    return "eventId" in doc and isinstance(event_type, str) and (event_type == TEST_EVENT or event_type in EVENT_TYPES)


def severity(value: object) -> str:
    return SEVERITIES.get((text(value) or "").upper(), "error")


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _when(value: object) -> datetime | None:
    """An epoch (s or ms, number or digits) or "yyyy-MM-dd HH:mm:ss" (UTC) or ISO 8601."""
    found = text(value)
    if found and found.isdigit() and len(found) < 17:
        return parse_time(int(found))
    return parse_time(found) if found else None


def _ordering(action: Action, start: datetime | None, end: datetime | None, received: datetime) -> datetime:
    if action == "trigger":
        return start or received
    return end if end is not None and (start is None or end >= start) else received


def _unescape(value: Any) -> Any:
    """Handlebars' HTML escaping undone, throughout."""
    if isinstance(value, str):
        return html.unescape(value)
    if isinstance(value, list):
        return [_unescape(item) for item in value]
    if isinstance(value, dict):
        return {key: _unescape(item) for key, item in value.items()}
    return value


def _affected(names: list[str], word: str) -> str:
    if len(names) == 1:
        return f" from {names[0]}"
    return f" ({len(names)} {word})" if names else ""


def parse(doc: Any, context: ParseContext) -> list[Alert]:
    if not isinstance(doc, dict):
        raise BadRequest("a ThousandEyes payload is a JSON object", ["body: expected an object"])
    if "eventType" in doc and doc.get("thousandeyes") not in (7, "7"):
        return [_basic(doc, context)]
    return [_custom(_unescape(doc), context)]


def _custom(doc: dict[str, Any], ctx: ParseContext) -> Alert:
    alert = _dict(doc.get("alert"))
    kind = (text(doc.get("type")) or "").upper()
    if kind not in CUSTOM_TYPES:
        got = text(doc.get("type"))
        raise BadRequest(
            "invalid ThousandEyes payload",
            [f"type: expected 2 (trigger) or 1 (clear), from {{{{type.id}}}}, got {got!r}"],
        )
    alert_id = text(alert.get("id"))
    if not alert_id:
        raise BadRequest("invalid ThousandEyes payload", ["alert.id: the alert's id ({{alert.id}}) is needed"])
    action = CUSTOM_TYPES[kind]
    rule, test = _dict(alert.get("rule")), _dict(alert.get("test"))
    start, end = _when(alert.get("firstSeen")), _when(alert.get("timeCleared"))
    occurred = _ordering(action, start, end, ctx.received_at)
    targets = [t for t in (text(item) for item in listed(alert.get("targets"))) if t]
    details = [_dict(item) for item in listed(alert.get("details")) if isinstance(item, dict)]
    sources = [s for s in (text(d.get("source")) for d in details) if s]
    rule_name, test_name = text(rule.get("name")), text(test.get("name"))
    title = (
        f"{rule_name or 'ThousandEyes alert'}"
        + (f" on {test_name}" if test_name else "")
        + _affected(sources, "agents")
    )
    account, test_id = text(alert.get("accountId")), text(test.get("id"))
    views = (
        f"{APP}/network-app-synthetics/views/?__a={account}&testId={test_id}"
        if account and test_id and account.isdigit() and test_id.isdigit()
        else None
    )
    return Alert(
        format=NAME,
        identity=f"alert:{alert_id}",
        action=action,
        occurred_at=occurred,
        summary=summary(title, fallback=f"ThousandEyes alert {alert_id}"),
        source=(targets[0] if targets else None) or test_name or "ThousandEyes",
        severity=severity(alert.get("severity")),
        timestamp=occurred,
        component=text(test.get("testType")),
        class_=text(alert.get("alertType")),
        custom_details=compact(
            {
                "state": "triggered" if action == "trigger" else "cleared",
                "rule": rule_name,
                "rule_expression": text(rule.get("expression")),
                "rule_notes": text(rule.get("notes")),
                "test": test_name,
                "test_id": test_id,
                "test_type": text(test.get("testType")),
                "alert_type": text(alert.get("alertType")),
                "targets": targets,
                "agents": [
                    compact(
                        {
                            "source": text(d.get("source")),
                            "metrics_at_start": text(d.get("metricsAtStart")),
                            "metrics_at_end": text(d.get("metricsAtEnd")),
                        }
                    )
                    for d in details
                ],
                "started": iso(start) if start else None,
                "cleared": iso(occurred) if action == "resolve" else None,
                "alert_id": alert_id,
            }
        ),
        links=links((views, "ThousandEyes test views")),
        client="ThousandEyes",
        client_url=APP,
    )


def _basic(doc: dict[str, Any], ctx: ParseContext) -> Alert:
    event_type = text(doc.get("eventType")) or ""
    if event_type == TEST_EVENT:
        return Alert(
            format=NAME,
            identity="test",
            action="trigger",
            occurred_at=ctx.received_at,
            summary="ThousandEyes webhook test",
            source="ThousandEyes",
            severity="info",
            timestamp=ctx.received_at,
            custom_details=compact({"event_type": event_type, "event_id": text(doc.get("eventId"))}),
            client="ThousandEyes",
            client_url=APP,
            test=True,
        )
    if event_type not in EVENT_TYPES:
        raise BadRequest(
            "invalid ThousandEyes payload",
            [f"eventType: expected {', '.join([*EVENT_TYPES, TEST_EVENT])}, got {event_type or None!r}"],
        )
    action = EVENT_TYPES[event_type]
    if event_type.startswith("AGENT_"):
        return _agent(doc, event_type, action, ctx)
    alert = _dict(doc.get("alert"))
    alert_id = text(alert.get("alertId"))
    if not alert_id:
        raise BadRequest("invalid ThousandEyes payload", ["alert.alertId: the alert's id is needed"])
    start, end = _when(alert.get("dateStart")), _when(alert.get("dateEnd"))
    occurred = _ordering(action, start, end, ctx.received_at)
    members = [
        _dict(item) for item in listed(alert.get("agents")) or listed(alert.get("monitors")) if isinstance(item, dict)
    ]
    names = [
        n
        for n in (
            text(m.get("agentName")) or text(m.get("monitorName")) or text(m.get("locationName")) for m in members
        )
        if n
    ]
    word = "agents" if listed(alert.get("agents")) else "monitors"
    rule_name, test_name = text(alert.get("ruleName")), text(alert.get("testName"))
    title = f"{rule_name or 'ThousandEyes alert'}" + (f" on {test_name}" if test_name else "") + _affected(names, word)
    api_links = [
        (_dict(item).get("href"), f"ThousandEyes API ({text(_dict(item).get('rel')) or 'link'})")
        for item in listed(alert.get("apiLinks"))
    ]
    return Alert(
        format=NAME,
        identity=f"alert:{alert_id}",
        action=action,
        occurred_at=occurred,
        summary=summary(title, fallback=f"ThousandEyes alert {alert_id}"),
        source=test_name or "ThousandEyes",
        severity=severity(alert.get("severity")),
        timestamp=occurred,
        component=text(alert.get("type")),
        class_=text(alert.get("type")),
        custom_details=compact(
            {
                "event_type": event_type,
                "rule": rule_name,
                "rule_expression": text(alert.get("ruleExpression")),
                "test": test_name,
                "test_id": text(alert.get("testId")),
                "alert_type": text(alert.get("type")),
                "violation_count": text(alert.get("violationCount")),
                word: [
                    compact(
                        {
                            "name": text(m.get("agentName")) or text(m.get("monitorName")),
                            "location": text(m.get("locationName")),
                            "active": text(m.get("active")),
                            "metrics_at_start": text(m.get("metricsAtStart")),
                            "metrics_at_end": text(m.get("metricsAtEnd")),
                        }
                    )
                    for m in members
                ],
                "started": iso(start) if start else None,
                "cleared": iso(occurred) if action == "resolve" else None,
                "alert_id": alert_id,
            }
        ),
        links=links((alert.get("permalink"), "ThousandEyes alert"), *api_links),
        client="ThousandEyes",
        client_url=APP,
    )


def _agent(doc: dict[str, Any], event_type: str, action: Action, ctx: ParseContext) -> Alert:
    agent = _dict(doc.get("agentAlert"))
    rule_id, agent_id = text(agent.get("agentRuleId")), text(agent.get("agentId"))
    if not rule_id or not agent_id:
        raise BadRequest(
            "invalid ThousandEyes payload", ["agentAlert.agentRuleId and agentAlert.agentId: both are needed"]
        )
    start, end = _when(agent.get("dateStart")), _when(agent.get("dateEnd"))
    occurred = _ordering(action, start, end, ctx.received_at)
    agent_name = text(agent.get("agentName")) or text(agent.get("hostname")) or agent_id
    rule_name = text(agent.get("ruleName"))
    return Alert(
        format=NAME,
        identity=f"agent:{rule_id}:{agent_id}",
        action=action,
        occurred_at=occurred,
        summary=summary(
            f"{rule_name or 'ThousandEyes agent alert'} on agent {agent_name}",
            fallback=f"ThousandEyes agent alert {rule_id}",
        ),
        source=text(agent.get("hostname")) or text(agent.get("ipAddress")) or agent_name,
        severity=severity(agent.get("severity")),
        timestamp=occurred,
        component="agent",
        class_="agent notification",
        custom_details=compact(
            {
                "event_type": event_type,
                "rule": rule_name,
                "rule_expression": text(agent.get("ruleExpression")),
                "agent": agent_name,
                "agent_id": agent_id,
                "hostname": text(agent.get("hostname")),
                "ip_address": text(agent.get("ipAddress")),
                "metrics_at_start": text(agent.get("metricsAtStart")),
                "metrics_at_end": text(agent.get("metricsAtEnd")),
                "started": iso(start) if start else None,
                "cleared": iso(occurred) if action == "resolve" else None,
            }
        ),
        client="ThousandEyes",
        client_url=APP,
    )
