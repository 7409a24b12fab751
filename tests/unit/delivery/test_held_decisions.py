"""The pure parts of alert policy: held alerts in the dedup decision, route configuration with
destinations and rules, the roll-up event, and the advice a test report gives."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from pdrelay.config import RelayConfig, parse_config
from pdrelay.delivery.decisions import Event, Record, decide
from pdrelay.errors import ConfigError
from pdrelay.ops.probes import advice
from pdrelay.policy.judge import rollup_event

KEY_A = "AAAAR0UT1NGKEY000000000000000001"
KEY_B = "BBBBR0UT1NGKEY000000000000000002"


def event(action: str = "trigger", at: int = 2_000, content: str = "h1") -> Event:
    return Event(
        pk="pk",
        dedup_key="k",
        action=action,
        at=at,
        content_hash=content,
        route="r",
        format="f",
        identity="i",
        payload={},
        received=at,
    )


def held(**changes: Any) -> Record:
    base = Record(
        pk="pk",
        dedup_key="k",
        state="triggered",
        started_at=1_000,
        event_at=1_000,
        last_action="trigger",
        content_hash="h1",
        delivered=True,
        version=3,
        hold="window:db",
        message="{}",
        last_received=1_000,
    )
    return replace(base, **changes)


def test_a_repeat_of_a_held_trigger_is_a_candidate_to_send_again() -> None:
    decision = decide(held(), event(at=1_000), now=5_000, lease=100)
    assert (decision.send, decision.reason) == ("trigger", "release")
    assert decision.record is not None and decision.record.hold == "window:db"  # the policy decides again
    assert decision.record.lease_until == 5_100


def test_an_older_trigger_of_a_held_alert_is_still_stale() -> None:
    assert decide(held(), event(at=500), now=5_000).reason == "stale"


def test_a_paged_alert_is_never_released_again() -> None:
    decision = decide(held(hold="", paged=True), event(at=1_000), now=5_000)
    assert decision.reason == "duplicate"


def test_a_new_episode_forgets_the_previous_hold_and_roll_up() -> None:
    resolved = held(
        state="resolved", last_action="resolve", hold="rollup", rollup="pdrelay-rollup:r:1", suppressed=4, paged=False
    )
    decision = decide(resolved, event(at=3_000), now=5_000)
    assert decision.reason == "reopen" and decision.record is not None
    assert (decision.record.hold, decision.record.rollup, decision.record.suppressed, decision.record.paged) == (
        "",
        "",
        0,
        False,
    )


def config(**route: Any) -> dict[str, Any]:
    return {
        "default_route": "shop",
        "callers": [{"name": "c", "token": "t" * 20}],
        "routes": {
            "shop": {"destinations": {"team": {"routing_key": KEY_A}, "platform": {"routing_key": KEY_B}}, **route}
        },
    }


def problems(doc: dict[str, Any]) -> list[str]:
    import json

    with pytest.raises(ConfigError) as caught:
        parse_config(json.dumps(doc))
    return caught.value.problems


def test_a_route_with_destinations_lists_them_in_order_and_defaults_to_all() -> None:
    route = RelayConfig.model_validate(config()).routes["shop"]
    assert route.targets == {"team": KEY_A, "platform": KEY_B}
    assert route.defaults == ("team", "platform") and route.primary_key == KEY_A


def test_the_routing_key_shorthand_is_the_destination_named_default() -> None:
    one = RelayConfig.model_validate({**config(), "routes": {"shop": {"routing_key": KEY_A}}}).routes["shop"]
    assert one.targets == {"default": KEY_A}
    both = {**config(), "routes": {"shop": {"routing_key": KEY_B, "destinations": {"default": {"routing_key": KEY_A}}}}}
    assert any("destinations.default: already defined by routing_key" in p for p in problems(both))


@pytest.mark.parametrize(
    ("route", "expected"),
    [
        ({"rules": [{"name": "x", "send_to": ["nowhere"]}]}, "rules.0.send_to: no destination named 'nowhere'"),
        ({"default_destinations": ["ghost"]}, "default_destinations: no destination named 'ghost'"),
        ({"rules_match": "some"}, "routes.shop.rules_match"),
        ({"storm": {"max_new_per_minute": -1}}, "routes.shop.storm.max_new_per_minute"),
        ({"rules": [{"name": "r", "when": {"labels.team": {"regex": "(["}}}]}, "when.labels.team.regex"),
    ],
)
def test_route_mistakes_name_their_place(route: dict[str, Any], expected: str) -> None:
    assert any(expected in p for p in problems(config(**route))), problems(config(**route))


def test_a_route_needs_a_routing_key_or_a_destination() -> None:
    doc = config()
    doc["routes"]["shop"] = {"description": "nothing to page"}
    assert any("give a routing_key or at least one destination" in p for p in problems(doc))


def test_maintenance_windows_are_checked_against_the_routes_and_each_other() -> None:
    doc = config()
    window = {"name": "w", "start": "2026-12-01T22:00:00Z", "end": "2026-12-01T23:00:00Z", "routes": ["nope"]}
    doc["maintenance"] = [window, {**window, "routes": []}]
    found = problems(doc)
    assert any("maintenance.0.routes: no route named 'nope'" in p for p in found)
    assert any("maintenance.1.name: 'w' is used twice" in p for p in found)


def test_a_routing_key_of_any_destination_finds_its_route() -> None:
    assert RelayConfig.model_validate(config()).route_for_key(KEY_B) == "shop"


def test_the_roll_up_event_lists_its_open_alerts_and_says_how_many_are_not_listed() -> None:
    members = {f"alertmanager:{i}": f"node {i} down" for i in range(60)}
    doc = {"dedup_key": "pdrelay-rollup:ops:1", "route": "ops", "members": members, "total": 75}
    built = rollup_event(doc, "trigger", KEY_A)
    details = built["payload"]["custom_details"]
    assert (built["event_action"], built["dedup_key"], built["routing_key"]) == (
        "trigger",
        "pdrelay-rollup:ops:1",
        KEY_A,
    )
    assert (details["open_alerts"], details["alerts_rolled_up"], details["not_listed"]) == (60, 75, 10)
    assert len(details["alerts"]) == 50


@pytest.mark.parametrize(
    ("status", "error", "expected"),
    [
        (202, None, "ok: PagerDuty accepted the event"),
        (
            400,
            "PagerDuty rejected the event: Event object is invalid; Invalid routing key",
            "the routing key is not an Events API v2 integration key",
        ),
        (
            400,
            "PagerDuty rejected the event: Event object is invalid; 'payload.summary' is missing",
            "PagerDuty refused the event as invalid",
        ),
        (404, "PagerDuty answered 404: Not Found", "the Events API URL looks wrong"),
        (429, "PagerDuty answered 429: Too many requests (retrying)", "throttling this routing key"),
        (503, "PagerDuty answered 503 (retrying)", "PagerDuty had a problem answering"),
        (None, "could not connect to the Events API (retrying)", "cannot reach the Events API"),
        (None, "timed out waiting for the Events API (retrying)", "did not answer in time"),
    ],
)
def test_a_test_report_translates_answers_into_advice(status: int | None, error: str | None, expected: str) -> None:
    assert expected in advice(status, error)
