"""A deployed stack's resources, as the operators' commands read them from its outputs and parameters."""

from __future__ import annotations

from typing import Any

from pdrelay.ops.resources import from_stack


class Stacks:
    def __init__(self, parameters: list[dict[str, str]]) -> None:
        self.parameters = parameters

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        outputs = {"AlertQueueUrl": "q", "DeadLetterQueueUrl": "dlq", "DedupTableName": "t"}
        return {
            "Stacks": [
                {
                    "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()],
                    "Parameters": self.parameters,
                }
            ]
        }


def test_reconcile_finds_the_stack_s_api_key_secret_and_pagerduty_urls() -> None:
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:pd-key-AbCdEf"
    found = from_stack(
        "pdrelay",
        Stacks(
            [
                {"ParameterKey": "ReconcileApiKeySecretArn", "ParameterValue": arn},
                {"ParameterKey": "PagerDutyApiUrl", "ParameterValue": "https://api.eu.pagerduty.com"},
                {"ParameterKey": "EventsApiUrl", "ParameterValue": "https://events.eu.pagerduty.com"},
            ]
        ),
    )
    assert (found.queue_url, found.dlq_url, found.table_name) == ("q", "dlq", "t")
    assert (found.api_key_secret, found.api_url, found.events_url) == (
        arn,
        "https://api.eu.pagerduty.com",
        "https://events.eu.pagerduty.com",
    )


def test_a_stack_deployed_before_reconcile_has_none_of_them() -> None:
    found = from_stack("old", Stacks([]))
    assert (found.api_key_secret, found.api_url, found.events_url) == ("", "", "")
