"""Event templates through the real ingest and dispatch handlers against moto and the PagerDuty
emulator: a route's templates write the event PagerDuty gets, a rule's override them for its
destinations, a repeat renders the same and is not re-sent, and a template that fails on an
alert still delivers the format's summary with a note."""

from __future__ import annotations

from typing import Any

from pdrelay.local.emulator import EmulatorServer
from tests.conftest import unique
from tests.integration.conftest import Aws, Handler
from tests.integration.policy_harness import (
    PLATFORM_KEY,
    TEAM_KEY,
    alertmanager,
    configured_with,
    dispatch_all,
    post,
    shop_doc,
)


def templated_doc() -> dict[str, Any]:
    doc = shop_doc(
        templates={
            "summary": "[{{ labels.cluster | upper }}] {{ labels.alertname }} on {{ labels.instance }}",
            "source": "{{ labels.instance.split(':')[0] }}",
            "custom_details": {"runbook": "{{ annotations.runbook_url }}"},
        }
    )
    critical = doc["routes"]["shop"]["rules"][1]
    critical["templates"] = {"summary": "CRITICAL {{ labels.alertname }} ({{ labels.job }})"}
    return doc


configure = configured_with(templated_doc)


def triggers(pagerduty: EmulatorServer, key: str) -> list[dict[str, Any]]:
    """The triggers PagerDuty received on ``key`` (the emulator keeps routing keys masked: …last 4)."""
    return [e for e in pagerduty.state.events if e["routing_key"] == "…" + key[-4:] and e["event_action"] == "trigger"]


def test_the_routes_templates_write_the_event_pagerduty_gets(
    aws: Aws, pagerduty: EmulatorServer, ingest: Handler, configure: Any
) -> None:
    status, _ = post(ingest, "/v1/alerts/alertmanager", alertmanager(severity="warning", fingerprint=unique("fp")))
    assert status == 202
    assert {o.result for o in dispatch_all(aws)} == {"delivered"}
    (event,) = triggers(pagerduty, TEAM_KEY)
    assert event["payload"]["summary"] == "[PROD-EU] HighErrorRate on checkout-7f9c:8080"
    assert event["payload"]["source"] == "checkout-7f9c"
    assert event["payload"]["custom_details"]["runbook"] == "https://runbooks.example.com/checkout/errors"
    assert "pdrelay_template_errors" not in event["payload"]["custom_details"]


def test_a_rules_templates_override_the_routes_and_a_repeat_is_not_sent_again(
    aws: Aws, pagerduty: EmulatorServer, ingest: Handler, configure: Any
) -> None:
    doc = alertmanager(severity="critical", fingerprint=unique("fp"))
    post(ingest, "/v1/alerts/alertmanager", doc)
    dispatch_all(aws)
    sent = triggers(pagerduty, TEAM_KEY) + triggers(pagerduty, PLATFORM_KEY)
    assert [e["payload"]["summary"] for e in sent] == ["CRITICAL HighErrorRate (checkout)"] * 2
    assert {e["payload"]["source"] for e in sent} == {"checkout-7f9c"}  # the route's, not overridden

    # Alertmanager repeats the notification: the same alert renders the same event (same content
    # hash), which the dedup table recognizes and does not send again.
    post(ingest, "/v1/alerts/alertmanager", doc)
    assert {o.reason for o in dispatch_all(aws)} == {"duplicate"}
    assert len(triggers(pagerduty, TEAM_KEY) + triggers(pagerduty, PLATFORM_KEY)) == 2


def test_a_template_that_fails_delivers_the_formats_summary_with_a_note(
    aws: Aws, pagerduty: EmulatorServer, ingest: Handler, configure: Any
) -> None:
    doc = templated_doc()
    doc["routes"]["shop"]["templates"]["summary"] = "{{ labels.alertname ~ (1 / 0) }}"
    configure(doc)
    post(ingest, "/v1/alerts/alertmanager", alertmanager(severity="warning", fingerprint=unique("fp")))
    assert {o.result for o in dispatch_all(aws)} == {"delivered"}
    (event,) = triggers(pagerduty, TEAM_KEY)
    assert event["payload"]["summary"] == "Checkout 5xx rate above 5% for 10 minutes"
    assert event["payload"]["custom_details"]["pdrelay_template_errors"] == [
        "summary: ZeroDivisionError: division by zero; kept the format's summary"
    ]
