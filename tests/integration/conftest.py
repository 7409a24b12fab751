"""Integration fixtures: the template's queues and table in moto (in process), the real handlers."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from pdrelay.local.emulator import EmulatorServer
from pdrelay.local.runtime import FakeLambdaContext
from pdrelay.local.stack import create_resources
from pdrelay.local.template import read_spec
from pdrelay.timeutil import ManualClock
from tests.conftest import ROOT, TOKEN

SPEC = read_spec(ROOT / "template.yaml")


@dataclass
class Aws:
    sqs: Any
    dynamodb: Any
    queue_url: str
    dlq_url: str
    table_name: str

    def delayed(self) -> int:
        """Messages put back on the alert queue with a delay (not receivable yet)."""
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
        )
        return int(attrs["Attributes"]["ApproximateNumberOfMessagesDelayed"])

    def put_back(self) -> list[tuple[str, dict[str, Any]]]:
        """The messages put back on the alert queue (body, attributes: a deferred copy's slot), as
        received once their delay has passed (SQS's clock moved past it; the test's is not)."""
        import time

        import time_machine

        with time_machine.travel(time.time() + 901, tick=False):
            return [(m["Body"], m.get("MessageAttributes", {})) for m in self.drain()]

    def drain(self, url: str | None = None) -> list[dict[str, Any]]:
        """Every message on a queue (received and deleted)."""
        messages: list[dict[str, Any]] = []
        while True:
            got = self.sqs.receive_message(
                QueueUrl=url or self.queue_url,
                MaxNumberOfMessages=10,
                MessageAttributeNames=["All"],
                AttributeNames=["All"],
            )
            batch = got.get("Messages", [])
            if not batch:
                return messages
            messages.extend(batch)
            for m in batch:
                self.sqs.delete_message(QueueUrl=url or self.queue_url, ReceiptHandle=m["ReceiptHandle"])


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    with mock_aws():
        sqs = boto3.client("sqs")
        dynamodb = boto3.client("dynamodb")
        queues, tables = create_resources(SPEC, sqs, dynamodb)
        env = Aws(sqs, dynamodb, queues["AlertQueue"], queues["DeadLetterQueue"], tables["DedupTable"])
        monkeypatch.setenv("PDRELAY_QUEUE_URL", env.queue_url)
        monkeypatch.setenv("PDRELAY_DLQ_URL", env.dlq_url)
        monkeypatch.setenv("PDRELAY_TABLE_NAME", env.table_name)
        monkeypatch.setenv("PDRELAY_TOKEN", TOKEN)
        monkeypatch.setenv("PDRELAY_RETRY_BASE_SECONDS", "0")
        monkeypatch.setenv("PDRELAY_DISPATCH_CONCURRENCY", "1")  # the test's one dispatcher is the fleet
        monkeypatch.setenv("PDRELAY_RATE_LIMIT", "1000")  # tests of pacing set their own limit
        yield env


@pytest.fixture
def clock() -> ManualClock:
    """The handlers' dispatcher reads this clock: it stands at the wall clock's now until the test
    moves it (``clock.advance(seconds)``), so time-dependent rules are tested without waiting."""
    from pdrelay.delivery.dispatcher import set_clock

    frozen = ManualClock()
    set_clock(frozen)
    return frozen


@pytest.fixture(scope="session")
def emulator() -> Iterator[EmulatorServer]:
    server = EmulatorServer().start()
    yield server
    server.stop()


@pytest.fixture
def pagerduty(emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> EmulatorServer:
    emulator.state.reset()
    monkeypatch.setenv("PDRELAY_EVENTS_URL", emulator.url)
    return emulator


Handler = Callable[[dict[str, Any]], dict[str, Any]]


def _invoker(logical_id: str) -> Handler:
    handler = SPEC.functions[logical_id].load_handler()

    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        return handler(event, FakeLambdaContext(logical_id))  # type: ignore[no-any-return]

    return invoke


@pytest.fixture(scope="session")
def ingest() -> Handler:
    return _invoker("IngestFunction")


@pytest.fixture(scope="session")
def dispatch() -> Handler:
    return _invoker("DispatchFunction")


ConfigWriter = Callable[..., None]


@pytest.fixture
def write_config(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> ConfigWriter:
    """``write_config(doc, **env)``: the handlers read ``doc`` (re-read at once, no cache age) with
    these extra environment settings, as after a `pdrelay config push` that has been picked up."""

    def write(doc: dict[str, Any], **env: str) -> None:
        from pdrelay import config
        from pdrelay.delivery.dispatcher import reset_dispatcher
        from pdrelay.settings import get_settings

        path = tmp_path / "pdrelay.json"
        path.write_text(json.dumps(doc))
        monkeypatch.setenv("PDRELAY_CONFIG", str(path))
        monkeypatch.setenv("PDRELAY_CONFIG_MAX_AGE", "0")
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        config.clear_cache()
        reset_dispatcher()

    return write


@pytest.fixture
def configure(write_config: ConfigWriter) -> ConfigWriter:
    """``write_config``, for tests that set their configuration themselves. A module whose tests
    start from a configuration of its own overrides this fixture to write that document first."""
    return write_config
