"""Wavefront alert targets: the documented template, one incident per alert, reasons, and odd input."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from pdrelay import formats
from pdrelay.errors import BadRequest
from pdrelay.formats import ParseContext, Parsed, wavefront
from pdrelay.models import Alert
from tests.conftest import ROOT, load_event
from tests.formats_harness import HOSTILE_VALUES, documented_template, load_case, lookup
from tests.formats_harness import run as run_case

RECEIVED = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
STARTED = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def run(doc: Any) -> Parsed:
    return formats.get("wavefront").run(doc, ParseContext(received_at=RECEIVED))


def one(doc: Any) -> Alert:
    (alert,) = run(doc).alerts
    return alert


def case(fixture: str, /, **change: Any) -> dict[str, Any]:
    doc = load_event(f"formats/wavefront/{fixture}.json")
    doc.update(change)
    return doc


# --- the template the docs tell people to paste ------------------------------------------------

_TAG = re.compile(r"\{\{\{\s*([\w.]+)\s*\}\}\}|\{\{([#/])\s*([\w.]+)\s*\}\}")


def render(template: str, stack: list[Any]) -> str:
    """Enough Mustache for the template: {{{var}}}, list sections, jsonEscape and trimTrailingComma."""
    out, pos = [], 0
    while (match := _TAG.search(template, pos)) is not None:
        out.append(template[pos : match.start()])
        if match.group(1):
            out.append(str(lookup(stack, match.group(1), "")))
            pos = match.end()
            continue
        name = match.group(3)
        close = template.index("{{/" + name + "}}", match.end())
        inner = template[match.end() : close]
        pos = close + len("{{/" + name + "}}")
        if name == "jsonEscape":
            out.append(json.dumps(render(inner, stack))[1:-1])
        elif name == "trimTrailingComma":
            out.append(re.sub(r",\s*$", "", render(inner, stack)))
        else:
            value = lookup(stack, name, "")
            items = value if isinstance(value, list) else [value] if value else []
            out.extend(render(inner, [*stack, item]) for item in items)
    out.append(template[pos:])
    return "".join(out)


OPENED_VARIABLES: dict[str, Any] = {
    **{k: v for k, v in load_event("formats/wavefront/opened.json").items() if isinstance(v, str)},
    "alertTags": ["checkout", "prod"],
    "imageLinks": ["https://example.wavefront.com/api/v2/image/AbC0dE1fG2"],
    "runbookLinks": ["https://wiki.example.com/runbooks/checkout-latency"],
    "dashboardLinks": ["https://example.wavefront.com/dashboards/checkout"],
    "failingHosts": ["checkout-1"],
    "newlyFailingHosts": ["checkout-1"],
    "recoveredHosts": [],
    "inMaintenanceHosts": [],
    "failingAlertSeries": [
        {"host": "checkout-1", "label": "checkout.request.latency", "tags": "{env=prod}", "stats": {"last": "2480.5"}}
    ],
}


def test_the_documented_template_renders_the_opened_fixture() -> None:
    rendered = render(documented_template("wavefront"), [OPENED_VARIABLES])
    assert json.loads(rendered) == load_event("formats/wavefront/opened.json")


def test_the_documented_template_stays_json_whatever_the_alert_s_text() -> None:
    odd = {
        **OPENED_VARIABLES,
        "name": 'Say "hi"\\ \n\ttab',
        "failingHosts": ['a"b', "c\\d"],
        "alertTags": [],
        "failingAlertSeries": [],
    }
    doc = json.loads(render(documented_template("wavefront"), [odd]))
    alert = one(doc)
    assert doc["name"] == 'Say "hi"\\ \n\ttab'
    assert alert.custom_details["failing_sources"] == ['a"b', "c\\d"]
    assert formats.detect(doc, {}).name == "wavefront"


def test_the_documented_template_names_every_field_the_format_reads() -> None:
    read = set(re.findall(r'doc\.get\("(\w+)"\)', (ROOT / "layers/pdrelay/pdrelay/formats/wavefront.py").read_text()))
    sent = set(json.loads(render(documented_template("wavefront"), [OPENED_VARIABLES])))
    # Only the generic template's fallbacks (errorMessage, failingSeries) are not in pdrelay's own.
    assert read - sent == {"errorMessage", "failingSeries"}


# --- one incident per alert, however many sources --------------------------------------------


def test_every_notification_of_one_firing_shares_the_alert_s_identity_and_start() -> None:
    names = ["opened", "updated", "source_recovered", "resolved"]
    alerts = [one(case(name)) for name in names]
    assert {a.identity for a in alerts} == {"1790949791000"}
    assert [a.action for a in alerts] == ["trigger", "trigger", "trigger", "resolve"]
    assert [a.occurred_at for a in alerts[:3]] == [STARTED] * 3
    assert alerts[3].occurred_at == datetime(2026, 11, 24, 9, 20, tzinfo=UTC)
    assert len({load_event(f"formats/wavefront/{n}.json")["notificationId"] for n in names}) == 4


def test_a_source_recovering_updates_the_incident_and_lists_the_sources() -> None:
    alert = one(case("source_recovered"))
    assert alert.action == "trigger"
    assert alert.custom_details["failing_sources"] == ["checkout-2"]
    assert alert.custom_details["recovered_sources"] == ["checkout-1"]
    updated = one(case("updated"))
    assert updated.custom_details["newly_failing_sources"] == ["checkout-2"]
    assert updated.summary == "Checkout p99 latency above 2s (2 sources failing)"


def test_a_notification_that_changes_nothing_but_its_id_has_the_same_content() -> None:
    first, again = one(case("opened")), one(case("opened", notificationId="another-id"))
    assert first.model_dump() == again.model_dump()


def test_a_later_firing_after_the_resolve_starts_later() -> None:
    later = one(case("opened", startedEpoch="1795515600000", startedTime="11/24/2026 10:20:00 +0000"))
    assert later.occurred_at > one(case("resolved")).occurred_at


# --- reasons ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "action"),
    [
        ("ALERT_OPENED", "trigger"),
        ("Alert Opened", "trigger"),
        ("ALERT_UPDATED", "trigger"),
        ("Alert Status Updated", "trigger"),
        ("ALERT_RETRIGGERED", "trigger"),
        ("ALERT_SEVERITY_UPDATE", "trigger"),
        ("ALERT_RESOLVED", "resolve"),
        ("Alert Resolved", "resolve"),
        ("alert_resolved", "resolve"),
    ],
)
def test_reasons_that_page_or_resolve(reason: str, action: str) -> None:
    alert = one(case("opened", reason=reason))
    assert alert.action == action and not alert.test


@pytest.mark.parametrize(
    "reason",
    [
        "ALERT_SNOOZED",
        "ALERT_MAINTENANCE",
        "ALERT_AFFECTED_BY_MAINTENANCE",
        "Alert Affected by Maintenance Window",
        "ALERT_NO_DATA",
        "Alert Has No Data",
        "ALERT_NO_DATA_RESOLVED",
        "ALERT_NO_DATA_MAINTENANCE",
        "Alert Entered Maintenance From No Data",
        "ALERT_INVALID",
        "ALERT_NO_LONGER_INVALID",
    ],
)
def test_snooze_maintenance_no_data_and_invalid_are_noted_never_paged(reason: str) -> None:
    parsed = run(case("opened", reason=reason))
    assert parsed.alerts == []
    assert "nothing sent" in parsed.notes[0]


@pytest.mark.parametrize("reason", [None, "", "ALERT_EXPLODED", 5, ["ALERT_OPENED"]])
def test_an_unknown_or_missing_reason_is_a_400(reason: object) -> None:
    with pytest.raises(BadRequest, match="invalid Wavefront payload"):
        run(case("opened", reason=reason))


def test_the_alert_test_notification_is_a_test() -> None:
    alert = one(case("testing"))
    assert alert.test and alert.identity == "test:1790949791000" and alert.occurred_at == RECEIVED
    assert one(case("testing", alertId="")).identity == "test"


def test_a_wavefront_test_never_shares_the_real_alerts_incident() -> None:
    test = run_case(load_case("wavefront", "testing"))["events"][0]
    real = load_case("wavefront", "testing").doc
    assert test["dedup_key"] == f"wavefront:test:{real['alertId']}"


@pytest.mark.parametrize("alert_id", [None, "", [], {}])
def test_a_real_notification_without_an_alert_id_is_a_400(alert_id: object) -> None:
    with pytest.raises(BadRequest, match="invalid Wavefront payload") as caught:
        run(case("opened", alertId=alert_id))
    assert caught.value.problems[0].startswith("alertId")


# --- severity and times --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("severity", "expected"),
    [
        ("SEVERE", "critical"),
        ("WARN", "warning"),
        ("SMOKE", "info"),
        ("INFO", "info"),
        ("severe", "critical"),
        ("", "error"),
        (None, "error"),
        ("LOUD", "error"),
        (3, "error"),
    ],
)
def test_wavefront_severities_map_to_pagerduty_s(severity: object, expected: str) -> None:
    assert one(case("opened", severity=severity)).severity == expected


@pytest.mark.parametrize(
    ("started_time", "started_epoch", "expected"),
    [
        ("11/24/2026 09:00:00 +0000", "", STARTED),
        ("11/24/2026 10:00:00 +0100", None, STARTED),
        ("", "1795510800000", STARTED),
        ("", 1795510800, STARTED),
        ("garbage", "1795510800000", STARTED),  # the epoch wins
        ("2026-11-24T09:00:00Z", "", STARTED),
        ("", "", RECEIVED),
        ("soon", "later", RECEIVED),
    ],
)
def test_the_firing_s_start_in_any_of_wavefront_s_forms(
    started_time: object, started_epoch: object, expected: datetime
) -> None:
    alert = one(case("updated", startedTime=started_time, startedEpoch=started_epoch))
    assert alert.occurred_at == expected


def test_a_resolve_without_a_usable_end_is_timed_by_receipt() -> None:
    assert one(case("resolved", endedTime="", endedEpoch="")).occurred_at == RECEIVED
    assert one(case("resolved", endedTime="", endedEpoch="1795500000000")).occurred_at == RECEIVED  # before start


# --- detection, odd input ------------------------------------------------------------------


def test_detection_needs_alert_id_notification_id_and_reason() -> None:
    doc = case("opened")
    assert wavefront.detect(doc, {})
    for key in ("alertId", "notificationId", "reason"):
        assert not wavefront.detect({k: v for k, v in doc.items() if k != key}, {})
    assert not wavefront.detect(load_event("formats/alertmanager/firing.json"), {})


HOSTILE: list[object] = [*HOSTILE_VALUES, "[a, b, , c]"]
FIELDS = [
    "name",
    "severity",
    "condition",
    "url",
    "chartUrl",
    "startedTime",
    "startedEpoch",
    "endedTime",
    "endedEpoch",
    "hostsFailingMessage",
    "updateMessage",
    "additionalInformation",
    "alertTags",
    "imageLinks",
    "runbookLinks",
    "dashboardLinks",
    "failingSources",
    "newlyFailingSources",
    "recoveredSources",
    "failingAlertSeries",
    "notificationId",
]


@pytest.mark.parametrize("junk", HOSTILE, ids=[repr(v)[:20] for v in HOSTILE])
@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("name", ["opened", "resolved"])
def test_any_field_may_be_junk_and_the_alert_still_goes(name: str, field: str, junk: object) -> None:
    alert = one(case(name, **{field: junk}))
    assert alert.summary and alert.source and len(alert.summary) <= 1024
    assert all(link.href.startswith(("https://", "http://")) for link in alert.links)
    assert all(image.src.startswith(("https://", "http://")) for image in alert.images)


@pytest.mark.parametrize("doc", [[], "text", 3, None])
def test_a_body_that_is_not_an_object_is_a_400(doc: object) -> None:
    with pytest.raises(BadRequest):
        run(doc)
