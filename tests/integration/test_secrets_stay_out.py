"""Routing keys and tokens never appear in logs or metrics while alerts flow through both handlers."""

from __future__ import annotations

import json

import pytest

from pdrelay.local.emulator import EmulatorServer
from tests.conftest import ROUTING_KEY, TOKEN, load_event
from tests.integration.conftest import Aws, Handler


def test_no_secret_in_any_log_line_or_metric(
    aws: Aws,
    pagerduty: EmulatorServer,
    ingest: Handler,
    dispatch: Handler,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("PDRELAY_ROUTING_KEY", ROUTING_KEY)
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    assert ingest(load_event("apigw-alertmanager-firing.json"))["statusCode"] == 202
    wrong = load_event("apigw-alertmanager-firing.json")
    wrong["headers"]["authorization"] = "Bearer " + TOKEN[:-1] + "X"
    assert ingest(wrong)["statusCode"] == 401
    (message,) = aws.drain()
    record = load_event("sqs-dispatch-batch.json")["Records"][0]
    record["body"] = message["Body"]
    assert dispatch({"Records": [record]}) == {"batchItemFailures": []}
    assert pagerduty.state.snapshot()  # it really went through
    output = capsys.readouterr()
    log_records = "\n".join(json.dumps(r.__dict__, default=str) for r in caplog.records)
    captured = output.out + output.err + log_records
    assert '"AlertsAccepted"' in captured and '"EventsSent"' in captured  # metrics were emitted
    assert "dedup_key" in captured  # and logs were written
    for secret in (ROUTING_KEY, TOKEN, TOKEN[:-1] + "X"):
        assert secret not in captured
    assert json.loads(message["Body"])["routing_key"] == ROUTING_KEY  # the queue itself must carry it
