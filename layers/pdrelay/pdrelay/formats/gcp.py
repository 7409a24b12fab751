"""Google Cloud Monitoring: an alerting policy's webhook notification channel (schema 1.2 and older).

User documentation: docs/senders/gcp.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ConfigDict, Field

from pdrelay.errors import BadRequest
from pdrelay.formats import ParseContext
from pdrelay.formats._common import SEVERITY_WORDS, compact, first, links, obj, str_map, summary, text
from pdrelay.models import Action, Alert, Severity
from pdrelay.timeutil import iso, parse_time

NAME = "gcp"
DETECT_ORDER = 75
REPLAY_BY_BODY = True  # started_at (and ended_at) in every notification; a repeated body is a retry
CLIENT = "Google Cloud Monitoring"

TEST_VERSION = "test"
TEST_INCIDENT_ID = "12345"
TEST_SUMMARY = "test incident"
POLICY_SEVERITIES: dict[str, Severity] = {"critical": "critical", "error": "error", "warning": "warning"}
_RESOURCE_KEYS = (
    "instance_name",
    "instance_id",
    "service_name",
    "cluster_name",
    "database_id",
    "bucket_name",
    "function_name",
    "host",
    "project_id",
)


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")

    severity: Severity = Field("error", description='Severity of incidents whose policy sets none ("No severity").')


def detect(doc: Any, headers: Mapping[str, str]) -> bool:
    if not isinstance(doc, dict):
        return False
    incident = doc.get("incident")
    return (
        isinstance(incident, dict)
        and "incident_id" in incident
        and "state" in incident
        and ("version" in doc or "policy_name" in incident or "condition_name" in incident)
    )


def _epoch(value: Any) -> Any:
    """An epoch-seconds time, or None for missing, 0 (the test sample's) or junk."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    return parse_time(value) if value > 0 else None


def _url_project(url: str | None) -> str | None:
    """The ``project`` query parameter of the console URL (1.1 notifications have no scoping project)."""
    try:
        values = parse_qs(urlsplit(url or "").query).get("project") or []
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return None
    return text(values[0]) if values else None


def _is_test(doc: dict[str, Any], incident: dict[str, Any]) -> bool:
    if (text(doc.get("version")) or "").lower() == TEST_VERSION:
        return True
    return text(incident.get("incident_id")) == TEST_INCIDENT_ID and (
        (text(incident.get("summary")) or "").lower() == TEST_SUMMARY
    )


def _severity(incident: dict[str, Any], policy_labels: Mapping[str, str], options: Options) -> Severity:
    given = (text(incident.get("severity")) or "").lower()
    if given in POLICY_SEVERITIES:
        return POLICY_SEVERITIES[given]
    label = (policy_labels.get("severity") or "").strip().lower()
    if label in SEVERITY_WORDS:
        return cast(Severity, SEVERITY_WORDS[label])
    return options.severity


def _documentation(value: Any) -> dict[str, Any]:
    """The policy's documentation: an object in 1.2 ({content, mime_type, subject, links}), a string in
    the test sample."""
    if isinstance(value, dict):
        return value
    content = text(value)
    return {"content": content} if content else {}


def _doc_links(documentation: dict[str, Any]) -> list[tuple[object, str]]:
    found: list[tuple[object, str]] = []
    items = documentation.get("links")
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict):
            found.append((item.get("url"), text(item.get("displayName")) or "Documentation"))
    return found


def _condition(value: Any) -> dict[str, Any]:
    """The condition's name, and the filter or query and comparison of whichever kind it is."""
    condition = obj(value)
    details: dict[str, Any] = {"name": text(condition.get("name")), "display_name": text(condition.get("displayName"))}
    for kind, body in condition.items():
        if kind.startswith("condition") and isinstance(body, dict):
            details.update(
                {
                    "kind": kind,
                    "filter": text(body.get("filter")),
                    "query": text(body.get("query")),
                    "comparison": text(body.get("comparison")),
                    "threshold": threshold
                    if isinstance(threshold := body.get("thresholdValue"), int | float)
                    else None,
                    "duration": text(body.get("duration")),
                }
            )
            break
    return compact(details)


