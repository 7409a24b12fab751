"""Sentry integration-platform webhooks (an internal integration's webhook URL).

User documentation: docs/senders/sentry.md.

The signature check needs the raw body (``ParseContext.body``), not the decoded document:
``Sentry-Hook-Signature`` is the HMAC of the bytes as sent.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from pdrelay.errors import BadRequest, Unauthorized
from pdrelay.formats import ParseContext, Parsed
from pdrelay.formats._common import compact, first, links, map_severity, summary, text
from pdrelay.models import Action, Alert, Severity
from pdrelay.timeutil import iso, parse_time

NAME = "sentry"
DETECT_ORDER = 30
CLIENT = "Sentry"
RESOURCE_HEADER = "sentry-hook-resource"
SIGNATURE_HEADER = "sentry-hook-signature"
TEST_TITLE = "test issue"
TEST_CULPRIT = "test notification"
TEST_ISSUE_TYPE = "send-test-notification"
_PROJECT_IN_URL = re.compile(r"/projects/[^/]+/([^/]+)/")
_ISSUE_IN_URL = re.compile(r"/issues/(\d+)/?")


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client_secret: SecretStr | None = Field(
        None, description="The integration's Client Secret: when set, Sentry-Hook-Signature must match."
    )

    @field_validator("client_secret")
    @classmethod
    def _not_blank(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            raise ValueError("must not be empty (leave it out to skip signature checks)")
        return value


def detect(doc: Any, headers: Mapping[str, str]) -> bool:
    if headers.get(RESOURCE_HEADER):
        return True
    if not isinstance(doc, dict) or not isinstance(doc.get("action"), str):
        return False
    data = doc.get("data")
    if isinstance(data, dict) and any(isinstance(data.get(k), dict) for k in ("issue", "event", "metric_alert")):
        return True
    installation = doc.get("installation")
    return isinstance(installation, dict) and "uuid" in installation and isinstance(data, dict)


TIMESTAMP_HEADER = "sentry-hook-timestamp"
TIMESTAMP_TOLERANCE_SECONDS = 300


def verify_signature(body: bytes, headers: Mapping[str, str], secret: str, now: float | None = None) -> None:
    """Raise Unauthorized unless ``Sentry-Hook-Signature`` is the HMAC-SHA256 of ``body``, and its
    ``Sentry-Hook-Timestamp`` (when sent; Sentry does not sign it) is within five minutes of ``now``."""
    given = (headers.get(SIGNATURE_HEADER) or "").strip().lower()
    if not given:
        raise Unauthorized(
            "invalid Sentry-Hook-Signature",
            ["the Sentry-Hook-Signature header is missing; this route checks Sentry's signature"],
        )
    stamp = (headers.get(TIMESTAMP_HEADER) or "").strip()
    if stamp and now is not None:
        try:
            sent = float(stamp)
        except ValueError:
            sent = float("nan")
        if not abs(now - sent) <= TIMESTAMP_TOLERANCE_SECONDS:
            raise Unauthorized(
                "invalid Sentry-Hook-Timestamp",
                [
                    f"the request was sent more than {TIMESTAMP_TOLERANCE_SECONDS} s from pdrelay's clock "
                    "(a replayed or delayed request)"
                ],
            )
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), given.encode()):
        raise Unauthorized(
            "invalid Sentry-Hook-Signature",
            [
                "the signature does not match the body signed with the route's client_secret "
                "(the integration's Client Secret)"
            ],
        )


def parse(doc: Any, context: ParseContext) -> Parsed:
    options = context.options if isinstance(context.options, Options) else Options()
    if options.client_secret is not None:
        verify_signature(
            context.body, context.headers, options.client_secret.get_secret_value(), context.received_at.timestamp()
        )
    if not isinstance(doc, dict):
        raise BadRequest("a Sentry webhook payload is a JSON object", ["body: expected an object"])
    data = _dict(doc.get("data"))
    action = (text(doc.get("action")) or "").lower()
    resource = (text(context.headers.get(RESOURCE_HEADER)) or _resource_of(data)).lower()
    if resource == "issue":
        return _issue(action, data, doc, context)
    if resource == "event_alert":
        return _event_alert(action, data, doc, context)
    if resource == "metric_alert":
        return _metric_alert(action, data, doc, context)
    return Parsed(notes=[f"Sentry {resource or 'webhook'} {action or '(no action)'}: nothing to page"])


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _resource_of(data: Mapping[str, Any]) -> str:
    for key, resource in (("metric_alert", "metric_alert"), ("event", "event_alert"), ("issue", "issue")):
        if isinstance(data.get(key), dict):
            return resource
    return ""


def _object(data: Mapping[str, Any], key: str, resource: str) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise BadRequest(f"invalid Sentry {resource} webhook", [f"data.{key}: expected an object"])
    return value


def _id(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return text(value)


def _actor(doc: Mapping[str, Any]) -> str | None:
    actor = doc.get("actor")
    return text(actor.get("name")) if isinstance(actor, dict) else None


def _tag_pairs(value: object) -> dict[str, str]:
    """An event's tags, sent as [key, value] pairs (or {key, value} objects)."""
    found: dict[str, str] = {}
    for item in value if isinstance(value, list) else []:
        if isinstance(item, list | tuple) and len(item) == 2:
            key, val = text(item[0]), text(item[1])
        elif isinstance(item, dict):
            key, val = text(item.get("key")), text(item.get("value"))
        else:
            continue
        if key and val:
            found.setdefault(key, val)
    return found


