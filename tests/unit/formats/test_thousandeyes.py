"""ThousandEyes webhooks: the documented custom template, both shapes' lifecycles, and odd input."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from pdrelay import formats
from pdrelay.errors import BadRequest
from pdrelay.formats import ParseContext, thousandeyes
from pdrelay.models import Alert
from tests.conftest import load_event
from tests.formats_harness import HOSTILE_VALUES, documented_template, lookup

RECEIVED = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)


def one(doc: Any) -> Alert:
    (alert,) = formats.get("thousandeyes").run(doc, ParseContext(received_at=RECEIVED)).alerts
    return alert


def case(fixture: str, /, **change: Any) -> dict[str, Any]:
    doc = load_event(f"formats/thousandeyes/{fixture}.json")
    doc.update(change)
    return doc


def alert_of(fixture: str, /, **change: Any) -> dict[str, Any]:
    doc = load_event(f"formats/thousandeyes/{fixture}.json")
    doc["alert"].update(change)
    return doc


# --- the custom webhook template the docs tell people to paste ------------------------------

_TAG = re.compile(r"\{\{\s*([#/]?)\s*([\w.@]+)(?:\s+([\w.@]+))?\s*\}\}")
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;", "`": "&#x60;", "=": "&#x3D;"}


def _close(template: str, start: int, helper: str) -> tuple[int, int]:
    """Where the section opened just before ``start`` closes (same-name nesting counted)."""
    depth = 1
    for match in _TAG.finditer(template, start):
        if match.group(2) == helper and match.group(1) == "#":
            depth += 1
        elif match.group(2) == helper and match.group(1) == "/":
            depth -= 1
            if depth == 0:
                return match.start(), match.end()
    raise AssertionError(f"unclosed {{{{#{helper}}}}}")


def render(template: str, stack: list[dict[str, Any]]) -> str:
    """Enough Handlebars for the template: {{var}} (HTML-escaped), #if, #unless, #each with @last."""
    out, pos = [], 0
    while (match := _TAG.search(template, pos)) is not None:
        out.append(template[pos : match.start()])
        kind, first, arg = match.groups()
        if not kind:
            value = lookup(stack, first)
            out.append("".join(_ESCAPES.get(c, c) for c in ("" if value is None else str(value))))
            pos = match.end()
            continue
        end, after = _close(template, match.end(), first)
        inner, pos = template[match.end() : end], after
        value = lookup(stack, arg or "")
        if (first == "if" and value) or (first == "unless" and not value):
            out.append(render(inner, stack))
        elif first == "each":
            items = value if isinstance(value, list) else []
            out.extend(render(inner, [*stack, {**item, "@last": i == len(items) - 1}]) for i, item in enumerate(items))
    out.append(template[pos:])
    return "".join(out)


NOTIFICATION: dict[str, Any] = {
    "id": "8c1e0f52-0000-4000-8000-0000000000c1",
    "type": {"id": 2},
    "alert": {
        "id": "b2f7d9e0-0000-4000-8000-00000000a11e",
        "severity": {"id": "MAJOR"},
        "firstSeen": {"epochSecond": 1795510800, "epochMilli": 1795510800000},
        "timeCleared": None,
        "rule": {
            "id": 5551001,
            "name": "Checkout API availability",
            "expression": '((errorType != "None"))',
            "notes": "Page the payments on-call; runbook: https://wiki.example.com/runbooks/checkout-api",
            "alertType": {"id": "http-server"},
            "account": {"id": 1234},
        },
        "test": {"id": "7770001", "name": "Shop's checkout API", "testType": "http-server"},
        "targets": [{"description": "https://api.example.com/health?region=eu&deep=1"}],
        "details": [
            {"source": {"id": "11", "name": "Frankfurt, Germany"}, "metricsAtStart": "Error Type: Connect"},
            {"source": {"id": "12", "name": "London, England"}, "metricsAtStart": "Error Type: Connect"},
        ],
    },
}


def test_the_documented_template_renders_the_custom_trigger_fixture() -> None:
    rendered = json.loads(render(documented_template("thousandeyes"), [NOTIFICATION]))
    assert rendered == load_event("formats/thousandeyes/custom_trigger.json")


def test_the_documented_template_renders_a_clear_that_resolves_the_same_alert() -> None:
    cleared = json.loads(json.dumps(NOTIFICATION))
    cleared["type"]["id"] = 1
    cleared["alert"]["timeCleared"] = {"epochMilli": 1795512000000}
    fired = one(json.loads(render(documented_template("thousandeyes"), [NOTIFICATION])))
    resolved = one(json.loads(render(documented_template("thousandeyes"), [cleared])))
    assert (fired.action, resolved.action) == ("trigger", "resolve")
    assert fired.identity == resolved.identity
    assert resolved.occurred_at == datetime(2026, 11, 24, 9, 20, tzinfo=UTC)


