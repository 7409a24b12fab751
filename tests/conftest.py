"""Shared test fixtures: sample events from events/, and a clean process for every test."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"
TOKEN = "example-token-change-me-000001"  # the token in events/apigw-*.json
ROUTING_KEY = "R0UT1NGKEYF0RTESTS00000000000001"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--shift-clock-days",
        type=int,
        default=0,
        metavar="DAYS",
        help="run with the wall clock moved DAYS ahead (time-machine shifts time.time and datetime, "
        "not the monotonic clock, so sleeps and timeouts keep working): a test that pins a "
        "calendar date where the code compares with now fails under it",
    )


def pytest_configure(config: pytest.Config) -> None:
    days = config.getoption("--shift-clock-days")
    if days:
        import time_machine

        traveller = time_machine.travel(datetime.now(UTC) + timedelta(days=days), tick=True)
        traveller.start()
        config.add_cleanup(traveller.stop)


def pytest_report_header(config: pytest.Config) -> str | None:
    days = config.getoption("--shift-clock-days")
    return f"wall clock shifted {days} days ahead: {datetime.now(UTC):%Y-%m-%d}" if days else None


@cache
def _read(name: str) -> str:
    return (EVENTS / name).read_text(encoding="utf-8")


def load_event(name: str) -> Any:
    """A fresh copy of a sample event from events/ (the same files `sam local invoke -e` uses)."""
    return copy.deepcopy(json.loads(_read(name)))


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def reset_pdrelay_caches() -> None:
    from pdrelay import config
    from pdrelay.aws import clear_clients
    from pdrelay.delivery.dispatcher import reset_dispatcher
    from pdrelay.delivery.events_api import forget_pools
    from pdrelay.ingest.auth import forget_counts
    from pdrelay.policy.heartbeats import forget_contacts
    from pdrelay.settings import get_settings

    get_settings.cache_clear()
    config.clear_cache()
    clear_clients()
    reset_dispatcher()
    forget_counts()
    forget_contacts()
    forget_pools()


@pytest.fixture(autouse=True)
def _clean_process(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Any:
    from pdrelay.delivery.dispatcher import set_clock

    # Never the user's own `pdrelay dev` (its state file, its log file): a folder of the test run's.
    monkeypatch.setenv("PDRELAY_STATE_DIR", str(tmp_path_factory.getbasetemp() / "pdrelay-state"))

    for name in (
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_SQS",
        "AWS_PROFILE",
        "PDRELAY_CONFIG",
        "PDRELAY_QUEUE_URL",
        "PDRELAY_DLQ_URL",
        "PDRELAY_TABLE_NAME",
        "PDRELAY_EVENTS_URL",
        "PDRELAY_ROUTING_KEY",
        "PDRELAY_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "pdrelay")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "pdrelay")
    reset_pdrelay_caches()
    yield
    reset_pdrelay_caches()
    set_clock(None)
