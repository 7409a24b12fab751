"""Routing rules through the real ingest and dispatch handlers against moto (in process) and the
PagerDuty emulator over HTTP: a critical alert opens one incident per destination and its resolve
closes each, an alert no rule matches goes to the default destination, a page-false rule queues
nothing, a v2 event follows its route's rules or its key, and credentials are scrubbed before
anything is queued."""

from __future__ import annotations

from typing import Any

from pdrelay.local.emulator import EmulatorServer
from pdrelay.models import parse_message
from tests.conftest import unique
from tests.integration.conftest import Aws, Handler
from tests.integration.policy_harness import (
    PLATFORM_KEY,
    TEAM_KEY,
    alertmanager,
    configured_with,
    dispatch_all,
    incidents,
    post,
    shop_doc,
)

configure = configured_with(shop_doc)


def test_a_critical_alert_opens_one_incident_per_destination_and_its_resolve_closes_each(
    aws: Aws, pagerduty: EmulatorServer, ingest: Handler, configure: Any
) -> None:
    fp = unique("fp")
    status, body = post(ingest, "/v1/alerts/alertmanager", alertmanager(fingerprint=fp))
    assert status == 202
    assert sorted((a["destination"], a["rule"]) for a in body["alerts"]) == [
        ("platform", "critical-to-both"),
        ("team", "critical-to-both"),
    ]
    assert {o.result for o in dispatch_all(aws)} == {"delivered"}
    (team,), (platform,) = incidents(pagerduty, TEAM_KEY), incidents(pagerduty, PLATFORM_KEY)
    assert team["severity"] == platform["severity"] == "critical"
    assert team["dedup_key"] == platform["dedup_key"]
    sent = [e for e in pagerduty.state.events if e["event_action"] == "trigger"]
    assert all(e["payload"]["custom_details"]["escalation"] == "team then platform" for e in sent)

    # The resolve reaches both incidents even though the rule matched on the firing alert's labels.
    status, body = post(ingest, "/v1/alerts/alertmanager", alertmanager("resolved", fingerprint=fp))
    assert status == 202 and len(body["alerts"]) == 2
    dispatch_all(aws)
    assert [i["status"] for i in incidents(pagerduty, TEAM_KEY) + incidents(pagerduty, PLATFORM_KEY)] == [
        "resolved",
        "resolved",
    ]


def test_an_alert_no_rule_matches_goes_to_the_default_destination_only(
    aws: Aws, pagerduty: EmulatorServer, ingest: Handler, configure: Any
) -> None:
    fp = unique("fp")
    _, body = post(ingest, "/v1/alerts/alertmanager", alertmanager(severity="warning", fingerprint=fp))
    assert [(a["destination"], a["rule"]) for a in body["alerts"]] == [("team", None)]
    dispatch_all(aws)
    assert len(incidents(pagerduty, TEAM_KEY)) == 1 and incidents(pagerduty, PLATFORM_KEY) == []
    # Its resolve still goes to every destination: the one whose table knows no incident forwards it
    # once (PagerDuty ignores it when nothing is open there), so an incident the table lost still closes.
    _, body = post(ingest, "/v1/alerts/alertmanager", alertmanager("resolved", severity="warning", fingerprint=fp))
    outcomes = dispatch_all(aws)
    assert sorted(o.reason for o in outcomes) == ["forward", "resolve"]
    assert [e["event_action"] for e in pagerduty.state.events] == ["trigger", "resolve", "resolve"]
    assert incidents(pagerduty, PLATFORM_KEY) == []


def test_a_page_false_rule_answers_with_a_note_and_queues_nothing(
    aws: Aws, pagerduty: EmulatorServer, ingest: Handler, configure: Any
) -> None:
    doc = alertmanager(severity="info")
    status, body = post(ingest, "/v1/alerts/alertmanager", doc)
    assert status == 202 and body["accepted"] == 0
    assert any("quiet-info" in note and "page: false" in note for note in body["notes"])
    assert aws.drain() == []


def test_a_v2_event_naming_a_route_follows_its_rules_and_one_naming_a_key_goes_to_that_key(
    aws: Aws, pagerduty: EmulatorServer, ingest: Handler, configure: Any
) -> None:
    event = {
        "routing_key": "shop",
        "event_action": "trigger",
        "dedup_key": unique("k"),
        "payload": {
            "summary": "disk full",
            "source": "db-1",
            "severity": "critical",
            "custom_details": {"labels": {"severity": "critical"}},
        },
    }
    status, body = post(ingest, "/v2/enqueue", event)
    assert status == 202 and body["dedup_key"] == event["dedup_key"]
    assert sorted(parse_message(m["Body"]).destination or "" for m in aws.drain()) == ["platform", "team"]
    post(ingest, "/v2/enqueue", {**event, "routing_key": PLATFORM_KEY})
    (only,) = [parse_message(m["Body"]) for m in aws.drain()]
    assert (only.routing_key, only.destination) == (PLATFORM_KEY, "platform")


def test_credentials_are_scrubbed_before_the_alert_is_queued(
    aws: Aws, pagerduty: EmulatorServer, ingest: Handler, configure: Any
) -> None:
    doc = alertmanager(severity="warning")
    doc["alerts"][0]["annotations"]["description"] = "login with postgres://app:Hunter2Secret@db.internal/shop"
    doc["alerts"][0]["annotations"]["api_token"] = "tok-live-00000000000000000000abcd"
    post(ingest, "/v1/alerts/alertmanager", doc)
    (queued,) = aws.drain()
    assert "Hunter2Secret" not in queued["Body"] and "tok-live-0000" not in queued["Body"]
    assert "db.internal" in queued["Body"]
