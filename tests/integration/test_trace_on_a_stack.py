"""`pdrelay trace --stack NAME` against moto: the stack's functions' log groups are found from its
resources, the real handlers' log lines (as Lambda writes them to those groups) come back through
Logs Insights' start_query/get_query_results, and the state comes from the stack's table.

moto's Logs Insights ignores the query's ``filter`` (every line of the groups comes back): the
timeline's own selection by dedup key is what keeps another alert's lines out here."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import boto3
import pytest

from pdrelay.cli.trace import run
from pdrelay.local.emulator import EmulatorServer
from tests.integration.conftest import Aws, Handler
from tests.integration.policy_harness import alertmanager, configured_with, dispatch_all, post, shop_doc

configure = configured_with(shop_doc)
GROUPS = {"IngestLogGroup": "/aws/lambda/pdrelay-Ingest-1", "DispatchLogGroup": "/aws/lambda/pdrelay-Dispatch-1"}


def make_stack(aws: Aws) -> Any:
    cloudformation = boto3.client("cloudformation")
    template = {
        "Parameters": {"MaxReceiveCount": {"Type": "Number", "Default": 4}},
        "Resources": {
            logical: {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": name}}
            for logical, name in GROUPS.items()
        },
        "Outputs": {
            "AlertQueueUrl": {"Value": aws.queue_url},
            "DeadLetterQueueUrl": {"Value": aws.dlq_url},
            "DedupTableName": {"Value": aws.table_name},
        },
    }
    cloudformation.create_stack(StackName="pdrelay-test", TemplateBody=json.dumps(template))
    return cloudformation


def ship(logs: Any, group: str, text: str) -> None:
    """What Lambda does with a function's standard error: each line an event of its log group."""
    lines = [ln for ln in text.splitlines() if ln.startswith("{")]
    logs.create_log_stream(logGroupName=group, logStreamName="2026/03/01/[$LATEST]abc")
    now = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName=group,
        logStreamName="2026/03/01/[$LATEST]abc",
        logEvents=[{"timestamp": now + i, "message": ln} for i, ln in enumerate(lines)],
    )


def test_trace_on_a_stack_reads_its_log_groups_and_its_table(
    aws: Aws,
    pagerduty: EmulatorServer,
    ingest: Handler,
    configure: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cloudformation = make_stack(aws)
    logs = boto3.client("logs")
    capsys.readouterr()
    status, accepted = post(ingest, "/v1/alerts/alertmanager", alertmanager(severity="critical"))
    _other = post(ingest, "/v1/alerts/alertmanager", alertmanager(severity="warning"))
    assert status == 202
    key = accepted["alerts"][0]["dedup_key"]
    ship(logs, GROUPS["IngestLogGroup"], capsys.readouterr().err)
    pagerduty.state.set_faults([{"mode": "status", "status": 400, "count": 1}])
    dispatch_all(aws)
    ship(logs, GROUPS["DispatchLogGroup"], capsys.readouterr().err)

    args = argparse.Namespace(key=key, stack="pdrelay-test", since="1h", log_file=None, route=None, json=True)
    found = run(args, cloudformation=cloudformation, logs=logs)

    assert found.source == "stack pdrelay-test (2 log groups)"
    assert (found.taken_as, found.dedup_keys) == ("dedup key", [key])
    kinds = [(s.kind, s.destination) for s in found.steps]
    assert kinds[0] == ("accepted", None)
    # one destination's trigger met the 400 (whichever was dispatched first), the other's went through
    assert sorted(kind for kind, _ in kinds[1:]) == ["dead-lettered", "sent"]
    assert {where for _, where in kinds[1:]} == {"team", "platform"}
    assert "→ team (rule critical-to-both), platform (rule critical-to-both)" in found.steps[0].text
    assert all(s.dedup_key in (key, None) for s in found.steps)  # the other alert's lines left out
    states = {s["destination"]: s for s in found.states}
    assert set(states) == {"team", "platform"}
    assert sorted(s["delivered"] for s in states.values()) == [False, True]
    assert all(s["routing_key"].startswith("…") for s in states.values())
