"""template.yaml grants least privilege and protects data at rest, in transit and in the logs.

Every permission in the template is walked: IAM roles (trust and inline policies, managed policy
ARNs), stand-alone IAM policies, SAM functions' ``Policies`` and queue policies. An ``Allow``
statement may name neither a wildcard action (``*``, ``sqs:*``, ``sqs:Get*``) nor a wildcard
resource; the one exception is X-Ray's write actions, which have no resource-level permissions
(active tracing needs them on ``*``). ``Deny`` statements may be broad: that only takes rights away.
SAM policy templates and AWS managed policies are refused: both grant on ``*`` or more than the
code uses, and a function without a role of its own gets SAM's ``AWSLambdaBasicExecutionRole``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pdrelay.local.template import load_template
from tests.conftest import ROOT

TEMPLATE = ROOT / "template.yaml"

# Write-only X-Ray actions Lambda's active tracing needs; X-Ray has no resource-level permissions.
XRAY_EXCEPTION = frozenset({"xray:PutTraceSegments", "xray:PutTelemetryRecords"})
# AWS managed policies a role may attach. None: each grants on "*" (AWSLambdaBasicExecutionRole,
# AWSXrayWriteOnlyAccess, AWSLambdaSQSQueueExecutionRole) and the inline statements cover them.
ALLOWED_MANAGED_POLICIES: frozenset[str] = frozenset()
# What an HTTP API access log line may never carry: headers, query strings, bodies, authorizer data.
FORBIDDEN_IN_ACCESS_LOG = ("$request.", "querystring", "header", "$input", "$context.authorizer", "requestOverride")


def template() -> dict[str, Any]:
    return load_template(TEMPLATE)


def resources(kind: str | None = None) -> dict[str, dict[str, Any]]:
    found = template()["Resources"]
    return {name: r for name, r in found.items() if kind is None or r["Type"] == kind}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def render(value: Any) -> str:
    """An intrinsic as the text it stands for, with every ``${...}``/Ref/GetAtt as ``<ref>``."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Sub" in value:
        text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
        return re.sub(r"\$\{[^}]+\}", "<ref>", text)
    if isinstance(value, dict) and ("Ref" in value or "Fn::GetAtt" in value):
        return "<ref>"
    return json.dumps(value)


@dataclass(frozen=True)
class Statement:
    where: str
    doc: dict[str, Any]

    @property
    def allows(self) -> bool:
        return bool(self.doc.get("Effect") == "Allow")

    @property
    def actions(self) -> list[str]:
        return [str(a) for a in as_list(self.doc.get("Action", []))]

    @property
    def resources(self) -> list[Any]:
        return as_list(self.doc.get("Resource", []))


