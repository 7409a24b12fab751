"""template.yaml keeps the properties the design depends on."""

from __future__ import annotations

import re
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


def test_tracing_is_a_parameter_off_by_default_and_every_function_follows_it() -> None:
    template = load_template(TEMPLATE)
    parameter = template["Parameters"]["Tracing"]
    assert parameter["Default"] == "PassThrough"
    assert sorted(parameter["AllowedValues"]) == ["Active", "PassThrough"]
    assert "$5.00 per million traces recorded" in " ".join(parameter["Description"].split())
    assert template["Globals"]["Function"]["Tracing"] == {"Ref": "Tracing"}
    functions = [r for r in resources().values() if r["Type"] == "AWS::Serverless::Function"]
    assert functions and not [f for f in functions if "Tracing" in f["Properties"]]  # none overrides it


def _walk_statements(policies: list[Any]) -> list[dict[str, Any]]:
    found = []
    for policy in policies:
        if isinstance(policy, dict) and "Statement" in policy:
            found.extend(policy["Statement"])
        elif isinstance(policy, dict) and "PolicyDocument" in policy:  # an IAM role's inline policy
            found.extend(policy["PolicyDocument"]["Statement"])
    return found


def test_no_wildcard_or_full_access_policies() -> None:
    # tests/unit/test_template_security.py checks every permission in depth; this is the short form.
    walked = 0
    for name, resource in resources().items():
        if resource["Type"] not in ("AWS::Serverless::Function", "AWS::IAM::Role"):
            continue
        policies = resource["Properties"].get("Policies", [])
        for policy in policies:
            assert not (isinstance(policy, str) and "FullAccess" in policy), name
        for statement in _walk_statements(policies):
            walked += 1
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert all("*" not in a for a in actions), name
            if statement["Resource"] == "*":  # X-Ray's write actions only: they have no resource-level permissions
                assert set(actions) <= {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}, name
    assert walked


def test_the_dashboard_is_valid_json_and_uses_the_metric_names_the_code_emits() -> None:
    import json
    import re

    from pdrelay import observability

    body = resources()["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    rendered = re.sub(r"\$\{[^}]+\}", "x", body)
    dashboard = json.loads(rendered)
    assert len(dashboard["widgets"]) >= 6
    emitted = {
        observability.ALERTS_RECEIVED,
        observability.EVENTS_SENT,
        observability.EVENTS_SKIPPED,
        observability.DELIVERY_FAILED,
        observability.EVENTS_DEFERRED,
        observability.DELIVERY_LATENCY,
    }
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


def _route_keys() -> set[str]:
    events = resources()["IngestFunction"]["Properties"]["Events"].values()
    return {f"{e['Properties']['Method']} {e['Properties']['Path']}" for e in events if e["Type"] == "HttpApi"}


def _documented_endpoints() -> set[str]:
    """The endpoints table of the HTTP API page: its rows start with `METHOD /path`."""
    page = (ROOT / "docs" / "http-api.md").read_text(encoding="utf-8")
    return set(re.findall(r"^\| `((?:GET|POST|PUT|DELETE) /[^`]*)` \|", page, re.M))


def test_ingest_serves_every_endpoint_the_docs_list() -> None:
    def shape(key: str) -> str:  # path parameters are named differently in prose and in the template
        return re.sub(r"\{[^}]*\}", "{}", key)

    documented = {shape(key) for key in _documented_endpoints()}
    contract = {"POST /v1/alerts/{}", "POST /v2/enqueue", "POST /v2/change/enqueue", "GET /health"}  # DESIGN.md
    assert contract <= documented
    assert {shape(key) for key in _route_keys()} == documented


def test_the_test_routes_are_throttled_below_the_default_route_settings() -> None:
    api = resources()["HttpApi"]["Properties"]
    default = api["DefaultRouteSettings"]
    assert (default["ThrottlingBurstLimit"], default["ThrottlingRateLimit"]) == (200, 100)
    routes = api["RouteSettings"]
    # A key naming no route fails the deployment ("Unable to find Route by key"): they must match exactly.
    assert set(routes) == {
        "POST /v1/test/{route_name}",
        "GET /v1/test/{probe_id}",
        "POST /v1/heartbeat/{route_name}",
        "GET /v1/alerts/{dedup_key}",
    }
    assert set(routes) <= _route_keys()
    for key, settings in routes.items():
        assert 0 < settings["ThrottlingRateLimit"] < default["ThrottlingRateLimit"], key
        assert 0 < settings["ThrottlingBurstLimit"] < default["ThrottlingBurstLimit"], key
    # Sending a test pages people: its route is the tighter of the two.
    assert (
        routes["POST /v1/test/{route_name}"]["ThrottlingRateLimit"]
        <= routes["GET /v1/test/{probe_id}"]["ThrottlingRateLimit"]
    )


def _default(value: Any) -> int:
    params = load_template(TEMPLATE)["Parameters"]
    return int(params[value["Ref"]]["Default"] if isinstance(value, dict) else value)


def test_the_dispatcher_reserves_at_least_the_concurrency_its_queue_source_may_use() -> None:
    dispatch = resources()["DispatchFunction"]["Properties"]
    reserved = dispatch["ReservedConcurrentExecutions"]
    maximum = dispatch["Events"]["Alerts"]["Properties"]["ScalingConfig"]["MaximumConcurrency"]
    # The same parameter: true for every value a deployer picks, not only the defaults.
    assert reserved == maximum == {"Ref": "DispatchMaxConcurrency"}


def test_reserved_concurrency_defaults_fit_an_account_with_the_default_quota() -> None:
    # Lambda keeps 100 unreserved; new accounts get a quota of 1000 (some far less, until raised).
    reserved = [
        _default(r["Properties"]["ReservedConcurrentExecutions"])
        for r in resources().values()
        if r["Type"] == "AWS::Serverless::Function"
    ]
    assert len(reserved) == 4
    assert sum(reserved) + 100 <= 1000
    assert _default({"Ref": "IngestReservedConcurrency"}) >= 10  # room for bursts of webhooks


def test_the_sweepers_index_grant_names_the_index_the_dedup_module_queries() -> None:
    from pdrelay.table import PENDING_INDEX

    table = resources()["DedupTable"]["Properties"]
    assert PENDING_INDEX in {index["IndexName"] for index in table["GlobalSecondaryIndexes"]}
    statements = _walk_statements(resources()["SweepRole"]["Properties"]["Policies"])
    queries = [s for s in statements if "dynamodb:Query" in s["Action"]]
    assert [q["Resource"] for q in queries] == [{"Fn::Sub": "${DedupTable.Arn}/index/" + PENDING_INDEX}]


def test_the_stack_keeps_its_outputs_and_parameters() -> None:
    doc = load_template(TEMPLATE)
    assert {
        "ApiUrl",
        "IngestFunctionArn",
        "ConfigSource",
        "AlertQueueUrl",
        "DeadLetterQueueUrl",
        "DedupTableName",
        "RedriveFunctionName",
        "DashboardUrl",
    } <= set(doc["Outputs"])
    assert {
        "ConfigParameterName",
        "EventsApiUrl",
        "MaxReceiveCount",
        "DispatchMaxConcurrency",
        "AlarmTopicArn",
        "RateLimitPerMinute",
        "LogLevel",
        "LogRetentionDays",
        "IngestReservedConcurrency",
    } <= set(doc["Parameters"])