def test_the_documented_template_stays_json_without_test_targets_or_details() -> None:
    bare = {"id": "n-1", "type": {"id": 2}, "alert": {"id": "a-1", "rule": {"name": 'odd "rule" <x>'}}}
    doc = json.loads(render(documented_template("thousandeyes"), [bare]))
    alert = one(doc)
    assert alert.summary == 'odd "rule" <x>'
    assert alert.source == "ThousandEyes"
    assert formats.detect(doc, {}).name == "thousandeyes"


# --- one incident per alert --------------------------------------------------------------


@pytest.mark.parametrize(
    ("firing", "clear", "identity"),
    [
        ("custom_trigger", "custom_clear", "alert:b2f7d9e0-0000-4000-8000-00000000a11e"),
        ("basic_trigger", "basic_clear", "alert:90001"),
        ("agent_trigger", "agent_clear", "agent:43587:25694"),
    ],
)
def test_a_trigger_and_its_clear_share_the_alert_id_not_the_event_id(firing: str, clear: str, identity: str) -> None:
    fired, cleared = one(case(firing)), one(case(clear))
    assert (fired.action, cleared.action) == ("trigger", "resolve")
    assert fired.identity == cleared.identity == identity
    assert cleared.occurred_at > fired.occurred_at
    first, second = load_event(f"formats/thousandeyes/{firing}.json"), load_event(f"formats/thousandeyes/{clear}.json")
    assert first.get("eventId", first.get("notificationId")) != second.get("eventId", second.get("notificationId"))


def test_an_alert_id_given_as_a_number_or_a_string_is_one_identity() -> None:
    assert one(alert_of("basic_trigger", alertId="90001")).identity == one(case("basic_trigger")).identity


@pytest.mark.parametrize(
    ("kind", "action"),
    [("2", "trigger"), (2, "trigger"), ("1", "resolve"), (1, "resolve"), ("Trigger", "trigger"), ("CLEAR", "resolve")],
)
def test_the_custom_type_says_trigger_or_clear(kind: object, action: str) -> None:
    assert one(case("custom_trigger", type=kind)).action == action


@pytest.mark.parametrize("kind", [None, "", "3", "0", [], {"id": 2}])
def test_an_unknown_custom_type_is_a_400(kind: object) -> None:
    with pytest.raises(BadRequest, match="invalid ThousandEyes payload") as caught:
        one(case("custom_trigger", type=kind))
    assert caught.value.problems[0].startswith("type")


@pytest.mark.parametrize(
    ("event_type", "action"),
    [
        ("ALERT_NOTIFICATION_TRIGGER", "trigger"),
        ("ALERT_NOTIFICATION_CLEAR", "resolve"),
    ],
)
def test_the_basic_event_type_says_trigger_or_clear(event_type: str, action: str) -> None:
    assert one(case("basic_trigger", eventType=event_type)).action == action


@pytest.mark.parametrize("event_type", ["", "ALERT_NOTIFICATION_SNOOZE", None, 7])
def test_an_unknown_basic_event_type_is_a_400(event_type: object) -> None:
    with pytest.raises(BadRequest, match="invalid ThousandEyes payload"):
        one(case("basic_trigger", eventType=event_type))


def test_the_basic_webhook_test_is_a_test_notification() -> None:
    alert = one(case("webhook_test"))
    assert alert.test and alert.identity == "test" and alert.action == "trigger"
    assert not one(case("basic_trigger")).test
    assert not one(case("custom_trigger")).test


@pytest.mark.parametrize(("fixture", "where"), [("basic_trigger", "alertId"), ("custom_trigger", "id")])
@pytest.mark.parametrize("junk", [None, "", [], {}])
def test_an_alert_without_its_id_is_a_400(fixture: str, where: str, junk: object) -> None:
    with pytest.raises(BadRequest, match="invalid ThousandEyes payload"):
        one(alert_of(fixture, **{where: junk}))


@pytest.mark.parametrize("junk", [None, "", [], {}])
def test_an_agent_alert_without_rule_or_agent_id_is_a_400(junk: object) -> None:
    doc = case("agent_trigger")
    doc["agentAlert"]["agentId"] = junk
    with pytest.raises(BadRequest, match="invalid ThousandEyes payload"):
        one(doc)


# --- severity, summary, times ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("CRITICAL", "critical"),
        ("MAJOR", "error"),
        ("MINOR", "warning"),
        ("INFO", "info"),
        ("minor", "warning"),
        ("", "error"),
        (None, "error"),
        ("SEVERE", "error"),
        (3, "error"),
    ],
)
def test_thousandeyes_severities_map_to_pagerduty_s(value: object, expected: str) -> None:
    assert one(alert_of("basic_trigger", severity=value)).severity == expected
    assert one(alert_of("custom_trigger", severity=value)).severity == expected


