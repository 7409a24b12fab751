"""Uptime Kuma webhooks: monitor identity, every heartbeat status, the UTC heartbeat time, tests,
certificate warnings, options and hostile fields."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from pdrelay import formats
from pdrelay.errors import BadRequest
from pdrelay.formats import ParseContext, Parsed, uptime_kuma
from pdrelay.models import Alert
from tests.formats_harness import RECEIVED, load_case


def case(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = load_case("uptime_kuma", name).doc
    return doc


def run(doc: Any, options: uptime_kuma.Options | None = None) -> Parsed:
    return uptime_kuma.parse(doc, ParseContext(received_at=RECEIVED, options=options or uptime_kuma.Options()))


def parse_one(doc: Any, options: uptime_kuma.Options | None = None) -> Alert:
    (alert,) = run(doc, options).alerts
    return alert


def test_down_and_up_share_the_monitor_id() -> None:
    down, up = parse_one(case("http-down")), parse_one(case("http-up"))
    assert down.identity == up.identity == "14"
    assert (down.action, up.action) == ("trigger", "resolve")
    assert up.occurred_at > down.occurred_at


def test_without_a_monitor_object_the_heartbeats_monitor_id_is_used() -> None:
    doc = case("http-down")
    doc["monitor"] = None
    alert = parse_one(doc)
    assert alert.identity == "14" and alert.summary == "monitor 14 is DOWN: Request failed with status code 503"


@pytest.mark.parametrize(("status", "action"), [(0, "trigger"), ("0", "trigger"), (1, "resolve"), ("1", "resolve")])
def test_down_pages_and_up_resolves(status: Any, action: str) -> None:
    doc = case("http-down")
    doc["heartbeat"]["status"] = status
    assert parse_one(doc).action == action


@pytest.mark.parametrize(("status", "word"), [(2, "PENDING"), (3, "MAINTENANCE")])
def test_pending_and_maintenance_are_noted_not_paged(status: int, word: str) -> None:
    doc = case("http-down")
    doc["heartbeat"]["status"] = status
    parsed = run(doc)
    assert parsed.alerts == [] and word in parsed.notes[0]


@pytest.mark.parametrize("status", [None, 7, -1, "down", True, 1.5])
def test_an_unknown_status_is_a_400(status: Any) -> None:
    doc = case("http-down")
    doc["heartbeat"]["status"] = status
    with pytest.raises(BadRequest, match="status"):
        run(doc)


def test_the_heartbeat_time_is_utc_not_the_servers_local_time() -> None:
    alert = parse_one(case("http-down"))  # time 09:03:27.412 UTC; localDateTime 10:03:27 in Europe/Berlin
    assert alert.occurred_at.isoformat() == "2026-11-24T09:03:27.412000+00:00"


def test_a_heartbeat_time_that_disagrees_with_its_local_time_is_not_trusted() -> None:
    doc = case("http-down")
    doc["heartbeat"]["localDateTime"] = "2026-11-24 09:03:27"  # as if "time" were local already
    assert parse_one(doc).occurred_at == RECEIVED
    doc["heartbeat"]["timezoneOffset"] = "+00:00"  # a UTC server: they agree
    assert parse_one(doc).occurred_at.isoformat().startswith("2026-11-24T09:03:27")


def test_a_negative_offset_is_read_too() -> None:
    doc = case("http-down")
    doc["heartbeat"].update(timezone="America/New_York", timezoneOffset="-05:00", localDateTime="2026-11-24 04:03:27")
    assert parse_one(doc).occurred_at.isoformat().startswith("2026-11-24T09:03:27")


@pytest.mark.parametrize("time", [None, "", "yesterday", 1795510000, {"t": 1}])
def test_an_unusable_time_orders_by_receipt(time: Any) -> None:
    doc = case("http-down")
    doc["heartbeat"]["time"] = time
    assert parse_one(doc).occurred_at == RECEIVED


@pytest.mark.parametrize(
    ("tag", "option", "expected"),
    [
        ("critical", "error", "critical"),
        ("warning", "critical", "warning"),
        (None, "info", "info"),
        ("bogus", "warning", "warning"),
    ],
)
def test_severity_comes_from_a_severity_tag_else_the_route(tag: str | None, option: str, expected: str) -> None:
    doc = case("http-down")
    doc["monitor"]["tags"] = [{"name": "severity", "value": tag}] if tag else []
    assert parse_one(doc, uptime_kuma.Options(severity=option)).severity == expected


def test_the_test_button_is_a_test_with_identity_test() -> None:
    alert = parse_one(case("test-notification"))
    assert alert.test and alert.identity == "test" and alert.action == "trigger"
    assert not parse_one(case("http-down")).test


def test_certificate_expiry_is_noted_by_default_and_paged_at_warning_when_asked() -> None:
    assert run(case("certificate-expiry")).alerts == []
    alert = parse_one(case("certificate-expiry"), uptime_kuma.Options(certificate_expiry="trigger"))
    assert alert.severity == "warning" and alert.action == "trigger" and not alert.test
    assert alert.identity == "certificate/Payments API/https://api.example.com/payments/health"


def test_other_messages_without_heartbeat_are_noted_and_nothing_at_all_is_a_400() -> None:
    assert run({"heartbeat": None, "monitor": None, "msg": "Something else happened"}).notes
    with pytest.raises(BadRequest):
        run({"heartbeat": None, "monitor": None, "msg": None})


def test_base_url_links_the_monitor_page() -> None:
    alert = parse_one(case("http-down"), uptime_kuma.Options(base_url="https://status.example.com/"))
    assert alert.client_url == "https://status.example.com/dashboard/14"
    assert alert.links[0].href == "https://status.example.com/dashboard/14"
    assert parse_one(case("http-down")).client_url is None


def test_options_are_validated() -> None:
    assert formats.option_problems("uptime_kuma", {"base_url": "status.example.com"})
    assert formats.option_problems("uptime_kuma", {"certificate_expiry": "resolve"})
    good = {"severity": "warning", "base_url": "http://kuma.internal:3001"}
    assert formats.option_problems("uptime_kuma", good) == []


def test_the_parent_group_is_the_group() -> None:
    assert parse_one(case("http-down")).group == "Production"
    assert parse_one(case("port-down-older-server")).group is None


def test_detect_is_specific() -> None:
    assert uptime_kuma.detect(case("http-down"), {}) and uptime_kuma.detect(case("test-notification"), {})
    assert not uptime_kuma.detect({"msg": "hello"}, {})
    assert not uptime_kuma.detect({"heartbeat": {"x": 1}, "monitor": None, "msg": "x"}, {})
    assert not uptime_kuma.detect({"heartbeat": "0", "monitor": {}, "msg": "x"}, {})


def test_a_body_that_is_not_an_object_says_to_choose_json() -> None:
    with pytest.raises(BadRequest) as caught:
        run("data=%7B%22heartbeat%22%3A...")
    assert "application/json" in caught.value.problems[0]


JUNK: list[Any] = [None, "", 12345, {"a": 1}, ["x"], "x" * 100_000, "ünïcødé ✓ 警报", True]
HEARTBEAT_FIELDS = ["msg", "ping", "important", "duration", "retries", "timezone", "timezoneOffset", "localDateTime"]
MONITOR_FIELDS = [
    "name",
    "description",
    "path",
    "pathName",
    "url",
    "hostname",
    "port",
    "type",
    "tags",
    "interval",
    "maxretries",
]


@pytest.mark.parametrize("junk", JUNK, ids=[repr(j)[:20] for j in JUNK])
@pytest.mark.parametrize(
    "field", [*(f"heartbeat.{f}" for f in HEARTBEAT_FIELDS), *(f"monitor.{f}" for f in MONITOR_FIELDS), "msg"]
)
def test_hostile_fields_never_break_parsing(field: str, junk: Any) -> None:
    doc = case("http-down")
    *parents, key = field.split(".")
    target = doc[parents[0]] if parents else doc
    target[key] = copy.deepcopy(junk)
    alert = parse_one(doc)
    assert alert.summary and len(alert.summary) <= 1024 and alert.source
    assert alert.identity == "14"


def test_a_crafted_uptime_kuma_message_is_not_a_regex_bomb() -> None:
    doc = {"heartbeat": None, "monitor": None, "msg": "[a][" + "] " * 5000 + "certificate " * 5000 + "expire"}
    parsed = formats.get("uptime_kuma").run(
        doc, ParseContext(received_at=RECEIVED, options=formats.get("uptime_kuma").options_for(None))
    )
    assert isinstance(parsed, Parsed)  # finishes at once (pytest-timeout would fail a catastrophic regex)
