"""Sentry integration-platform webhooks become normalized alerts; signed routes check the signature."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from pdrelay.errors import BadRequest, Unauthorized
from pdrelay.formats import ParseContext, option_problems, sentry
from pdrelay.formats.sentry import verify_signature
from pdrelay.models import SUMMARY_LIMIT
from tests.conftest import load_event
from tests.formats_harness import load_case, walk

RECEIVED = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
SECRET = "fake-sentry-client-secret-for-tests-only"
NOW = 1_795_512_600.0  # the clock signatures are checked against


def doc(name: str) -> Any:
    return load_event(f"formats/sentry/{name}.json")


def ctx(resource: str | None = None, **extra: Any) -> ParseContext:
    headers = {"sentry-hook-resource": resource} if resource else {}
    return ParseContext(received_at=RECEIVED, headers=headers, **extra)


def parse(payload: Any, resource: str | None = None) -> Any:
    return sentry.parse(payload, ctx(resource))


def one(payload: Any, resource: str | None = None) -> Any:
    (alert,) = parse(payload, resource).alerts
    return alert


def signed(body: bytes, signature: str | None, secret: str = SECRET) -> ParseContext:
    headers = {"sentry-hook-resource": "issue"}
    if signature is not None:
        headers["sentry-hook-signature"] = signature
    return ParseContext(
        received_at=RECEIVED,
        headers=headers,
        body=body,
        options=sentry.Options.model_validate({"client_secret": secret}),
    )


# --- issues ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        ("created", "trigger"),
        ("unresolved", "trigger"),
        ("resolved", "resolve"),
        ("archived", "resolve"),
        ("ignored", "resolve"),
    ],
)
def test_issue_actions_map_to_pagerduty_actions_on_one_identity(action: str, expected: str) -> None:
    payload = doc("issue_created")
    payload["action"] = action
    alert = one(payload, "issue")
    assert (alert.action, alert.identity) == (expected, "issue:4000000001")


def test_an_archived_issue_resolves_with_a_note_in_the_details() -> None:
    alert = one(doc("issue_archived"))
    assert alert.action == "resolve"
    assert "archived" in alert.custom_details["note"]
    assert "note" not in one(doc("issue_resolved"), "issue").custom_details


@pytest.mark.parametrize("action", ["assigned", "deleted", ""])
def test_issue_actions_that_do_not_page_are_noted(action: str) -> None:
    payload = doc("issue_assigned")
    payload["action"] = action
    parsed = parse(payload, "issue")
    assert parsed.alerts == [] and parsed.notes and "nothing to page" in parsed.notes[0]


@pytest.mark.parametrize(
    ("level", "severity"),
    [
        ("fatal", "critical"),
        ("error", "error"),
        ("warning", "warning"),
        ("info", "info"),
        ("debug", "info"),
        ("sample", "error"),
        (None, "error"),
        (3, "error"),
    ],
)
def test_the_level_maps_to_severity(level: Any, severity: str) -> None:
    payload = doc("issue_created")
    payload["data"]["issue"]["level"] = level
    assert one(payload, "issue").severity == severity


def test_a_created_issue_is_ordered_by_first_seen_and_state_changes_by_receipt() -> None:
    assert one(doc("issue_created"), "issue").occurred_at == datetime(2026, 11, 24, 9, 3, 12, 120000, tzinfo=UTC)
    assert one(doc("issue_resolved"), "issue").occurred_at == RECEIVED
    payload = doc("issue_created")
    payload["action"] = "unresolved"
    assert one(payload, "issue").occurred_at == RECEIVED


def test_an_issue_without_an_id_is_a_400() -> None:
    payload = doc("issue_created")
    del payload["data"]["issue"]["id"]
    with pytest.raises(BadRequest, match="invalid Sentry issue webhook"):
        parse(payload, "issue")
    payload["data"]["issue"] = "gone"
    with pytest.raises(BadRequest):
        parse(payload, "issue")


# --- issue alerts and metric alerts -------------------------------------------------------------


def test_an_issue_alert_shares_the_issue_identity_so_the_issue_resolve_closes_it() -> None:
    alert = one(doc("event_alert"), "event_alert")
    assert (alert.action, alert.identity, alert.severity) == ("trigger", "issue:4000000002", "warning")
    assert alert.identity == one(doc("issue_archived")).identity
    assert (alert.source, alert.group) == ("search", "production")
    assert alert.custom_details["rule"] == "Search backlog in production"


def test_an_issue_alert_without_issue_id_takes_it_from_the_issue_url() -> None:
    payload = doc("event_alert")
    del payload["data"]["event"]["issue_id"]
    assert one(payload, "event_alert").identity == "issue:4000000002"
    del payload["data"]["event"]["issue_url"]
    with pytest.raises(BadRequest, match="event_alert"):
        parse(payload, "event_alert")


def test_a_sentry_regression_from_a_late_event_pages_after_the_issue_was_resolved() -> None:
    created, resolved = load_case("sentry", "issue_created").doc, load_case("sentry", "issue_resolved").doc
    late: dict[str, Any] = load_case("sentry", "event_alert").doc
    late["data"]["event"]["issue_id"] = created["data"]["issue"]["id"]
    late["data"]["event"]["datetime"] = RECEIVED.isoformat()  # older than the resolve below
    reasons = walk("sentry", [(created, 0), (resolved, 10), (late, 11)])
    assert reasons == ["new", "resolve", "reopen"]


@pytest.mark.parametrize(
    ("action", "expected", "severity"),
    [
        ("critical", "trigger", "critical"),
        ("warning", "trigger", "warning"),
        ("resolved", "resolve", "info"),
    ],
)
def test_metric_alert_actions(action: str, expected: str, severity: str) -> None:
    payload = doc("metric_alert_critical")
    payload["action"] = action
    alert = one(payload, "metric_alert")
    assert (alert.action, alert.severity, alert.identity) == (expected, severity, "metric_alert:880001")
    assert alert.occurred_at == RECEIVED


def test_a_metric_alert_action_sentry_does_not_document_is_noted() -> None:
    payload = doc("metric_alert_critical")
    payload["action"] = "muted"
    parsed = parse(payload, "metric_alert")
    assert parsed.alerts == [] and "nothing to page" in parsed.notes[0]


def test_a_metric_alert_without_its_id_falls_back_to_the_rule_and_without_either_is_a_400() -> None:
    payload = doc("metric_alert_critical")
    del payload["data"]["metric_alert"]["id"]
    assert one(payload, "metric_alert").identity == "metric_alert:rule-77"
    del payload["data"]["metric_alert"]["alert_rule"]
    with pytest.raises(BadRequest, match="metric_alert"):
        parse(payload, "metric_alert")


@pytest.mark.parametrize("resource", ["installation", "comment", "error", "seer", "something_new"])
def test_other_resources_are_noted_never_paged(resource: str) -> None:
    parsed = parse(doc("installation"), resource)
    assert parsed.alerts == [] and parsed.notes == [f"Sentry {resource} created: nothing to page"]


def test_the_header_wins_over_the_body_shape() -> None:
    # A metric alert body announced as an installation is not paged.
    assert parse(doc("metric_alert_critical"), "installation").alerts == []
    # Without the header the body decides.
    assert one(doc("metric_alert_critical")).identity == "metric_alert:880001"
    assert one(doc("event_alert")).identity == "issue:4000000002"


# --- test notifications ---------------------------------------------------------------------------


def test_sentrys_send_test_notification_is_a_test() -> None:
    alert = one(doc("test_notification"), "event_alert")
    assert alert.test is True
    payload = doc("test_notification")
    payload["data"]["event"]["tags"] = []  # still recognised by title and culprit
    assert one(payload, "event_alert").test is True
    assert one(doc("event_alert"), "event_alert").test is False


def test_an_issue_of_the_test_notification_type_is_a_test() -> None:
    payload = doc("issue_created")
    payload["data"]["issue"]["issueType"] = "send-test-notification"
    assert one(payload, "issue").test is True
    assert one(doc("issue_created"), "issue").test is False


# --- signatures -----------------------------------------------------------------------------------


def test_the_signed_fixture_passes_with_its_secret() -> None:
    case = load_case("sentry", "issue_created")
    context = ParseContext(
        received_at=RECEIVED, headers=case.headers, body=case.body, options=sentry.Options.model_validate(case.options)
    )
    assert sentry.parse(case.doc, context).alerts[0].identity == "issue:4000000001"


@pytest.mark.parametrize("signature", [None, "", "00" * 32, "not-hex", "é" * 64])
def test_a_missing_or_wrong_signature_is_a_401_that_never_echoes_secrets(signature: str | None) -> None:
    body = json.dumps(doc("issue_created")).encode()
    with pytest.raises(Unauthorized) as caught:
        sentry.parse(json.loads(body), signed(body, signature))
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    said = caught.value.message + " ".join(caught.value.problems)
    assert caught.value.message == "invalid Sentry-Hook-Signature"
    assert SECRET not in said and expected not in said


def test_a_signature_for_another_body_or_secret_is_refused_and_the_right_one_passes() -> None:
    body = json.dumps(doc("issue_created")).encode()
    good = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert sentry.parse(json.loads(body), signed(body, good)).alerts
    assert sentry.parse(json.loads(body), signed(body, good.upper())).alerts
    with pytest.raises(Unauthorized):
        sentry.parse(json.loads(body), signed(body + b" ", good))
    with pytest.raises(Unauthorized):
        sentry.parse(json.loads(body), signed(body, good, secret="another-fake-secret"))


def test_sentrys_signature_checks_its_timestamp_too() -> None:
    import hashlib
    import hmac

    body = b'{"action": "created"}'
    secret = "sentry-client-secret-000000000000001"
    headers = {
        "sentry-hook-signature": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
        "sentry-hook-timestamp": str(int(NOW - 10)),
    }
    verify_signature(body, headers, secret, NOW)
    with pytest.raises(Unauthorized, match="Sentry-Hook-Timestamp"):
        verify_signature(body, {**headers, "sentry-hook-timestamp": str(int(NOW - 3600))}, secret, NOW)
    with pytest.raises(Unauthorized, match="Sentry-Hook-Timestamp"):
        verify_signature(body, {**headers, "sentry-hook-timestamp": "yesterday"}, secret, NOW)


def test_without_a_secret_signatures_are_not_checked() -> None:
    assert parse(doc("issue_created"), "issue").alerts


def test_the_secret_is_validated_and_hidden() -> None:
    assert option_problems("sentry", {"client_secret": "x" * 20}) == []
    assert option_problems("sentry", {"client_secret": "  "})
    assert option_problems("sentry", {"secret": "x"})
    options = sentry.Options.model_validate({"client_secret": SECRET})
    assert SECRET not in repr(options) and SECRET not in str(options.model_dump())


# --- hostile input and detection ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("title", None),
        ("title", {"a": 1}),
        ("title", "Ünïcødé 💥 " * 20_000),
        ("shortId", 7),
        ("culprit", ["x"]),
        ("project", "payments"),
        ("metadata", None),
        ("level", {"x": 1}),
        ("firstSeen", "long ago"),
        ("web_url", "javascript:alert(1)"),
        ("assignedTo", "ada"),
        ("statusDetails", "x"),
        ("id", 4000000001),
    ],
)
def test_junk_in_an_issue_degrades_instead_of_failing(field: str, value: Any) -> None:
    payload = doc("issue_created")
    payload["data"]["issue"][field] = value
    alert = one(payload, "issue")
    assert alert.summary and len(alert.summary) <= SUMMARY_LIMIT and alert.source
    assert all(link.href.startswith("https://") for link in alert.links)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tags", "env:prod"),
        ("tags", [["only-one"], None, {"key": "environment", "value": "staging"}]),
        ("title", None),
        ("datetime", 12),
        ("url", None),
        ("metadata", []),
        ("level", None),
    ],
)
def test_junk_in_an_event_degrades_instead_of_failing(field: str, value: Any) -> None:
    payload = doc("event_alert")
    payload["data"]["event"][field] = value
    alert = one(payload, "event_alert")
    assert alert.summary and alert.source


def test_an_assignment_to_nobody_is_still_a_note() -> None:
    payload = doc("issue_assigned")
    payload["data"]["issue"]["assignedTo"] = None
    assert parse(payload, "issue").notes == ["Sentry PAYMENTS-API-3F assigned to someone: nothing to page"]


def test_a_body_that_is_not_an_object_is_a_400() -> None:
    with pytest.raises(BadRequest):
        sentry.parse([1, 2], ctx("issue"))


def test_detect_by_header_or_body_shape_only() -> None:
    assert sentry.detect({}, {"sentry-hook-resource": "issue"})
    assert sentry.detect(doc("issue_archived"), {})
    assert sentry.detect(doc("installation"), {})
    assert not sentry.detect({"action": "created", "data": {"thing": {}}}, {})
    assert not sentry.detect({"data": {"issue": {}}}, {})
    assert not sentry.detect(load_event("formats/alertmanager/firing.json"), {})