def test_the_summary_names_the_rule_the_test_and_the_vantage_points() -> None:
    assert one(case("basic_trigger")).summary == "Default Page Load Alert Rule on http://www.example.com (2 agents)"
    assert one(case("basic_bgp")).summary == "Default BGP Alert Rule on 203.0.113.0/24 reachability (3 monitors)"
    boston = load_event("formats/thousandeyes/basic_trigger.json")["alert"]["agents"][:1]
    single = alert_of("basic_trigger", agents=boston)
    assert one(single).summary == "Default Page Load Alert Rule on http://www.example.com from Boston, MA"
    assert one(alert_of("basic_trigger", ruleName=None, testName=None, agents=[])).summary == "ThousandEyes alert"


def test_handlebars_escaping_is_undone() -> None:
    alert = one(case("custom_trigger"))
    assert alert.source == "https://api.example.com/health?region=eu&deep=1"
    assert alert.custom_details["rule_expression"] == '((errorType != "None"))'
    assert alert.custom_details["test"] == "Shop's checkout API"


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        ("2026-11-24 09:01:47", datetime(2026, 11, 24, 9, 1, 47, tzinfo=UTC)),
        ("2026-11-24T09:01:47Z", datetime(2026, 11, 24, 9, 1, 47, tzinfo=UTC)),
        (1795510907, datetime(2026, 11, 24, 9, 1, 47, tzinfo=UTC)),
        ("1795510907000", datetime(2026, 11, 24, 9, 1, 47, tzinfo=UTC)),
        ("", RECEIVED),
        (None, RECEIVED),
        ("yesterday", RECEIVED),
    ],
)
def test_a_trigger_is_timed_by_the_alert_s_start(start: object, expected: datetime) -> None:
    assert one(alert_of("basic_trigger", dateStart=start)).occurred_at == expected


def test_a_clear_without_a_usable_end_is_timed_by_receipt() -> None:
    assert one(alert_of("basic_clear", dateEnd=None)).occurred_at == RECEIVED
    assert one(alert_of("basic_clear", dateEnd="2026-11-24 08:00:00")).occurred_at == RECEIVED  # before the start
    assert one(alert_of("custom_clear", timeCleared="")).occurred_at == RECEIVED


# --- detection, odd input ------------------------------------------------------------------


def test_detection_needs_the_marker_or_a_known_event_type_with_an_event_id() -> None:
    assert thousandeyes.detect(case("custom_trigger"), {})
    assert thousandeyes.detect(case("basic_trigger"), {})
    assert thousandeyes.detect(case("webhook_test"), {})
    assert not thousandeyes.detect({k: v for k, v in case("basic_trigger").items() if k != "eventId"}, {})
    assert not thousandeyes.detect(case("basic_trigger", eventType="SOMETHING_ELSE"), {})
    assert not thousandeyes.detect(case("custom_trigger", thousandeyes=6), {})
    assert not thousandeyes.detect(load_event("formats/wavefront/opened.json"), {})


HOSTILE: list[object] = [*HOSTILE_VALUES, "ünïcødé ☃ 💥 &amp;&#x27;&#xZZ;"]
BASIC = [
    "ruleName",
    "ruleExpression",
    "testName",
    "testId",
    "type",
    "dateStart",
    "dateEnd",
    "severity",
    "violationCount",
    "agents",
    "monitors",
    "permalink",
    "apiLinks",
]
CUSTOM = ["severity", "alertType", "firstSeen", "timeCleared", "accountId", "rule", "test", "targets", "details"]
AGENT = [
    "hostname",
    "agentName",
    "ipAddress",
    "ruleName",
    "ruleExpression",
    "dateStart",
    "dateEnd",
    "metricsAtStart",
    "severity",
]
PLACES = (
    [("basic_trigger", f) for f in BASIC]
    + [("basic_clear", f) for f in BASIC]
    + [("custom_trigger", f) for f in CUSTOM]
    + [("custom_clear", f) for f in CUSTOM]
    + [("agent_clear", f) for f in AGENT]
)


@pytest.mark.parametrize("junk", HOSTILE, ids=[repr(v)[:20] for v in HOSTILE])
@pytest.mark.parametrize(("fixture", "field"), PLACES, ids=[f"{p[0]}.{p[1]}" for p in PLACES])
def test_any_field_may_be_junk_and_the_alert_still_goes(fixture: str, field: str, junk: object) -> None:
    doc = load_event(f"formats/thousandeyes/{fixture}.json")
    doc["agentAlert" if fixture.startswith("agent") else "alert"][field] = junk
    alert = one(doc)
    assert alert.summary and alert.source and len(alert.summary) <= 1024
    assert all(link.href.startswith(("https://", "http://")) for link in alert.links)


@pytest.mark.parametrize("doc", [[], "text", 3, None])
def test_a_body_that_is_not_an_object_is_a_400(doc: object) -> None:
    with pytest.raises(BadRequest):
        one(doc)


@pytest.mark.parametrize("part", [None, "x", [1], 5])
def test_a_missing_alert_object_is_a_400_not_a_crash(part: object) -> None:
    with pytest.raises(BadRequest):
        one(case("basic_trigger", alert=part))
    with pytest.raises(BadRequest):
        one(case("custom_trigger", alert=part))
