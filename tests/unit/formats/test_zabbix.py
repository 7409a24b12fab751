"""Zabbix through pdrelay's media type: the script, what each operation becomes, and odd input."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from pdrelay import formats
from pdrelay.errors import BadRequest
from pdrelay.formats import ParseContext, Parsed, zabbix
from tests.conftest import ROOT, load_event
from tests.formats_harness import HOSTILE_VALUES

RECEIVED = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
SCRIPT = ROOT / "integrations" / "zabbix" / "pdrelay.js"
MEDIA_TYPE = ROOT / "integrations" / "zabbix" / "pdrelay_media_type.yaml"


def parse(doc: Any, identity: str = "event") -> Parsed:
    context = ParseContext(received_at=RECEIVED, options=zabbix.Options.model_validate({"identity": identity}))
    return formats.get("zabbix").run(doc, context)


def problem(**event: Any) -> dict[str, Any]:
    doc = load_event("formats/zabbix/problem.json")
    doc["event"].update(event)
    return doc


def update(action: str | None, **event: Any) -> dict[str, Any]:
    return problem(**{"update_status": 1, "update_action": action, "updated_at": "2026-11-24T09:05:30.000Z", **event})


def media_type() -> dict[str, Any]:
    doc = yaml.safe_load(MEDIA_TYPE.read_text(encoding="utf-8"))
    return doc["zabbix_export"]["media_types"][0]


# --- the media type and its script ---------------------------------------------------------------


def test_the_media_type_embeds_exactly_the_script_kept_beside_it() -> None:
    assert media_type()["script"] == SCRIPT.read_text(encoding="utf-8"), (
        "integrations/zabbix/pdrelay_media_type.yaml's script differs from pdrelay.js: copy one into the other"
    )


def test_the_media_type_is_a_zabbix_6_webhook_that_defines_every_parameter_the_script_reads() -> None:
    doc = yaml.safe_load(MEDIA_TYPE.read_text(encoding="utf-8"))
    assert doc["zabbix_export"]["version"] == "6.0"
    mt = media_type()
    assert mt["type"] == "WEBHOOK"
    given = {p["name"]: p["value"] for p in mt["parameters"]}
    read = set(re.findall(r"param\('([a-z_]+)'\)", SCRIPT.read_text(encoding="utf-8")))
    assert read == set(given)
    assert given["pdrelay_url"] == "{ALERT.SENDTO}"
    assert given["event_id"] == "{EVENT.ID}"
    assert given["event_recovery_id"] == "{EVENT.RECOVERY.ID}"
    assert given["event_tags"] == "{EVENT.TAGSJSON}"
    assert given["token"].startswith("<")  # a placeholder, never a token
    modes = {(t["event_source"], t["operation_mode"]) for t in mt["message_templates"]}
    assert {("TRIGGERS", "PROBLEM"), ("TRIGGERS", "RECOVERY"), ("TRIGGERS", "UPDATE")} <= modes


NODE = shutil.which("node")
HARNESS = """
const script = require('fs').readFileSync(process.argv[1], 'utf8');
const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const sent = {headers: []};
function HttpRequest() {}
HttpRequest.prototype.addHeader = function (h) { sent.headers.push(h); };
HttpRequest.prototype.setProxy = function (p) { sent.proxy = p; };
HttpRequest.prototype.post = function (url, body) { sent.url = url; sent.body = body; return input.answer; };
HttpRequest.prototype.getStatus = function () { return input.status; };
const Zabbix = {log: function () {}};
try {
  sent.returned = new Function('value', 'HttpRequest', 'Zabbix', script)(JSON.stringify(input.params), HttpRequest,
                                                                          Zabbix);
} catch (e) { sent.thrown = String(e); }
process.stdout.write(JSON.stringify(sent));
"""
PARAMS = {
    "pdrelay_url": "https://abc123.execute-api.eu-west-1.amazonaws.com/v1/alerts/zabbix?route=ops",
    "token": "example-token-change-me-000001",
    "event_id": "4242001",
    "event_value": "1",
    "event_update_status": "0",
    "event_source": "0",
    "event_date": "2026.11.24",
    "event_time": "10:00:00",
    "event_nseverity": "5",
    "event_severity": "Disaster",
    "event_name": "Disk full on /var",
    "event_tags": '[{"tag": "service", "value": "checkout"}]',
    "event_recovery_id": "{EVENT.RECOVERY.ID}",
    "event_recovery_date": "{EVENT.RECOVERY.DATE}",
    "event_recovery_time": "{EVENT.RECOVERY.TIME}",
    "trigger_id": "23001",
    "host_name": "web-01.example.internal",
    "zabbix_url": "https://zabbix.example.internal",
    "http_proxy": "",
}


def run_script(params: dict[str, str], status: int = 202, answer: str = '{"status": "accepted"}') -> dict[str, Any]:
    assert NODE is not None
    done = subprocess.run(
        [NODE, "-e", HARNESS, str(SCRIPT)],
        input=json.dumps({"params": params, "status": status, "answer": answer}),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        env={**os.environ, "TZ": "Europe/Berlin"},
    )
    return json.loads(done.stdout)


needs_node = pytest.mark.skipif(NODE is None, reason="node runs the media type's script (Zabbix runs it in Duktape)")


@needs_node
def test_the_script_posts_what_the_format_reads_with_the_token_as_a_bearer_header() -> None:
    sent = run_script(PARAMS)
    assert sent["returned"] == "OK"
    assert sent["url"] == PARAMS["pdrelay_url"]
    assert "Authorization: Bearer example-token-change-me-000001" in sent["headers"]
    body = json.loads(sent["body"])
    assert formats.detect(body, {}).name == "zabbix"
    (alert,) = parse(body).alerts
    assert (alert.action, alert.identity, alert.severity) == ("trigger", "event:4242001", "critical")
    # 10:00 in the Zabbix server's zone (Europe/Berlin in November) is 09:00 UTC
    assert alert.occurred_at == datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    assert alert.component == "checkout"


@needs_node
def test_the_script_s_recovery_resolves_the_incident_its_problem_opened() -> None:
    recovery = {
        **PARAMS,
        "event_value": "0",
        "event_recovery_id": "4242077",
        "event_recovery_date": "2026.11.24",
        "event_recovery_time": "10:20:05",
    }
    fired = parse(json.loads(run_script(PARAMS)["body"])).alerts[0]
    resolved = parse(json.loads(run_script(recovery)["body"])).alerts[0]
    assert resolved.action == "resolve"
    assert resolved.identity == fired.identity
    assert resolved.occurred_at == datetime(2026, 11, 24, 9, 20, 5, tzinfo=UTC)


@needs_node
def test_the_script_fails_the_notification_on_an_error_answer_so_zabbix_retries_it() -> None:
    sent = run_script(PARAMS, status=503, answer="Service Unavailable")
    assert "returned" not in sent
    assert "HTTP 503" in sent["thrown"]


@needs_node
@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"token": "<PLACE PDRELAY TOKEN HERE>"}, "token"),
        ({"token": ""}, "token"),
        ({"pdrelay_url": "{ALERT.SENDTO}"}, "Send to"),
    ],
)
def test_the_script_refuses_to_send_without_a_url_and_a_token(change: dict[str, str], complaint: str) -> None:
    sent = run_script({**PARAMS, **change})
    assert "url" not in sent
    assert complaint in sent["thrown"]


@needs_node
def test_the_test_dialog_s_unresolved_macros_make_a_test_notification() -> None:
    params = {p["name"]: p["value"] for p in media_type()["parameters"]}
    params.update(pdrelay_url=PARAMS["pdrelay_url"], token=PARAMS["token"])
    (alert,) = parse(json.loads(run_script(params)["body"])).alerts
    assert alert.test and alert.identity == "test" and alert.action == "trigger"


# --- what each operation becomes ---------------------------------------------------------------


def test_a_problem_its_acknowledgement_and_its_recovery_share_the_problem_event_s_identity() -> None:
    recovery = load_event("formats/zabbix/recovery.json")
    ids = {parse(doc).alerts[0].identity for doc in (problem(), update("acknowledged"), recovery)}
    assert ids == {"event:4242001"}
    assert recovery["event"]["recovery_id"] != recovery["event"]["id"]  # the recovery event's own id is not used


def test_by_trigger_two_problem_events_of_one_trigger_are_one_incident_and_by_event_two() -> None:
    first, second = problem(id="4242001"), problem(id="4242005", started_at="2026-11-24T09:10:00.000Z")
    by_event = {parse(doc).alerts[0].identity for doc in (first, second)}
    by_trigger = {parse(doc, "trigger").alerts[0].identity for doc in (first, second)}
    assert by_event == {"event:4242001", "event:4242005"}
    assert by_trigger == {"trigger:23001:web-01.example.internal"}


def test_by_trigger_an_event_without_a_trigger_keeps_its_event_id() -> None:
    doc = problem()
    doc["trigger"]["id"] = "{TRIGGER.ID}"
    assert parse(doc, "trigger").alerts[0].identity == "event:4242001"


@pytest.mark.parametrize(
    ("update_action", "action"),
    [
        ("acknowledged", "acknowledge"),
        ("acknowledged and commented", "acknowledge"),
        ("commented, acknowledged and changed severity from Warning to High", "acknowledge"),
        ("closed", "resolve"),
        ("acknowledged and closed", "resolve"),
    ],
)
def test_an_acknowledgement_acknowledges_and_a_manual_close_resolves(update_action: str, action: str) -> None:
    (alert,) = parse(update(update_action)).alerts
    assert alert.action == action
    assert alert.identity == "event:4242001"
    assert alert.occurred_at == datetime(2026, 11, 24, 9, 5, 30, tzinfo=UTC)
    assert alert.custom_details["update"]["action"] == update_action


@pytest.mark.parametrize(
    "update_action",
    [
        "commented",
        "unacknowledged",
        "changed severity from Warning to High",
        "suppressed",
        "unsuppressed",
        "ranked as symptom",
    ],
)
def test_other_updates_are_answered_with_a_note_and_send_nothing(update_action: str) -> None:
    parsed = parse(update(update_action, ack="Yes" if update_action != "unacknowledged" else "No"))
    assert parsed.alerts == []
    assert update_action in parsed.notes[0]


def test_an_update_whose_action_is_not_given_acknowledges_when_the_problem_is_acknowledged() -> None:
    assert parse(update("{EVENT.UPDATE.ACTION}", ack="Yes")).alerts[0].action == "acknowledge"
    assert parse(update("", ack="No")).alerts == []


@pytest.mark.parametrize(("value", "action"), [(1, "trigger"), ("1", "trigger"), (0, "resolve"), ("0", "resolve")])
def test_event_value_1_triggers_and_0_resolves(value: object, action: str) -> None:
    assert parse(problem(value=value)).alerts[0].action == action


@pytest.mark.parametrize("value", [None, "", "2", "{EVENT.VALUE}x", [], {"a": 1}, True])
def test_an_event_value_that_is_neither_is_a_400(value: object) -> None:
    with pytest.raises(BadRequest) as caught:
        parse(problem(value=value))
    assert any("event.value" in p for p in caught.value.problems)


@pytest.mark.parametrize(("source", "kind"), [(1, "discovery"), ("2", "autoregistration")])
def test_discovery_and_autoregistration_events_are_noted_not_paged(source: object, kind: str) -> None:
    parsed = parse(problem(source=source))
    assert parsed.alerts == [] and kind in parsed.notes[0]


def test_internal_and_service_events_page_like_trigger_events() -> None:
    assert parse(problem(source=3)).alerts[0].action == "trigger"
    assert parse(problem(source="4")).alerts[0].action == "trigger"


# --- severity ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("nseverity", "name", "expected"),
    [
        (5, "Disaster", "critical"),
        ("4", "High", "error"),
        (3, "Average", "warning"),
        (2, "Warning", "warning"),
        (1, "Information", "info"),
        ("0", "Not classified", "info"),
        ("{EVENT.NSEVERITY}", "Disaster", "critical"),
        (None, "Not classified", "info"),
        (9, "High", "error"),
        (None, None, "error"),
        ("x", "Shiny", "error"),
    ],
)
def test_zabbix_severities_map_to_pagerduty_s(nseverity: object, name: object, expected: str) -> None:
    assert parse(problem(nseverity=nseverity, severity=name)).alerts[0].severity == expected


# --- test notifications and times ------------------------------------------------------------


def test_a_real_event_is_never_a_test() -> None:
    assert not parse(problem()).alerts[0].test
    assert load_event("formats/zabbix/test.json")["event"]["id"] == "{EVENT.ID}"
    assert parse(load_event("formats/zabbix/test.json")).alerts[0].test


def test_a_recovery_or_update_time_before_the_problem_s_start_is_replaced_by_receipt() -> None:
    early = "2026-11-24T08:00:00.000Z"
    assert parse(problem(value=0, recovered_at=early)).alerts[0].occurred_at == RECEIVED
    assert parse(update("acknowledged", updated_at=early)).alerts[0].occurred_at == RECEIVED
    assert parse(problem(started_at=None)).alerts[0].occurred_at == RECEIVED


def test_a_problem_s_escalation_steps_keep_its_start_so_they_update_not_reopen() -> None:
    # Zabbix repeats a problem's notification on each escalation step: same start, same time.
    first = parse(problem()).alerts[0]
    later = parse(problem(opdata="Current utilization: 99.0 %")).alerts[0]
    assert first.occurred_at == later.occurred_at == datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


# --- detection, hostile input, options ------------------------------------------------------


def test_detection_needs_pdrelay_s_zabbix_marker() -> None:
    doc = problem()
    assert zabbix.detect(doc, {})
    assert not zabbix.detect({**doc, "zabbix": 2}, {})
    assert not zabbix.detect({k: v for k, v in doc.items() if k != "zabbix"}, {})
    assert not zabbix.detect({"zabbix": 1, "event": "x"}, {})
    assert not zabbix.detect(load_event("formats/alertmanager/firing.json"), {})


HOSTILE: list[object] = [*HOSTILE_VALUES, 123, 4.5, {"a": [1]}, "*UNKNOWN*", "{HOST.NAME}"]
FIELDS = [
    ("event", "name"),
    ("event", "tags"),
    ("event", "started_at"),
    ("event", "recovered_at"),
    ("event", "severity"),
    ("event", "opdata"),
    ("event", "update_action"),
    ("trigger", "id"),
    ("trigger", "url"),
    ("trigger", "description"),
    ("host", "name"),
    ("host", "ip"),
    ("host", "groups"),
    ("top", "zabbix_url"),
    ("event", "source"),
]


@pytest.mark.parametrize("junk", HOSTILE, ids=[repr(v)[:20] for v in HOSTILE])
@pytest.mark.parametrize("field", FIELDS, ids=[".".join(f) for f in FIELDS])
@pytest.mark.parametrize("identity", ["event", "trigger"])
def test_any_field_may_be_junk_and_the_alert_still_goes(field: tuple[str, str], junk: object, identity: str) -> None:
    doc = problem()
    where = doc if field[0] == "top" else doc[field[0]]
    where[field[1]] = junk
    (alert,) = parse(doc, identity).alerts
    assert alert.summary and alert.source and len(alert.summary) <= 1024


@pytest.mark.parametrize("part", ["trigger", "host"])
@pytest.mark.parametrize("junk", [None, "x", [1], 3])
def test_a_missing_or_junk_trigger_or_host_object_still_pages(part: str, junk: object) -> None:
    doc = problem()
    doc[part] = junk
    (alert,) = parse(doc, "trigger").alerts
    expected = "event:4242001" if part == "trigger" else "trigger:23001"
    assert alert.identity == expected
    assert alert.source


@pytest.mark.parametrize("event_id", [None, "", [], "*UNKNOWN*"])
def test_a_real_event_without_its_id_is_a_400(event_id: object) -> None:
    with pytest.raises(BadRequest, match="invalid Zabbix payload"):
        parse(problem(id=event_id))


@pytest.mark.parametrize("doc", [[], "zabbix", {"zabbix": 1}, {"zabbix": 1, "event": None}])
def test_a_body_without_an_event_object_is_a_400(doc: object) -> None:
    with pytest.raises(BadRequest):
        parse(doc)


def test_a_huge_host_name_still_gives_a_usable_dedup_key() -> None:
    from pdrelay.models import deterministic_dedup_key

    doc = problem()
    doc["host"]["name"] = "h" * 100_000
    (alert,) = parse(doc, "trigger").alerts
    assert len(deterministic_dedup_key("zabbix", alert.identity)) <= 255


def test_options_take_event_or_trigger_and_nothing_else() -> None:
    assert formats.option_problems("zabbix", {"identity": "trigger"}) == []
    assert formats.option_problems("zabbix", None) == []
    assert formats.option_problems("zabbix", {"identity": "host"})
    assert formats.option_problems("zabbix", {"identiy": "trigger"})
