"""Azure Monitor (common alert schema): identities, monitor conditions, health events, severities,
test notifications and hostile fields."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from pdrelay import formats
from pdrelay.errors import BadRequest
from pdrelay.formats import ParseContext, azure
from pdrelay.models import Alert
from tests.formats_harness import RECEIVED, load_case

CTX = ParseContext(received_at=RECEIVED)


def case(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = load_case("azure", name).doc
    return doc


def parse_one(doc: Any, options: azure.Options | None = None) -> Alert:
    (alert,) = azure.parse(doc, ParseContext(received_at=RECEIVED, options=options or azure.Options()))
    return alert


def essentials(doc: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = doc["data"]["essentials"]
    return result


def test_a_stateful_alert_keeps_its_alert_id_from_fired_to_resolved() -> None:
    fired, resolved = parse_one(case("metric-fired")), parse_one(case("metric-resolved"))
    assert fired.identity == resolved.identity == essentials(case("metric-fired"))["alertId"]
    assert (fired.action, resolved.action) == ("trigger", "resolve")


@pytest.mark.parametrize(
    ("condition", "action"),
    [("Fired", "trigger"), ("fired", "trigger"), ("Resolved", "resolve"), (None, "trigger"), ("", "trigger")],
)
def test_the_monitor_condition_decides_the_action(condition: str | None, action: str) -> None:
    doc = case("metric-fired")
    essentials(doc)["monitorCondition"] = condition
    assert parse_one(doc).action == action


def test_an_unknown_monitor_condition_is_a_400_naming_it() -> None:
    doc = case("metric-fired")
    essentials(doc)["monitorCondition"] = "Acknowledged"
    with pytest.raises(BadRequest) as caught:
        azure.parse(doc, CTX)
    assert "Acknowledged" in caught.value.problems[0]


def test_a_resolve_is_ordered_by_resolved_date_time_else_by_receipt() -> None:
    resolved = parse_one(case("metric-resolved"))
    assert resolved.occurred_at.isoformat().startswith("2026-11-24T09:21:47.992")
    doc = case("metric-resolved")
    del essentials(doc)["resolvedDateTime"]
    assert parse_one(doc).occurred_at == RECEIVED  # never the (earlier) firedDateTime of the same instance


def test_a_trigger_is_ordered_by_fired_date_time_even_without_a_zone() -> None:
    alert = parse_one(case("service-health-incident-active"))  # "2026-11-24T07:41:05.0623172", UTC by definition
    assert alert.occurred_at.isoformat() == "2026-11-24T07:41:05.062317+00:00"


@pytest.mark.parametrize(
    ("sev", "expected"),
    [
        ("Sev0", "critical"),
        ("Sev1", "error"),
        ("Sev2", "warning"),
        ("Sev3", "info"),
        ("Sev4", "info"),
        ("sev2", "warning"),
        (None, "error"),
        ("Sev9", "error"),
        (3, "error"),
    ],
)
def test_severity_table(sev: Any, expected: str) -> None:
    doc = case("metric-fired")
    essentials(doc)["severity"] = sev
    assert parse_one(doc).severity == expected


def test_activity_log_severity_overrides_only_activity_log_alerts() -> None:
    options = azure.Options(activity_log_severity="critical")
    assert parse_one(case("resource-health-unavailable"), options).severity == "critical"
    assert parse_one(case("activity-log-administrative"), options).severity == "critical"
    assert parse_one(case("metric-fired"), options).severity == "error"  # Sev1 stays
    assert parse_one(case("resource-health-unavailable")).severity == "info"  # Sev4 without the option


def test_resource_health_events_of_one_resource_share_an_incident_despite_new_alert_ids() -> None:
    down, up = case("resource-health-unavailable"), case("resource-health-available")
    assert essentials(down)["alertId"] != essentials(up)["alertId"]
    assert essentials(down)["alertTargetIDs"][0] != essentials(up)["alertTargetIDs"][0]  # only in case
    first, second = parse_one(down), parse_one(up)
    assert first.identity == second.identity
    assert (first.action, second.action) == ("trigger", "resolve")
    assert second.occurred_at > first.occurred_at


@pytest.mark.parametrize(
    ("health", "status", "action"),
    [
        ("Unavailable", "Active", "trigger"),
        ("Degraded", "Active", "trigger"),
        ("Unknown", "Updated", "trigger"),
        ("Available", "Active", "resolve"),
        ("Degraded", "Resolved", "resolve"),
        (None, "Resolved", "resolve"),
    ],
)
def test_resource_health_status_decides_the_action(health: str | None, status: str, action: str) -> None:
    doc = case("resource-health-unavailable")
    context = doc["data"]["alertContext"]
    context["properties"]["currentHealthStatus"] = health
    context["status"] = status
    assert parse_one(doc).action == action


def test_other_resource_health_monitoring_service_spelling_is_the_same_thing() -> None:
    doc = case("resource-health-unavailable")
    essentials(doc)["monitoringService"] = "ResourceHealth"
    assert parse_one(doc).identity == parse_one(case("resource-health-unavailable")).identity


@pytest.mark.parametrize(
    ("stage", "status", "action"),
    [
        ("Active", "Active", "trigger"),
        ("Resolved", "Resolved", "resolve"),
        ("RCA", "Active", "resolve"),
        ("Planned", "Active", "trigger"),
        ("Complete", "Active", "resolve"),
        ("Canceled", "Active", "resolve"),
    ],
)
def test_service_health_stage_decides_the_action(stage: str, status: str, action: str) -> None:
    doc = case("service-health-incident-active")
    doc["data"]["alertContext"]["properties"]["stage"] = stage
    doc["data"]["alertContext"]["status"] = status
    alert = parse_one(doc)
    assert alert.action == action
    assert alert.identity == "service-health/aaaaaaaa-0000-4000-8000-000000000001/EX4M-PL3"


def test_service_health_without_tracking_id_falls_back_to_the_alert_instance() -> None:
    doc = case("service-health-incident-active")
    del doc["data"]["alertContext"]["properties"]["trackingId"]
    alert = parse_one(doc)
    assert alert.identity == essentials(doc)["alertId"] and alert.action == "trigger"


def test_the_action_groups_test_sample_is_a_test_that_triggers() -> None:
    alert = parse_one(case("test-action-group"))
    assert alert.test and alert.action == "trigger"
    for name in ("metric-fired", "resource-health-unavailable", "service-health-incident-active"):
        assert not parse_one(case(name)).test


def test_the_synthetic_service_health_test_triggers_although_its_sample_says_resolved() -> None:
    doc = case("service-health-incident-resolved")
    doc["data"]["alertContext"]["properties"]["IsSynthetic"] = "True"
    alert = parse_one(doc)
    assert alert.test and alert.action == "trigger"


def test_a_test_sample_of_another_kind_is_recognised_by_its_subscription() -> None:
    doc = case("resource-health-unavailable")
    e = essentials(doc)
    e["alertId"] = "/subscriptions/11111111-1111-1111-1111-111111111111/providers/Microsoft.AlertsManagement/alerts/x"
    e["alertTargetIDs"] = [
        "/subscriptions/11111111-1111-1111-1111-111111111111/resourcegroups/test-RG/providers/"
        "microsoft.compute/virtualmachines/test-VM"
    ]
    assert parse_one(doc).test


def test_links_use_the_routes_portal_and_keep_only_human_search_links() -> None:
    alert = parse_one(case("log-alerts-v2-fired"), azure.Options(portal_url="https://portal.azure.us/"))
    hrefs = [link.href for link in alert.links]
    assert hrefs[0].startswith("https://portal.azure.us/#blade/Microsoft_Azure_Monitoring/AlertDetailsTemplateBlade")
    assert hrefs[1].startswith("https://portal.azure.us/#resource/subscriptions/")
    assert not any("api.loganalytics.io" in h for h in hrefs)
    assert alert.client_url == hrefs[0]


def test_the_portal_option_must_be_https() -> None:
    assert formats.option_problems("azure", {"portal_url": "http://portal.azure.com"})
    assert formats.option_problems("azure", {"severity": "critical"})  # unknown option
    assert formats.option_problems("azure", {"activity_log_severity": "warning"}) == []


def test_summary_falls_back_to_the_condition_when_there_is_no_description() -> None:
    expected = "edge-storage-egress: Egress (Total) > 47658: 50101 (stedgeexample)"
    assert parse_one(case("metric-minimal")).summary == expected
    log_summary = str(parse_one(case("log-alerts-v2-fired")).summary)
    assert log_summary.startswith("orders-api-5xx-rate: Failed (Total) > 25: 61.0")


def test_without_alert_id_the_rule_on_its_target_is_the_identity() -> None:
    doc = case("metric-fired")
    del essentials(doc)["alertId"]
    alert = parse_one(doc)
    assert alert.identity.startswith("rule/checkout-vm-cpu-high//subscriptions/")
    assert alert.client_url is None


@pytest.mark.parametrize(
    "schema", ["Microsoft.Insights/activityLogs", "AzureMonitorMetricAlert", "AIP Budget Notification", None]
)
def test_other_azure_schemas_are_a_clear_400(schema: str | None) -> None:
    with pytest.raises(BadRequest):
        azure.parse({"schemaId": schema, "data": {"status": "Activated", "context": {}}}, CTX)


def test_old_azure_schemas_are_detected_so_the_sender_hears_about_the_common_schema() -> None:
    doc = {"schemaId": "Microsoft.Insights/activityLogs", "data": {"status": "Activated", "context": {}}}
    assert azure.detect(doc, {})
    assert not azure.detect({"schemaId": "something else", "data": {}}, {})
    assert not azure.detect([case("metric-fired")], {})


@pytest.mark.parametrize(
    "body",
    [
        [],
        "text",
        {"schemaId": "azureMonitorCommonAlertSchema"},
        {"schemaId": "azureMonitorCommonAlertSchema", "data": {"essentials": []}},
        {"schemaId": "azureMonitorCommonAlertSchema", "data": {"essentials": {"x": 1}}},
    ],
)
def test_unusable_bodies_are_a_400(body: Any) -> None:
    with pytest.raises(BadRequest):
        azure.parse(body, CTX)


JUNK: list[Any] = [None, "", 12345, {"a": 1}, ["x"], "x" * 100_000, "ünïcødé ✓ 警报", True]


@pytest.mark.parametrize("junk", JUNK, ids=[repr(j)[:20] for j in JUNK])
@pytest.mark.parametrize(
    "field",
    [
        "alertRule",
        "description",
        "severity",
        "alertTargetIDs",
        "configurationItems",
        "firedDateTime",
        "resolvedDateTime",
        "monitoringService",
        "signalType",
        "targetResourceType",
        "originAlertId",
    ],
)
def test_hostile_essentials_never_break_parsing(field: str, junk: Any) -> None:
    doc = case("metric-resolved")
    essentials(doc)[field] = copy.deepcopy(junk)
    alert = parse_one(doc)
    assert alert.summary and len(alert.summary) <= 1024
    assert alert.identity == essentials(doc)["alertId"]


@pytest.mark.parametrize("junk", JUNK, ids=[repr(j)[:20] for j in JUNK])
@pytest.mark.parametrize(
    "name",
    ["log-alerts-v2-fired", "log-analytics-v1-sev0", "resource-health-unavailable", "service-health-incident-active"],
)
def test_hostile_alert_contexts_never_break_parsing(name: str, junk: Any) -> None:
    whole = case(name)
    whole["data"]["alertContext"] = copy.deepcopy(junk)
    assert parse_one(whole).summary
    for key in list(case(name)["data"]["alertContext"]):
        doc = case(name)
        doc["data"]["alertContext"][key] = copy.deepcopy(junk)
        alert = parse_one(doc)
        assert alert.summary and len(alert.summary) <= 1024 and alert.source