def documents() -> Iterator[tuple[str, dict[str, Any]]]:
    """Every IAM policy document in the template, named by where it is."""
    for name, resource in resources().items():
        props = resource.get("Properties") or {}
        kind = resource["Type"]
        if kind == "AWS::IAM::Role":
            for policy in props.get("Policies") or []:
                yield f"{name}/{policy.get('PolicyName')}", policy["PolicyDocument"]
        elif kind in ("AWS::IAM::RolePolicy", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::SQS::QueuePolicy"):
            yield name, props["PolicyDocument"]
        elif kind == "AWS::Serverless::Function":
            for index, policy in enumerate(as_list(props.get("Policies") or [])):
                if isinstance(policy, dict) and "Statement" in policy:
                    yield f"{name}/Policies[{index}]", policy


def statements() -> list[Statement]:
    return [Statement(where, doc) for where, document in documents() for doc in as_list(document["Statement"])]


def test_the_walk_finds_the_permissions_it_is_meant_to_check() -> None:
    # Given the template, the walk sees the function roles' grants (else the checks below prove nothing).
    allowed = {a for s in statements() if s.allows for a in s.actions}
    assert {"sqs:SendMessage", "dynamodb:GetItem", "ssm:GetParameter", "logs:PutLogEvents"} <= allowed


def test_no_allow_statement_names_a_wildcard_action() -> None:
    bad = [(s.where, a) for s in statements() if s.allows for a in s.actions if "*" in a]
    assert not bad
    assert not [s.where for s in statements() if s.allows and "NotAction" in s.doc]


def test_no_allow_statement_names_a_wildcard_resource_but_the_documented_xray_exception() -> None:
    for statement in statements():
        if not statement.allows:
            continue
        assert "NotResource" not in statement.doc, statement.where
        wildcards = [render(r) for r in statement.resources if "*" in render(r)]
        if wildcards:
            # X-Ray write actions only, in a statement of their own, on "*" (no narrower resource exists).
            assert set(statement.actions) <= XRAY_EXCEPTION, (statement.where, wildcards)
            assert wildcards == ["*"], statement.where


def test_functions_use_no_sam_policy_templates_and_each_runs_under_a_role_of_its_own() -> None:
    roles = resources("AWS::IAM::Role")
    seen: list[str] = []
    for name, function in resources("AWS::Serverless::Function").items():
        props = function["Properties"]
        # No Policies at all: with an explicit Role, SAM would ignore them anyway.
        assert "Policies" not in props, f"{name}: SAM policy templates or managed policies"
        role = props.get("Role")
        assert isinstance(role, dict) and "Fn::GetAtt" in role, f"{name}: no role of its own (SAM would add one)"
        role_name = role["Fn::GetAtt"][0]
        assert role_name in roles, name
        seen.append(role_name)
    assert len(seen) == len(set(seen)), "a role is shared between functions"
    assert "Policies" not in (template().get("Globals") or {}).get("Function", {})


def possible_values(value: Any) -> list[Any]:
    """What a property may be once deployed: itself, or every allowed value of the parameter it refers to."""
    if isinstance(value, dict) and "Ref" in value:
        parameter = (template().get("Parameters") or {}).get(value["Ref"], {})
        return list(parameter.get("AllowedValues") or [parameter.get("Default")])
    return [value]


def managed_policies() -> Iterator[tuple[str, str]]:
    """Every AWS managed policy the deployed stack would attach, by the name after ``policy/``:
    roles' ``ManagedPolicyArns``, managed policies named in a function's ``Policies``, and those SAM
    adds to a role it generates (for a function without ``Role``)."""
    tracing = (template().get("Globals") or {}).get("Function", {}).get("Tracing")
    for name, resource in resources().items():
        props = resource.get("Properties") or {}
        if resource["Type"] == "AWS::IAM::Role":
            for arn in props.get("ManagedPolicyArns") or []:
                yield name, render(arn).rsplit("/", 1)[-1]
        elif resource["Type"] == "AWS::Serverless::Function":
            for policy in as_list(props.get("Policies") or []):
                if isinstance(policy, str):
                    yield name, policy.rsplit("/", 1)[-1]
            if "Role" not in props:
                yield name, "AWSLambdaBasicExecutionRole"
                if "Active" in possible_values(props.get("Tracing", tracing)):
                    yield name, "AWSXrayWriteOnlyAccess"


def test_no_managed_policy_outside_the_allow_list_is_attached() -> None:
    attached = list(managed_policies())
    assert not [(where, policy) for where, policy in attached if policy not in ALLOWED_MANAGED_POLICIES]


def test_roles_may_be_assumed_by_lambda_only() -> None:
    roles = resources("AWS::IAM::Role")
    assert roles
    for name, role in roles.items():
        trust = as_list(role["Properties"]["AssumeRolePolicyDocument"]["Statement"])
        assert [s["Principal"] for s in trust] == [{"Service": "lambda.amazonaws.com"}] * len(trust), name
        assert all(as_list(s["Action"]) == ["sts:AssumeRole"] for s in trust), name


def role_statements(role: str) -> list[dict[str, Any]]:
    """The statements a role's inline policies and the policies attached to it grant."""
    found = [
        s
        for p in resources()[role]["Properties"].get("Policies") or []
        for s in as_list(p["PolicyDocument"]["Statement"])
    ]
    for policy in [*resources("AWS::IAM::RolePolicy").values(), *resources("AWS::IAM::Policy").values()]:
        props = policy["Properties"]
        if props.get("RoleName") == {"Ref": role} or {"Ref": role} in (props.get("Roles") or []):
            found.extend(as_list(props["PolicyDocument"]["Statement"]))
    return found


def function_log_group(function: str) -> str:
    """The log group named after ``function`` (``/aws/lambda/${Function}``), where Lambda writes."""
    groups = [
        name
        for name, group in resources("AWS::Logs::LogGroup").items()
        if "${" + function + "}" in str(group["Properties"].get("LogGroupName", ""))
    ]
    assert len(groups) == 1, f"{function}: {groups}"
    return groups[0]


def test_each_function_may_write_only_to_its_own_log_group() -> None:
    for name, function in resources("AWS::Serverless::Function").items():
        group = function_log_group(name)
        assert function["Properties"].get("LoggingConfig", {}).get("LogGroup") is None, name
        granted = [
            s
            for s in role_statements(function["Properties"]["Role"]["Fn::GetAtt"][0])
            if any(str(a).startswith("logs:") for a in as_list(s["Action"]))
        ]
        assert granted, name
        for statement in granted:
            assert set(as_list(statement["Action"])) <= {"logs:CreateLogStream", "logs:PutLogEvents"}, name
            assert as_list(statement["Resource"]) == [{"Fn::GetAtt": [group, "Arn"]}], name


def test_every_queue_is_encrypted_and_refuses_requests_without_tls() -> None:
    policies = resources("AWS::SQS::QueuePolicy")
    queues = resources("AWS::SQS::Queue")
    assert queues
    for name, queue in queues.items():
        props = queue["Properties"]
        assert props.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in props, name
        mine = [p["Properties"] for p in policies.values() if {"Ref": name} in p["Properties"]["Queues"]]
        assert len(mine) == 1, f"{name}: no queue policy"
        deny = [s for s in as_list(mine[0]["PolicyDocument"]["Statement"]) if s["Effect"] == "Deny"]
        assert any(
            as_list(s["Action"]) == ["sqs:*"]
            and s["Principal"] in ("*", {"AWS": "*"})
            and {"Fn::GetAtt": [name, "Arn"]} in as_list(s["Resource"])
            and str(s["Condition"]["Bool"]["aws:SecureTransport"]).lower() == "false"
            for s in deny
        ), f"{name}: no deny of sqs:* without TLS"


def test_the_table_is_encrypted_with_a_kms_key_and_recoverable_to_a_point_in_time() -> None:
    for name, table in resources("AWS::DynamoDB::Table").items():
        props = table["Properties"]
        assert props["SSESpecification"]["SSEEnabled"] is True, name
        assert props["SSESpecification"].get("SSEType", "KMS") == "KMS", name
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True, name


def _access_log_settings() -> dict[str, Any]:
    apis = resources("AWS::Serverless::HttpApi")
    assert len(apis) == 1
    settings = next(iter(apis.values()))["Properties"].get("AccessLogSettings")
    assert settings, "the HTTP API writes no access log"
    return dict(settings)


def test_the_http_api_writes_access_logs_to_a_log_group_of_its_own_with_retention() -> None:
    destination = _access_log_settings()["DestinationArn"]
    assert isinstance(destination, dict) and "Fn::GetAtt" in destination
    group_name = destination["Fn::GetAtt"][0]
    group = resources("AWS::Logs::LogGroup")[group_name]["Properties"]
    assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert group_name not in {function_log_group(name) for name in resources("AWS::Serverless::Function")}


def test_access_log_lines_are_json_with_what_operators_need_and_never_the_query_string_or_headers() -> None:
    text = _access_log_settings()["Format"]
    assert isinstance(text, str)
    line = json.loads(text)  # one JSON object per request
    values = " ".join(str(v) for v in line.values())
    for needed in (
        "$context.requestId",
        "$context.routeKey",
        "$context.status",
        "$context.identity.sourceIp",
        "$context.identity.userAgent",
        "$context.responseLatency",
        "$context.integrationErrorMessage",
    ):
        assert needed in values, needed
    for forbidden in FORBIDDEN_IN_ACCESS_LOG:
        assert forbidden.lower() not in text.lower(), forbidden


def test_every_function_has_reserved_concurrency() -> None:
    params = template()["Parameters"]
    for name, function in resources("AWS::Serverless::Function").items():
        value = function["Properties"].get("ReservedConcurrentExecutions")
        assert value is not None, name
        if isinstance(value, dict):
            value = params[value["Ref"]]["Default"]
        assert int(value) >= 1, name


def test_every_log_group_has_a_retention() -> None:
    groups = resources("AWS::Logs::LogGroup")
    assert len(groups) >= len(resources("AWS::Serverless::Function")) + 1  # one per function, one for the API
    for name, group in groups.items():
        assert group["Properties"].get("RetentionInDays") == {"Ref": "LogRetentionDays"}, name
