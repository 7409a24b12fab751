"""A route's destinations changed between an alert's trigger and its resolve, through the real
handlers against moto and the PagerDuty emulator: a destination added since gets the resolve once
and opens nothing; an incident opened on a destination removed since, or under a routing key
rotated since, is still resolved with the key it was opened with."""

from __future__ import annotations

from typing import Any

from pdrelay.local.emulator import EmulatorServer
from tests.conftest import unique
from tests.integration.conftest import Aws, Handler
from tests.integration.policy_harness import (
    PLATFORM_KEY,
    TEAM_KEY,
    by_key,
    configured_with,
    dispatch_all,
    dispatch_released,
    ops_doc,
    post,
)

configure = configured_with(ops_doc)


def test_an_incident_on_a_destination_removed_since_its_trigger_still_resolves(
    aws: Aws, pagerduty: EmulatorServer, configure: Any, ingest: Handler
) -> None:
    key = unique("k")
    event = {
        "routing_key": "shop",
        "event_action": "trigger",
        "dedup_key": key,
        "payload": {"summary": "disk full", "source": "db-1", "severity": "critical"},
    }
    assert post(ingest, "/v2/enqueue", event)[0] == 202
    assert [o.result for o in dispatch_released(aws.drain())] == ["delivered", "delivered"]
    configure(ops_doc(shop_destinations=("team",)))
    post(ingest, "/v2/enqueue", {**event, "event_action": "resolve"})
    dispatch_all(aws)  # the removed destination's resolve is queued by the team's copy
    assert by_key(pagerduty, TEAM_KEY)[key] == "resolved"
    assert by_key(pagerduty, PLATFORM_KEY)[key] == "resolved"


def test_an_incident_opened_under_a_routing_key_rotated_since_still_resolves(
    aws: Aws, pagerduty: EmulatorServer, configure: Any, ingest: Handler
) -> None:
    """PagerDuty closes an incident only for the key it was opened with: the resolve goes to both."""
    rotated = "R0TATEDTEAMKEY000000000000000009"
    key = unique("k")
    event = {
        "routing_key": "shop",
        "event_action": "trigger",
        "dedup_key": key,
        "payload": {"summary": "disk full", "source": "db-1", "severity": "critical"},
    }
    configure(ops_doc(shop_destinations=("team",)))
    assert post(ingest, "/v2/enqueue", event)[0] == 202
    assert [o.result for o in dispatch_all(aws)] == ["delivered"]
    doc = ops_doc(shop_destinations=("team",))
    doc["routes"]["shop"]["destinations"]["team"]["routing_key"] = rotated
    configure(doc)
    post(ingest, "/v2/enqueue", {**event, "event_action": "resolve"})
    outcomes = dispatch_all(aws)
    assert sorted(o.reason for o in outcomes) == ["forward", "resolve"]  # the new key knew nothing
    assert by_key(pagerduty, TEAM_KEY)[key] == "resolved"
    assert dispatch_all(aws) == []  # nothing left circling


def test_a_destination_added_between_trigger_and_resolve_gets_the_resolve_once_and_opens_nothing(
    aws: Aws, pagerduty: EmulatorServer, configure: Any, ingest: Handler
) -> None:
    configure(ops_doc(shop_destinations=("team",)))
    event = {
        "routing_key": "shop",
        "event_action": "trigger",
        "dedup_key": unique("k"),
        "payload": {"summary": "disk full", "source": "db-1", "severity": "critical"},
    }
    post(ingest, "/v2/enqueue", event)
    dispatch_released(aws.drain())
    configure(ops_doc())
    post(ingest, "/v2/enqueue", {**event, "event_action": "resolve"})
    assert sorted(o.reason for o in dispatch_released(aws.drain())) == ["forward", "resolve"]
    # The new destination's copy is forwarded once; PagerDuty has nothing open there and ignores it.
    assert [e["event_action"] for e in pagerduty.state.events] == ["trigger", "resolve", "resolve"]


def test_a_route_remembers_its_routing_keys_once_per_set_and_never_in_clear(
    aws: Aws, pagerduty: EmulatorServer, configure: Any, ingest: Handler
) -> None:
    from pdrelay.table import DedupStore, key_hash, route_keys_key

    configure(ops_doc(shop_destinations=("team",)))
    for _ in range(3):
        event = {
            "routing_key": "shop",
            "event_action": "trigger",
            "dedup_key": unique("k"),
            "payload": {"summary": "disk full", "source": "db-1", "severity": "critical"},
        }
        assert post(ingest, "/v2/enqueue", event)[0] == 202
    dispatch_all(aws)
    item = aws.dynamodb.get_item(TableName=aws.table_name, Key={"pk": {"S": route_keys_key("shop")}})["Item"]
    assert item["version"]["N"] == "1"  # one write for three triggers
    assert TEAM_KEY not in str(item)  # hashes only
    assert DedupStore(aws.dynamodb, aws.table_name).route_key_hashes("shop") == [key_hash(TEAM_KEY)]
