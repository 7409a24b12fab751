"""Which route a request takes: callers authenticate with a bearer token or basic auth, requests pick
routes (never keys in URLs), and a route's destinations are read from the configuration, each
mistake named by its place."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from pdrelay.config import RelayConfig, parse_config
from pdrelay.errors import BadRequest, ConfigError, Forbidden, Unauthorized
from pdrelay.ingest.auth import authenticate
from pdrelay.policy.routing import route_for_routing_key, select_route
from tests.conftest import ROUTING_KEY

OTHER_KEY = "0THERR0UT1NGKEY00000000000000002"
KEY_A = "AAAAR0UT1NGKEY000000000000000001"
KEY_B = "BBBBR0UT1NGKEY000000000000000002"
CONFIG = RelayConfig.model_validate(
    {
        "default_route": "platform",
        "callers": [
            {"name": "am", "token": "token-for-am-0000001", "routes": ["platform"]},
            {"name": "ops", "token": "token-for-ops-000001", "default_route": "db"},
        ],
        "routes": {"platform": {"routing_key": ROUTING_KEY}, "db": {"routing_key": OTHER_KEY}},
    }
)


# --- who calls, and which route it takes ---------------------------------------------------------


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_bearer_and_basic_auth_identify_the_caller() -> None:
    assert authenticate(CONFIG, {"authorization": "Bearer token-for-am-0000001"}).name == "am"
    assert authenticate(CONFIG, {"authorization": basic("anyone", "token-for-ops-000001")}).name == "ops"


@pytest.mark.parametrize(
    "header", [None, "Bearer", "Bearer wrong-token-000000", "Basic !!!", "Token x", basic("am", "")]
)
def test_missing_or_wrong_credentials_are_401(header: str | None) -> None:
    headers = {"authorization": header} if header is not None else {}
    with pytest.raises(Unauthorized):
        authenticate(CONFIG, headers)


def test_routes_come_from_query_header_caller_default_then_document_default() -> None:
    am, ops = CONFIG.callers
    assert select_route(CONFIG, am, {}, {}).route == "platform"
    assert select_route(CONFIG, ops, {}, {}).route == "db"
    assert select_route(CONFIG, ops, {"x-pdrelay-route": "platform"}, {}).route == "platform"
    assert select_route(CONFIG, ops, {}, {"route": "platform"}).routing_key == ROUTING_KEY


def test_a_caller_restricted_to_routes_cannot_use_others() -> None:
    with pytest.raises(Forbidden):
        select_route(CONFIG, CONFIG.callers[0], {}, {"route": "db"})


def test_an_unknown_route_is_a_400_listing_the_known_ones() -> None:
    with pytest.raises(BadRequest) as caught:
        select_route(CONFIG, CONFIG.callers[1], {}, {"route": "nope"})
    assert "platform" in caught.value.problems[0]


def test_events_v2_routing_key_may_be_a_route_name_or_a_configured_key() -> None:
    ops = CONFIG.callers[1]
    assert route_for_routing_key(CONFIG, ops, "db").routing_key == OTHER_KEY
    assert route_for_routing_key(CONFIG, ops, ROUTING_KEY).route == "platform"


def test_unlisted_routing_keys_pass_only_when_the_document_allows_it() -> None:
    ops = CONFIG.callers[1]
    stranger = "STRANGERKEY000000000000000000003"
    with pytest.raises(BadRequest):
        route_for_routing_key(CONFIG, ops, stranger)
    open_config = CONFIG.model_copy(update={"allow_unlisted_routing_keys": True})
    assert route_for_routing_key(open_config, ops, stranger).route is None


# --- routes with destinations, as the configuration gives them --------------------------------


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
