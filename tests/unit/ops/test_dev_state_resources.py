"""The running local stack's resources, as the operators' commands read them from its dev.json."""

from __future__ import annotations

import json
from pathlib import Path

from pdrelay.ops.resources import from_dev_state

STATE = {"queue_url": "q", "dlq_url": "d", "table_name": "t", "aws_endpoint": "http://127.0.0.1:9000"}


def test_each_service_is_called_at_its_own_emulator(tmp_path: Path) -> None:
    # Given a local stack whose SQS has a moto process of its own
    state = tmp_path / "dev.json"
    state.write_text(json.dumps({**STATE, "aws_endpoints": {"sqs": "http://127.0.0.1:9001"}}))

    # When a command makes its clients
    resources = from_dev_state(state)

    # Then SQS calls go to SQS's emulator, the others to the one for the rest
    assert resources.client("sqs").meta.endpoint_url == "http://127.0.0.1:9001"
    assert resources.client("dynamodb").meta.endpoint_url == "http://127.0.0.1:9000"


def test_a_state_file_with_one_emulator_sends_every_service_there(tmp_path: Path) -> None:
    state = tmp_path / "dev.json"
    state.write_text(json.dumps(STATE))  # as a pdrelay dev from before SQS had its own wrote it

    resources = from_dev_state(state)

    assert resources.client("sqs").meta.endpoint_url == "http://127.0.0.1:9000"
    assert resources.client("dynamodb").meta.endpoint_url == "http://127.0.0.1:9000"
