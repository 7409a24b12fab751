"""Azure Monitor alerts through an action group's webhook with the common alert schema.

User documentation: docs/senders/azure.md.

The schema's parts are ``data.essentials`` (identity, condition, severity, times, targets),
``data.alertContext`` (per signal type: metric conditions, log search results, the activity-log
event) and ``data.customProperties``. The test-notification check rests on Azure's published
sample set for "Test Action Group" (subscription ``11111111-1111-1111-1111-111111111111``,
``IsSynthetic``); should Azure change it, its test notifications would be taken for real alerts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pdrelay.errors import BadRequest
from pdrelay.formats import ParseContext
from pdrelay.formats._common import compact, links, obj, summary, text
from pdrelay.models import Action, Alert, Severity
from pdrelay.timeutil import iso, parse_time

NAME = "azure"
DETECT_ORDER = 70
REPLAY_BY_BODY = True  # firedDateTime (and resolvedDateTime) in every notification; a retry repeats the body
CLIENT = "Azure Monitor"

COMMON_SCHEMA = "azuremonitorcommonalertschema"
OLD_SCHEMAS = (
    "microsoft.insights/activitylogs",
    "azuremonitormetricalert",
    "microsoft.insights/logalert",
    "aip budget notification",
)
ALERT_BLADE = "#blade/Microsoft_Azure_Monitoring/AlertDetailsTemplateBlade/alertId"
TEST_SUBSCRIPTION = "11111111-1111-1111-1111-111111111111"
SEVERITIES: dict[str, Severity] = {
    "sev0": "critical",
    "sev1": "error",
    "sev2": "warning",
    "sev3": "info",
    "sev4": "info",
}
SERVICE_HEALTH_OVER = ("resolved", "rca", "complete", "completed", "canceled", "cancelled")
OPERATORS = {
    "greaterthan": ">",
    "greater than": ">",
    "greaterthanorequal": ">=",
    "lessthan": "<",
    "less than": "<",
    "lowerthan": "<",
    "lessthanorequal": "<=",
    "equals": "=",
    "equal": "=",
    "greaterorlessthan": "<>",
}
_RESOURCE_GROUP = re.compile(r"/resourcegroups/([^/]+)", re.IGNORECASE)
_SUBSCRIPTION = re.compile(r"^/subscriptions/([^/]+)", re.IGNORECASE)
_ALERT_ID = re.compile(r"^/subscriptions/[^/]+/providers/microsoft\.alertsmanagement/alerts/[^/]+$", re.IGNORECASE)


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")

    activity_log_severity: Severity | None = Field(
        None, description="Severity of activity-log alerts (Service/Resource Health...), whose rules cannot set one."
    )
    portal_url: str = Field("https://portal.azure.com", description="The Azure portal, for links (sovereign clouds).")

    @field_validator("portal_url")
    @classmethod
    def _https(cls, value: str) -> str:
        if not value.startswith("https://"):
            raise ValueError("must be an https:// URL, e.g. https://portal.azure.us")
        return value.rstrip("/")


def detect(doc: Any, headers: Mapping[str, str]) -> bool:
    if not isinstance(doc, dict):
        return False
    schema = str(doc.get("schemaId") or "").lower()
    return schema == COMMON_SCHEMA or (schema in OLD_SCHEMAS and isinstance(doc.get("data"), dict))


# ---- tolerant access -------------------------------------------------------------------------------


def _texts(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [t for t in (text(item) for item in items) if t]


def _resource_name(resource_id: str | None) -> str | None:
    parts = [p for p in (resource_id or "").split("/") if p]
    return parts[-1] if parts else None


def _resource_type(resource_id: str | None) -> str | None:
    """ "microsoft.sql/servers/databases" for ".../providers/Microsoft.Sql/servers/s1/databases/d1"."""
    _head, found, tail = (resource_id or "").lower().rpartition("/providers/")
    parts = [p for p in tail.split("/") if p] if found else []
    if len(parts) < 3:
        return None
    return "/".join([parts[0], *parts[1::2]])


def _match(pattern: re.Pattern[str], value: str | None) -> str | None:
    found = pattern.findall(value or "")
    return found[-1] if found else None


def _dimensions(value: Any) -> dict[str, str]:
    found: dict[str, str] = {}
    for item in value if isinstance(value, list) else []:
        if isinstance(item, dict):
            name, val = text(item.get("name")), text(item.get("value"))
            if name and val is not None:
                found[name] = val
    return found


def _number(value: Any) -> Any:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else text(value)


# ---- the alert context, by monitoring service --------------------------------------------------------


def _all_of(context: dict[str, Any]) -> list[Any]:
    items = obj(context.get("condition")).get("allOf")
    return items if isinstance(items, list) else []


def _conditions(context: dict[str, Any]) -> list[dict[str, Any]]:
    """Metric and Log Alerts V2 conditions (``condition.allOf``), flattened."""
    found = []
    for item in _all_of(context):
        if not isinstance(item, dict):
            continue
        found.append(
            compact(
                {
                    "metric": text(item.get("metricName")),
                    "namespace": text(item.get("metricNamespace")),
                    "query": text(item.get("searchQuery")),
                    "measure": text(item.get("metricMeasureColumn")),
                    "web_test": text(item.get("webTestName")),
                    "aggregation": text(item.get("timeAggregation")),
                    "operator": text(item.get("operator")),
                    "threshold": _number(item.get("threshold")),
                    "value": _number(item.get("metricValue")),
                    "dimensions": _dimensions(item.get("dimensions")),
                    "sensitivity": text(item.get("alertSensitivity")),
                    "search_results_api": text(
                        item.get("linkToFilteredSearchResultsAPI") or item.get("linkToSearchResultsAPI")
                    ),
                }
            )
        )
    return found


def _condition_text(condition: Mapping[str, Any]) -> str:
    """ "Percentage CPU (Average) > 85: 93.4", "Failed (Total) > 25: 61", "results (Count) > 0: 3"."""
    operator = str(condition.get("operator") or "")
    what = (
        condition.get("metric")
        or condition.get("web_test")
        or condition.get("measure")
        or ("results" if condition.get("query") else "")
    )
    if not what:
        return ""
    aggregation = f" ({condition['aggregation']})" if condition.get("aggregation") else ""
    threshold = condition.get("threshold")
    rule = f" {OPERATORS.get(operator.lower(), operator)} {threshold}" if operator and threshold is not None else ""
    value = condition.get("value")
    return f"{what}{aggregation}{rule}" + (f": {value}" if value is not None else "")


def _context_details(service: str, context: dict[str, Any]) -> dict[str, Any]:
    if isinstance(context.get("condition"), dict):  # metric alerts, Log Alerts V2, simple log alerts
        condition = obj(context.get("condition"))
        return compact(
            {
                "condition_type": text(context.get("conditionType")),
                "conditions": _conditions(context),
                "window": text(condition.get("windowSize")),
                "window_start": text(condition.get("windowStartTime")),
                "window_end": text(condition.get("windowEndTime")),
                "properties": context.get("properties") if isinstance(context.get("properties"), dict) else None,
            }
        )
    if "SearchQuery" in context:  # Log Analytics / Application Insights (log alerts v1)
        return compact(
            {
                "query": text(context.get("SearchQuery")),
                "alert_type": text(context.get("AlertType")),
                "result_count": _number(context.get("ResultCount")),
                "operator": text(context.get("Operator")),
                "threshold": _number(context.get("Threshold")),
                "dimensions": _dimensions(context.get("Dimensions")),
                "search_interval_start": text(context.get("SearchIntervalStartTimeUtc")),
                "search_interval_end": text(
                    context.get("SearchIntervalEndtimeUtc") or context.get("SearchIntervalEndTimeUtc")
                ),
                "search_results_api": text(
                    context.get("LinkToFilteredSearchResultsAPI") or context.get("LinkToSearchResultsAPI")
                ),
                "results_included": text(context.get("IncludedSearchResults")),
            }
        )
    if "operationName" in context or "eventSource" in context:  # activity log, Service/Resource Health
        return compact(
            {
                "operation": text(context.get("operationName")),
                "event_source": text(context.get("eventSource")),
                "status": text(context.get("status")),
                "sub_status": text(context.get("subStatus")),
                "level": text(context.get("level")),
                "caller": text(context.get("caller")),
                "event_time": text(context.get("eventTimestamp")),
                "correlation_id": text(context.get("correlationId")),
                "event_description": text(context.get("Activity Log Event Description")),
                "properties": _event_properties(obj(context.get("properties"))),
            }
        )
    if "DetectionSummary" in context or "SmartDetectorName" in context:  # smart detection
        return compact(
            {
                "detection": text(context.get("DetectionSummary")),
                "detector": text(context.get("SmartDetectorName")),
                "detected_value": text(context.get("DetectedValue")),
                "normal_value": text(context.get("NormalValue")),
                "occurred": text(context.get("FormattedOccurrenceTime")),
            }
        )
    if "expression" in context:  # Prometheus rule groups
        return compact(
            {
                "expression": text(context.get("expression")),
                "value": text(context.get("expressionValue")),
                "for": text(context.get("for")),
                "labels": obj(context.get("labels")),
                "annotations": obj(context.get("annotations")),
                "rule_group": text(context.get("ruleGroup")),
            }
        )
    return {"alert_context": context} if context else {}


def _event_properties(properties: dict[str, Any]) -> dict[str, Any]:
    """An activity-log event's properties without Service Health's copies (HTML table, default language)."""
    kept = {k: v for k, v in properties.items() if k != "impactedServicesTableRows"}
    for copy, original in (("defaultLanguageTitle", "title"), ("defaultLanguageContent", "communication")):
        if kept.get(copy) == kept.get(original):
            kept.pop(copy, None)
    return kept


def _search_links(context: dict[str, Any]) -> list[tuple[object, str]]:
    found: list[tuple[object, str]] = [
        (context.get("LinkToFilteredSearchResultsUI"), "Log search results"),
        (context.get("LinkToSearchResults"), "Log search results (unfiltered)"),
    ]
    for item in _all_of(context):
        if isinstance(item, dict):
            found.append((item.get("linkToFilteredSearchResultsUI"), "Log search results"))
            found.append((item.get("linkToSearchResultsUI"), "Log search results (unfiltered)"))
    return found


# ---- the alert ---------------------------------------------------------------------------------------


def _severity(value: Any) -> Severity:
    return SEVERITIES.get((text(value) or "").lower(), "error")


def _is_test(essentials: dict[str, Any], context: dict[str, Any]) -> bool:
    ids = [text(essentials.get("alertId")) or "", *_texts(essentials.get("alertTargetIDs"))]
    synthetic = str(obj(context.get("properties")).get("IsSynthetic") or "").lower() == "true"
    return synthetic or any(f"/subscriptions/{TEST_SUBSCRIPTION}" in i.lower() for i in ids)


def _lifecycle(
    service: str,
    condition: str,
    essentials: dict[str, Any],
    context: dict[str, Any],
    alert_id: str,
    target_id: str | None,
) -> tuple[str, Action]:
    """The identity and action: the alert instance's, or the health event's (see the module doc)."""
    properties = obj(context.get("properties"))
    status = (text(context.get("status")) or "").lower()
    if service == "servicehealth" and text(properties.get("trackingId")):
        stage = (text(properties.get("stage")) or "").lower()
        subscription = _match(_SUBSCRIPTION, target_id or alert_id) or "unknown-subscription"
        over = stage in SERVICE_HEALTH_OVER or status == "resolved"
        return f"service-health/{subscription}/{text(properties.get('trackingId'))}", "resolve" if over else "trigger"
    if service == "resourcehealth" and target_id:
        health = (text(properties.get("currentHealthStatus")) or "").lower()
        over = health == "available" or status == "resolved"
        return f"resource-health/{target_id.lower().lstrip('/')}", "resolve" if over else "trigger"
    if condition in ("", "fired"):
        return alert_id, "trigger"
    if condition == "resolved":
        return alert_id, "resolve"
    raise BadRequest(
        "unknown Azure Monitor monitor condition",
        [f"data.essentials.monitorCondition: {text(essentials.get('monitorCondition'))!r}, expected Fired or Resolved"],
    )


def _headline(
    service: str,
    essentials: dict[str, Any],
    context: dict[str, Any],
    details: dict[str, Any],
    rule: str,
    target: str | None,
) -> str | None:
    properties = obj(context.get("properties"))
    where = f" ({target})" if target else ""
    if service == "servicehealth":
        title = text(properties.get("title")) or text(properties.get("defaultLanguageTitle"))
        scope = ", ".join(t for t in (text(properties.get("service")), text(properties.get("region"))) if t)
        return f"Azure Service Health: {title}" + (f" ({scope})" if scope else "") if title else None
    if service == "resourcehealth":
        title = text(properties.get("title"))
        health = text(properties.get("currentHealthStatus"))
        if health or title:
            return f"{target or 'resource'} is {health or 'affected'}" + (f": {title}" if title else "")
    description = next(
        (line.strip() for line in (text(essentials.get("description")) or "").splitlines() if line.strip()), None
    )
    conditions = details.get("conditions") or []
    what = description or "; ".join(c for c in (_condition_text(c) for c in conditions) if c) or None
    if not what and details.get("query"):
        what = f"{details.get('result_count', '?')} result(s) of the log search"
    if not what:
        what = text(obj(context.get("annotations")).get("summary")) or text(context.get("operationName"))
    return f"{rule}: {what}{where}" if what else f"{rule}{where}"


def parse(doc: Any, context: ParseContext) -> list[Alert]:
    options = context.options if isinstance(context.options, Options) else Options()
    if not isinstance(doc, dict):
        raise BadRequest("an Azure Monitor payload is a JSON object", ["body: expected an object"])
    schema = text(doc.get("schemaId")) or ""
    if schema.lower() == "aip budget notification":
        raise BadRequest(
            "Azure budget notifications are not supported",
            [
                "schemaId: 'AIP Budget Notification' has no common alert schema; use a cost alert "
                "with a Logic App, or leave budgets to email"
            ],
        )
    if schema.lower() != COMMON_SCHEMA:
        raise BadRequest(
            "not an Azure Monitor common alert schema payload",
            [
                f"schemaId: {schema or 'missing'!r}; turn on 'Enable the common alert schema' in the "
                "action group's webhook action"
            ],
        )
    data = obj(doc.get("data"))
    essentials = obj(data.get("essentials"))
    if not essentials:
        raise BadRequest("invalid Azure Monitor alert", ["data.essentials: expected an object"])
    alert_context = obj(data.get("alertContext"))
    alert_id = text(essentials.get("alertId"))
    rule = text(essentials.get("alertRule"))
    if not alert_id and not rule:
        raise BadRequest("invalid Azure Monitor alert", ["data.essentials.alertId: missing"])
    service = (text(essentials.get("monitoringService")) or "").lower().replace(" ", "")  # "Resource Health"
    condition = (text(essentials.get("monitorCondition")) or "").lower()
    targets = _texts(essentials.get("alertTargetIDs"))
    items = _texts(essentials.get("configurationItems"))
    target_id = targets[0] if targets else None
    target = items[0] if items else _resource_name(target_id)
    rule = rule or "Azure alert"
    test = _is_test(essentials, alert_context)
    fallback_identity = f"rule/{rule}/{(target_id or '').lower()}"  # no alertId: the rule on its target
    identity, action = _lifecycle(
        service, condition, essentials, alert_context, alert_id or fallback_identity, target_id
    )
    if test:
        action = "trigger"

    fired = parse_time(essentials.get("firedDateTime"))
    resolved = parse_time(essentials.get("resolvedDateTime"))
    if action == "resolve":
        # A health event is an alert instance of its own (its fire time is the recovery's time); a stateful
        # alert's firedDateTime is when the problem began, so without resolvedDateTime receipt orders it.
        health_event = identity.startswith(("service-health/", "resource-health/"))
        occurred = resolved or (fired if health_event else None) or context.received_at
    else:
        occurred = fired or context.received_at

    severity = _severity(essentials.get("severity"))
    is_activity_log = (
        (text(essentials.get("signalType")) or "").lower() == "activity log"
        or service in ("servicehealth", "resourcehealth")
        or service.startswith("activitylog")
    )
    if is_activity_log and options.activity_log_severity:
        severity = options.activity_log_severity

    context_details = _context_details(service, alert_context)
    conditions = context_details.get("conditions") or []
    metrics = sorted({c["metric"] for c in conditions if c.get("metric")})
    portal = options.portal_url
    alert_link = None
    if alert_id and _ALERT_ID.match(alert_id):
        alert_link = f"{portal}/{ALERT_BLADE}/{quote(alert_id, safe='')}"
    resource_link = f"{portal}/#resource{target_id}" if target_id and target_id.startswith("/subscriptions/") else None
    details = compact(
        {
            "alert_rule": rule,
            "alert_rule_id": text(essentials.get("alertRuleID") or essentials.get("alertRuleId")),
            "monitor_condition": text(essentials.get("monitorCondition")),
            "severity": text(essentials.get("severity")),
            "signal_type": text(essentials.get("signalType")),
            "monitoring_service": text(essentials.get("monitoringService")),
            "description": text(essentials.get("description")),
            "targets": targets,
            "configuration_items": items,
            "target_resource_group": text(essentials.get("targetResourceGroup")),
            "target_resource_type": text(essentials.get("targetResourceType")),
            "alert_id": alert_id,
            "origin_alert_id": text(essentials.get("originAlertId")),
            "fired_at": iso(fired) if fired else None,
            "resolved_at": iso(resolved) if resolved else None,
            **context_details,
            "custom_properties": obj(data.get("customProperties")),
            "investigation_link": text(essentials.get("investigationLink")),
        }
    )
    properties = obj(alert_context.get("properties"))
    component = (text(essentials.get("targetResourceType")) or _resource_type(target_id) or "").lower() or None
    source = target or rule
    if service == "servicehealth" and text(properties.get("service")):
        component = text(properties.get("service"))
        source = ", ".join(t for t in (component, text(properties.get("region"))) if t)
    headline = _headline(service, essentials, alert_context, context_details, rule, target)
    return [
        Alert(
            format=NAME,
            identity=identity,
            action=action,
            occurred_at=occurred,
            summary=summary(headline, fallback=f"Azure Monitor alert {alert_id or rule}"),
            source=source,
            severity=severity,
            timestamp=occurred,
            component=component,
            group=text(essentials.get("targetResourceGroup")) or _match(_RESOURCE_GROUP, target_id),
            class_=", ".join(metrics) if len(metrics) == 1 else text(essentials.get("monitoringService")),
            custom_details=details,
            links=links(
                (alert_link, "Alert in the Azure portal"),
                (resource_link, f"{_resource_name(target_id) or 'Resource'} in the Azure portal"),
                *_search_links(alert_context),
                (essentials.get("investigationLink"), "Investigate"),
            ),
            client=CLIENT,
            client_url=alert_link,
            test=test,
        )
    ]
