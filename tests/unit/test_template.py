"""template.yaml keeps the properties the design depends on."""

from __future__ import annotations

from typing import Any

from pdrelay.local.template import load_template, read_spec
from tests.conftest import ROOT

TEMPLATE = ROOT / "template.yaml"


def resources() -> dict[str, Any]:
    return load_template(TEMPLATE)["Resources"]


def test_dispatch_reports_partial_batch_failures_and_is_bounded() -> None:
    spec = read_spec(TEMPLATE)
    source = spec.functions["DispatchFunction"].sqs_source
    assert source is not None
    assert source.report_batch_item_failures
    assert source.max_concurrency >= 2


def test_visibility_timeout_is_at_least_six_times_the_dispatch_timeout() -> None:
    spec = read_spec(TEMPLATE)
    dispatch = spec.functions["DispatchFunction"]
    queue = spec.queues[dispatch.sqs_source.queue]  # type: ignore[union-attr]
    assert int(queue.attributes["VisibilityTimeout"]) >= 6 * dispatch.timeout
    assert queue.dead_letter_target == "DeadLetterQueue"


def test_table_has_ttl_point_in_time_recovery_and_on_demand_billing() -> None:
    table = resources()["DedupTable"]["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["TimeToLiveSpecification"]["Enabled"] is True
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True


def test_runtime_is_python313_on_arm64() -> None:
    function_globals = load_template(TEMPLATE)["Globals"]["Function"]
    assert function_globals["Runtime"] == "python3.13"
    assert function_globals["Architectures"] == ["arm64"]


def _walk_statements(policies: list[Any]) -> list[dict[str, Any]]:
    found = []
    for policy in policies:
        if isinstance(policy, dict) and "Statement" in policy:
            found.extend(policy["Statement"])
    return found


def test_no_wildcard_or_full_access_policies() -> None:
    for name, resource in resources().items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        policies = resource["Properties"].get("Policies", [])
        for policy in policies:
            assert not (isinstance(policy, str) and "FullAccess" in policy), name
        for statement in _walk_statements(policies):
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert all("*" not in a for a in actions), name
            assert statement["Resource"] != "*", name


def test_the_dashboard_is_valid_json_and_uses_the_metric_names_the_code_emits() -> None:
    import json
    import re

    from pdrelay import observability

    body = resources()["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    rendered = re.sub(r"\$\{[^}]+\}", "x", body)
    dashboard = json.loads(rendered)
    assert len(dashboard["widgets"]) >= 6
    emitted = {observability.ALERTS_RECEIVED, observability.EVENTS_SENT, observability.EVENTS_SKIPPED,
               observability.DELIVERY_FAILED, observability.EVENTS_DEFERRED, observability.DELIVERY_LATENCY}
    for name in emitted:
        assert name in rendered, name


def test_alarms_watch_metrics_the_code_emits_and_can_notify_a_topic() -> None:
    from pdrelay import observability

    alarms = {k: v["Properties"] for k, v in resources().items() if v["Type"] == "AWS::CloudWatch::Alarm"}
    assert {"DeadLetterAlarm", "OldestAlertAlarm", "DispatchErrorsAlarm", "ThrottledAlarm"} <= set(alarms)
    own = {p["MetricName"] for p in alarms.values() if p["Namespace"] == "pdrelay"}
    assert own <= {observability.DELIVERY_FAILED, observability.EVENTS_DEFERRED}
    assert all("AlarmActions" in p for p in alarms.values())


def test_every_function_in_the_template_has_a_handler_that_loads() -> None:
    spec = read_spec(TEMPLATE)
    assert {"IngestFunction", "DispatchFunction", "RedriveFunction", "SweepFunction"} <= set(spec.functions)
    for function in spec.functions.values():
        assert callable(function.load_handler())