def _is_test(title: str | None, culprit: str | None, issue_type: str | None, tags: Mapping[str, str]) -> bool:
    if tags.get("sample_event") == "yes" or (issue_type or "").lower() == TEST_ISSUE_TYPE:
        return True
    return (title or "").strip().lower() == TEST_TITLE and (culprit or "").strip().lower() == TEST_CULPRIT


# --- issue ----------------------------------------------------------------------------------------


def _issue(action: str, data: Mapping[str, Any], doc: Mapping[str, Any], ctx: ParseContext) -> Parsed:
    issue = _object(data, "issue", "issue")
    issue_id = _id(issue.get("id"))
    if not issue_id:
        raise BadRequest("invalid Sentry issue webhook", ["data.issue.id: the issue id is needed"])
    short_id = text(issue.get("shortId"))
    label = short_id or f"issue {issue_id}"
    if action == "assigned":
        assignee = issue.get("assignedTo")
        who = (first(assignee, "name", "email") if isinstance(assignee, dict) else None) or "someone"
        return Parsed(notes=[f"Sentry {label} assigned to {who}: nothing to page"])
    archived = action in ("archived", "ignored")
    act: Action
    if action in ("created", "unresolved"):
        act = "trigger"
    elif action == "resolved" or archived:
        act = "resolve"
    else:
        return Parsed(notes=[f"Sentry {label} {action or '(no action)'}: nothing to page"])

    project = _dict(issue.get("project"))
    title = text(issue.get("title"))
    culprit = text(issue.get("culprit"))
    metadata = _dict(issue.get("metadata"))
    assignee = issue.get("assignedTo")
    occurred_at = (parse_time(issue.get("firstSeen")) if action == "created" else None) or ctx.received_at
    details: dict[str, Any] = {
        "action": action,
        "status": text(issue.get("status")),
        "substatus": text(issue.get("substatus")),
        "level": text(issue.get("level")),
        "shortId": short_id,
        "project": first(project, "slug", "name"),
        "culprit": culprit,
        "type": text(metadata.get("type")),
        "value": text(metadata.get("value")),
        "count": text(issue.get("count")),
        "userCount": text(issue.get("userCount")),
        "firstSeen": text(issue.get("firstSeen")),
        "lastSeen": text(issue.get("lastSeen")),
        "assignedTo": first(assignee, "name", "email") if isinstance(assignee, dict) else None,
        "statusDetails": issue.get("statusDetails") if isinstance(issue.get("statusDetails"), dict) else None,
        "actor": _actor(doc),
        "issue_url": text(issue.get("web_url")) or text(issue.get("permalink")),
    }
    if archived:
        details["note"] = (
            "archived (ignored) in Sentry: resolved in PagerDuty; Sentry sends 'unresolved' again if it escalates"
        )
    web = text(issue.get("web_url")) or text(issue.get("permalink"))
    return Parsed(
        alerts=[
            Alert(
                format=NAME,
                identity=f"issue:{issue_id}",
                action=act,
                occurred_at=occurred_at,
                summary=summary(
                    f"{short_id}: {title}" if short_id and title else None, title, culprit, fallback=f"Sentry {label}"
                ),
                source=first(project, "slug", "name") or "sentry",
                severity=map_severity(issue.get("level")),
                timestamp=occurred_at,
                component=culprit,
                class_=text(metadata.get("type")) or text(issue.get("type")),
                custom_details=compact(details),
                links=links((issue.get("web_url"), "Sentry issue"), (issue.get("permalink"), "Sentry issue")),
                client=CLIENT,
                client_url=web,
                test=_is_test(title, culprit, text(issue.get("issueType")), {}),
            )
        ]
    )


# --- issue alert (event_alert) --------------------------------------------------------------------


