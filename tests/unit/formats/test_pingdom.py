"""Pingdom state change webhooks: check identity, every state, importance, times, hostile fields."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from pdrelay.errors import BadRequest
from pdrelay.formats import ParseContext, Parsed, pingdom
from pdrelay.models import Alert
from tests.formats_harness import RECEIVED, load_case

CTX = ParseContext(received_at=RECEIVED)


def case(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = load_case("pingdom", name).doc
    return doc


def parse_one(doc: Any) -> Alert:
    (alert,) = pingdom.parse(doc, CTX).alerts
    return alert


@pytest.mark.parametrize(("down", "up"), [("http-down", "http-up"), ("transaction-failing", "transaction-success")])
def test_down_and_up_of_a_check_share_its_check_id(down: str, up: str) -> None:
    first, second = parse_one(case(down)), parse_one(case(up))
    assert first.identity == second.identity == str(case(down)["check_id"])
    assert (first.action, second.action) == ("trigger", "resolve")
    assert second.occurred_at > first.occurred_at


@pytest.mark.parametrize(
    ("state", "action"),
    [
        ("DOWN", "trigger"),
        ("down", "trigger"),
        ("FAILING", "trigger"),
        ("FAILURE", "trigger"),
        ("UP", "resolve"),
        ("SUCCESS", "resolve"),
    ],
)
def test_every_paging_state(state: str, action: str) -> None:
    doc = case("http-down")
    doc["current_state"] = state
    assert parse_one(doc).action == action


@pytest.mark.parametrize("state", ["UNKNOWN", "PAUSED", "unconfirmed_down"])
def test_other_states_are_noted_and_page_no_one(state: str) -> None:
    doc = case("http-down")
    doc["current_state"] = state
    parsed = pingdom.parse(doc, CTX)
    assert isinstance(parsed, Parsed) and parsed.alerts == []
    assert state in parsed.notes[0]


@pytest.mark.parametrize("state", [None, "", {"x": 1}, ["DOWN"]])
def test_a_missing_state_is_a_400(state: Any) -> None:
    doc = case("http-down")
    doc["current_state"] = state
    with pytest.raises(BadRequest, match="invalid Pingdom webhook"):
        pingdom.parse(doc, CTX)


@pytest.mark.parametrize(
    ("importance", "severity"),
    [
        ("HIGH", "critical"),
        ("high", "critical"),
        ("LOW", "warning"),
        (None, "error"),
        ("MEDIUM", "error"),
        (3, "error"),
    ],
)
def test_importance_sets_severity(importance: Any, severity: str) -> None:
    doc = case("http-down")
    doc["importance_level"] = importance
    assert parse_one(doc).severity == severity


def test_times_come_from_the_epoch_then_the_utc_string_then_receipt() -> None:
    assert parse_one(case("http-down")).occurred_at.isoformat() == "2026-11-24T09:06:41+00:00"
    assert parse_one(case("tcp-down-minimal")).occurred_at.isoformat() == "2026-11-24T09:12:55+00:00"
    doc = case("tcp-down-minimal")
    doc["state_changed_utc_time"] = "yesterday"
    assert parse_one(doc).occurred_at == RECEIVED
    doc = case("http-down")
    doc["state_changed_timestamp"] = 0
    assert parse_one(doc).occurred_at.isoformat() == "2026-11-24T09:06:41+00:00"  # falls back to the string


def test_transaction_checks_have_no_uptime_report_link() -> None:
    assert parse_one(case("http-down")).client_url == "https://my.pingdom.com/app/reports/uptime#check=9100001"
    alert = parse_one(case("transaction-failing"))
    assert alert.client_url is None and alert.links == []


def test_request_headers_and_post_data_never_reach_pagerduty() -> None:
    doc = case("http-down")
    doc["check_params"].update(
        {
            "header": "Authorization:Bearer s3cret",
            "requestheaders": {"X-Api-Key": "k"},
            "postdata": "password=hunter2",
            "auth": "user:pass",
        }
    )
    details = parse_one(doc).custom_details
    assert "s3cret" not in str(details) and "hunter2" not in str(details) and "user:pass" not in str(details)
    assert details["check_params"]["hostname"] == "shop.example.com"
    assert details["check_params"]["basic_auth"] is False


def test_a_check_without_id_is_keyed_by_name_and_without_either_is_a_400() -> None:
    doc = case("http-down")
    del doc["check_id"]
    assert parse_one(doc).identity == "name:Checkout page"
    del doc["check_name"]
    with pytest.raises(BadRequest):
        pingdom.parse(doc, CTX)


def test_detect_is_specific() -> None:
    assert pingdom.detect(case("http-down"), {}) and pingdom.detect(case("transaction-failing"), {})
    assert not pingdom.detect({"check_id": 1}, {})
    assert not pingdom.detect({"current_state": "DOWN", "check_name": "x"}, {})


@pytest.mark.parametrize("body", [[], "DOWN", 5])
def test_non_objects_are_a_400(body: Any) -> None:
    with pytest.raises(BadRequest):
        pingdom.parse(body, CTX)


JUNK: list[Any] = [None, "", 12345, {"a": 1}, ["x"], "x" * 100_000, "ünïcødé ✓ 警报", True]
FIELDS = [
    "check_name",
    "check_type",
    "check_params",
    "tags",
    "previous_state",
    "importance_level",
    "state_changed_timestamp",
    "state_changed_utc_time",
    "long_description",
    "description",
    "first_probe",
    "second_probe",
    "custom_message",
    "version",
]


@pytest.mark.parametrize("junk", JUNK, ids=[repr(j)[:20] for j in JUNK])
@pytest.mark.parametrize("field", FIELDS)
def test_hostile_fields_never_break_parsing(field: str, junk: Any) -> None:
    doc = case("http-down")
    doc[field] = copy.deepcopy(junk)
    alert = parse_one(doc)
    assert alert.summary and len(alert.summary) <= 1024 and alert.source
    assert alert.identity == "9100001"
