"""The local stack over HTTP: moto server, the real handlers, the PagerDuty emulator."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from pdrelay.local.stack import LocalStack, StackOptions
from tests.conftest import ROOT, TOKEN


@pytest.fixture(autouse=True)
def _clean_process() -> Iterator[None]:
    """The stack owns the process environment while e2e tests run; leave it alone."""
    yield


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    options = StackOptions(template=ROOT / "template.yaml", port=0, emulator_port=0, token=TOKEN, retry_base_seconds=1)
    with LocalStack(options) as running:
        yield running


class Relay:
    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.url = stack.url
        assert stack.emulator is not None
        self.pd = stack.emulator

    def post(self, path: str, body: Any, token: str | None = TOKEN, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        data = body if isinstance(body, str | bytes) else None
        json_body = None if data is not None else body
        return requests.post(self.url + path, json=json_body, data=data, headers=headers, timeout=10, **kwargs)

    def incidents(self, dedup_key: str) -> list[dict[str, Any]]:
        return [i for i in self.pd.state.snapshot() if i["dedup_key"] == dedup_key]

    def events_for(self, dedup_key: str) -> list[dict[str, Any]]:
        with self.pd.state.lock:
            return [e for e in self.pd.state.events if e["dedup_key"] == dedup_key]

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 40.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        raise AssertionError("condition not met in time")

    def settle(self) -> None:
        """Wait until the alert queue is empty and nothing is in flight."""
        self.wait_until(lambda: not any(self.stack.queue_depths()["AlertQueue"].values()))


@pytest.fixture
def relay(stack: LocalStack) -> Relay:
    return Relay(stack)