def _event_alert(action: str, data: Mapping[str, Any], doc: Mapping[str, Any], ctx: ParseContext) -> Parsed:
    event = _object(data, "event", "event_alert")
    if action not in ("triggered", ""):
        return Parsed(notes=[f"Sentry event_alert {action}: nothing to page"])
    issue_url = text(event.get("issue_url"))
    from_url = _ISSUE_IN_URL.search(issue_url or "")
    issue_id = _id(event.get("issue_id")) or (from_url.group(1) if from_url else None)
    if not issue_id:
        raise BadRequest(
            "invalid Sentry event_alert webhook",
            ["data.event.issue_id: the issue id is needed to tie the alert to its issue"],
        )
    tags = _tag_pairs(event.get("tags"))
    title = text(event.get("title"))
    culprit = text(event.get("culprit"))
    rule = text(data.get("triggered_rule"))
    metadata = _dict(event.get("metadata"))
    api_url = text(event.get("url"))
    project_match = _PROJECT_IN_URL.search(api_url or "")
    project = project_match.group(1) if project_match else None
    # Ordered by receipt, like the issue's own webhooks: an event's time can be older than the issue's
    # resolve (late or offline events regress an issue), and the regression must still page.
    event_time = parse_time(event.get("datetime")) or parse_time(event.get("timestamp"))
    occurred_at = ctx.received_at
    details = compact(
        {
            "action": action or "triggered",
            "rule": rule,
            "level": text(event.get("level")),
            "project": project,
            "culprit": culprit,
            "type": text(metadata.get("type")),
            "value": text(metadata.get("value")),
            "event_id": text(event.get("event_id")),
            "issue_id": issue_id,
            "environment": tags.get("environment"),
            "release": text(event.get("release")),
            "server_name": tags.get("server_name"),
            "tags": tags,
            "datetime": iso(event_time) if event_time else None,
            "event_url": text(event.get("web_url")),
        }
    )
    return Parsed(
        alerts=[
            Alert(
                format=NAME,
                identity=f"issue:{issue_id}",
                action="trigger",
                occurred_at=occurred_at,
                summary=summary(title, text(event.get("message")), culprit, fallback=f"Sentry issue {issue_id}"),
                source=project or tags.get("server_name") or "sentry",
                severity=map_severity(event.get("level") or tags.get("level")),
                timestamp=event_time or occurred_at,
                component=culprit,
                group=tags.get("environment"),
                class_=text(metadata.get("type")) or text(event.get("type")),
                custom_details=details,
                links=links((event.get("web_url"), "Sentry event")),
                client=CLIENT,
                client_url=text(event.get("web_url")),
                test=_is_test(title, culprit, None, tags),
            )
        ]
    )


# --- metric alert ---------------------------------------------------------------------------------


METRIC_ACTIONS: dict[str, tuple[Action, Severity]] = {
    "critical": ("trigger", "critical"),
    "warning": ("trigger", "warning"),
    "resolved": ("resolve", "info"),
}


def _metric_alert(action: str, data: Mapping[str, Any], doc: Mapping[str, Any], ctx: ParseContext) -> Parsed:
    incident = _object(data, "metric_alert", "metric_alert")
    rule = _dict(incident.get("alert_rule"))
    name = text(rule.get("name")) or text(incident.get("title"))
    if action not in METRIC_ACTIONS:
        return Parsed(notes=[f"Sentry metric alert {name or '(unnamed)'}: {action or '(no action)'}: nothing to page"])
    act, severity = METRIC_ACTIONS[action]
    incident_id = _id(incident.get("id"))
    rule_id = _id(rule.get("id"))
    if incident_id:
        identity = f"metric_alert:{incident_id}"
    elif rule_id:
        identity = f"metric_alert:rule-{rule_id}"
    else:
        raise BadRequest("invalid Sentry metric_alert webhook", ["data.metric_alert.id: the metric alert id is needed"])
    listed = incident.get("projects") or rule.get("projects")
    projects = [p for p in (text(x) for x in listed) if p] if isinstance(listed, list) else []
    # Receipt time for every state: date_closed comes from Sentry's clock, and a short incident's
    # close could then look older than its trigger, which was ordered by our receipt.
    occurred_at = ctx.received_at
    details = compact(
        {
            "action": action,
            "rule": name,
            "description": text(data.get("description_text")),
            "query": text(rule.get("query")),
            "aggregate": text(rule.get("aggregate")),
            "dataset": text(rule.get("dataset")),
            "time_window": _id(rule.get("time_window")),
            "environment": text(rule.get("environment")),
            "projects": projects,
            "incident": text(incident.get("identifier")) or incident_id,
            "date_started": text(incident.get("date_started")),
            "date_detected": text(incident.get("date_detected")),
            "date_closed": text(incident.get("date_closed")),
            "alert_url": text(data.get("web_url")),
        }
    )
    return Parsed(
        alerts=[
            Alert(
                format=NAME,
                identity=identity,
                action=act,
                occurred_at=occurred_at,
                summary=summary(
                    data.get("description_title"), name, fallback=f"Sentry metric alert {incident_id or rule_id}"
                ),
                source=projects[0] if projects else "sentry",
                severity=severity,
                timestamp=occurred_at,
                component=text(rule.get("aggregate")),
                group=text(rule.get("environment")),
                class_=text(rule.get("dataset")),
                custom_details=details,
                links=links((data.get("web_url"), "Sentry metric alert")),
                client=CLIENT,
                client_url=text(data.get("web_url")),
            )
        ]
    )
