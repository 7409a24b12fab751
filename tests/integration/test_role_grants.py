"""Least privilege that still works: every AWS call each function's code makes, driven through the
real handlers against moto (configuration in SSM, credentials in Secrets Manager), is granted to
that function's role in template.yaml. tests/unit/test_template_security.py checks that the roles
grant nothing more."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.client
import pytest

from pdrelay.local.emulator import EmulatorServer
from pdrelay.local.runtime import FakeLambdaContext
from pdrelay.local.template import load_template
from pdrelay.settings import get_settings
from tests.conftest import ROOT, unique
from tests.edge_harness import INLINE, SM_TOKEN, bearer, call, firing, signers_doc
from tests.integration.conftest import Aws, Handler

TEMPLATE = load_template(ROOT / "template.yaml")["Resources"]
AUTHORISED_AS = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}


def granted(function: str) -> set[tuple[str, bool]]:
    """(action, on an index) pairs the function's role allows."""
    role = TEMPLATE[function]["Properties"]["Role"]["Fn::GetAtt"][0]
    documents = [p["PolicyDocument"] for p in TEMPLATE[role]["Properties"].get("Policies") or []]
    documents += [
        r["Properties"]["PolicyDocument"]
        for r in TEMPLATE.values()
        if r["Type"] == "AWS::IAM::RolePolicy" and r["Properties"]["RoleName"] == {"Ref": role}
    ]
    found: set[tuple[str, bool]] = set()
    for document in documents:
        for statement in document["Statement"]:
            if statement["Effect"] != "Allow":
                continue
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            on_index = "/index/" in json.dumps(statement["Resource"])
            found.update((str(a), on_index) for a in actions)
    return found


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, bool]]]:
    calls: list[tuple[str, bool]] = []
    real = getattr(botocore.client.BaseClient, "_make_api_call")  # noqa: B009 - private

    def record(self: Any, name: str, params: dict[str, Any]) -> Any:
        prefix = self.meta.service_model.signing_name
        calls.append((f"{prefix}:{AUTHORISED_AS.get(name, name)}", "IndexName" in params))
        return real(self, name, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", record)
    yield calls


def test_each_function_calls_only_what_its_role_grants(
    aws: Aws,
    pagerduty: EmulatorServer,
    ingest: Handler,
    dispatch: Handler,
    monkeypatch: pytest.MonkeyPatch,
    recorded: list[tuple[str, bool]],
) -> None:
    """The real handlers against moto, configuration in SSM and credentials in Secrets Manager."""
    ssm, secrets = boto3.client("ssm"), boto3.client("secretsmanager")
    ssm.put_parameter(
        Name="/pdrelay/config",
        Type="SecureString",
        Value=json.dumps(
            signers_doc(
                callers=[{"name": "local", "token": INLINE}, {"name": "am", "rate_limit": {"requests": 60}}],
                credentials_secret="secret:pdrelay/iam-callers",
            )
        ),
    )
    secrets.create_secret(
        Name="pdrelay/iam-callers", SecretString=json.dumps({"callers": {"am": {"tokens": [SM_TOKEN]}}})
    )
    monkeypatch.setenv("PDRELAY_CONFIG", "ssm:/pdrelay/config")
    get_settings.cache_clear()
    seen: dict[str, set[tuple[str, bool]]] = {}

    def run(function: str, work: Any) -> None:
        recorded.clear()
        work()
        seen[function] = set(recorded)

    def ingest_work() -> None:
        body = firing()
        assert call(ingest, body, bearer(SM_TOKEN))[0] == 202
        assert call(ingest, body, bearer(SM_TOKEN))[0] == 202  # a repeat: the dispatcher tells it, no replay item
        v2 = {
            "routing_key": "ops",
            "event_action": "trigger",
            "dedup_key": unique("k"),
            "payload": {"summary": "s", "source": "x", "severity": "error"},
        }
        assert (
            call(
                ingest, json.dumps(v2).encode(), {**bearer(INLINE), "idempotency-key": unique("i")}, path="/v2/enqueue"
            )[0]
            == 202
        )
        status, probe, _ = call(ingest, b"", bearer(INLINE), path="/v1/test/ops")
        assert status == 202
        assert call(ingest, b"", bearer(INLINE), path=f"/v1/test/{probe['probe']}", method="GET")[0] == 200

    run("IngestFunction", ingest_work)
    messages = aws.drain()
    assert messages

    def dispatch_work() -> None:
        event = {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": {"ApproximateReceiveCount": "1"},
                    "messageAttributes": {},
                    "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:us-east-1:1:q",
                }
                for m in messages
            ]
        }
        assert dispatch(event)["batchItemFailures"] == []

    run("DispatchFunction", dispatch_work)
    aws.sqs.send_message(QueueUrl=aws.dlq_url, MessageBody=messages[0]["Body"])
    from pdrelay.local.template import read_spec

    spec = read_spec(ROOT / "template.yaml")
    for function, events in (
        (
            "RedriveFunction",
            [{"action": "inspect"}, {"action": "redrive", "route": "ops"}, {"action": "purge", "confirm": True}],
        ),
        ("SweepFunction", [{}]),
    ):
        handler = spec.functions[function].load_handler()
        run(function, lambda h=handler, e=events, f=function: [h(x, FakeLambdaContext(f)) for x in e])
    assert {"IngestFunction", "DispatchFunction", "RedriveFunction", "SweepFunction"} <= set(seen)
    assert ("secretsmanager:GetSecretValue", False) in seen["IngestFunction"]
    assert ("dynamodb:Query", True) in seen["SweepFunction"]
    for function, calls in seen.items():
        allowed = granted(function)
        missing = sorted(f"{a}{' (index)' if idx else ''}" for a, idx in calls if (a, idx) not in allowed)
        assert not missing, f"{function} calls what its role does not grant: {missing}"