def parse(doc: Any, context: ParseContext) -> list[Alert]:
    options = context.options if isinstance(context.options, Options) else Options()
    if not isinstance(doc, dict) or not isinstance(doc.get("incident"), dict):
        raise BadRequest("not a Cloud Monitoring notification", ["incident: expected an object"])
    incident: dict[str, Any] = doc["incident"]
    test = _is_test(doc, incident)
    incident_id = text(incident.get("incident_id"))
    if not incident_id and not test:
        raise BadRequest("invalid Cloud Monitoring notification", ["incident.incident_id: missing"])
    state = (text(incident.get("state")) or "").lower()
    action: Action
    if state == "open" or test:
        action = "trigger"
    elif state == "closed":
        action = "resolve"
    else:
        raise BadRequest(
            "unknown Cloud Monitoring incident state",
            [f"incident.state: {text(incident.get('state'))!r}, expected open or closed"],
        )

    started, ended = _epoch(incident.get("started_at")), _epoch(incident.get("ended_at"))
    occurred = (ended if action == "resolve" else started) or context.received_at

    resource = obj(incident.get("resource"))
    resource_labels = str_map(resource.get("labels"))
    metric = obj(incident.get("metric"))
    metadata = obj(incident.get("metadata"))
    policy_labels = str_map(incident.get("policy_user_labels"))
    documentation = _documentation(incident.get("documentation"))
    url = text(incident.get("url"))
    project = text(incident.get("scoping_project_id")) or resource_labels.get("project_id") or _url_project(url) or None
    policy = text(incident.get("policy_name")) or "alerting policy"
    condition_name = text(incident.get("condition_name")) or text(obj(incident.get("condition")).get("displayName"))
    where = (
        text(incident.get("resource_display_name"))
        or text(incident.get("resource_name"))
        or first(resource_labels, *_RESOURCE_KEYS)
    )
    fallback = f"{policy}: {condition_name or 'condition met'}" + (f" on {where}" if where else "")

    details = compact(
        {
            "policy": text(incident.get("policy_name")),
            "condition": condition_name,
            "state": state or None,
            "summary": text(incident.get("summary")),
            "documentation": text(documentation.get("content")),
            "observed_value": text(incident.get("observed_value")),
            "threshold_value": text(incident.get("threshold_value")),
            "severity": text(incident.get("severity")),
            "resource_type": text(resource.get("type")),
            "resource_labels": resource_labels,
            "resource_name": text(incident.get("resource_name")),
            "resource_id": text(incident.get("resource_id")),
            "metric_type": text(metric.get("type")),
            "metric_labels": str_map(metric.get("labels")),
            "system_labels": str_map(metadata.get("system_labels")),
            "user_labels": str_map(metadata.get("user_labels")),
            "policy_user_labels": policy_labels,
            "started_at": iso(started) if started else None,
            "ended_at": iso(ended) if ended else None,
            "incident_id": incident_id,
            "scoping_project_id": text(incident.get("scoping_project_id")),
            "scoping_project_number": text(incident.get("scoping_project_number")),
            "incident_url": url,
            "condition_definition": _condition(incident.get("condition")),
            "schema_version": text(doc.get("version")),
        }
    )
    return [
        Alert(
            format=NAME,
            identity="test" if test else cast(str, incident_id),
            action=action,
            occurred_at=occurred,
            summary=summary(documentation.get("subject"), incident.get("summary"), fallback=fallback),
            source=where or project or "Google Cloud",
            severity=_severity(incident, policy_labels, options),
            timestamp=occurred,
            component=text(incident.get("resource_type_display_name")) or text(resource.get("type")),
            group=project,
            class_=text(metric.get("displayName")) or text(metric.get("type")) or condition_name,
            custom_details=details,
            links=links(
                (url, "Incident in Cloud Monitoring"),
                *_doc_links(documentation),
                (incident.get("apigee_url"), "Apigee"),
            ),
            client=CLIENT,
            client_url=url if url and url.lower().startswith(("https://", "http://")) else None,
            test=test,
        )
    ]
