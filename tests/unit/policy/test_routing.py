"""Callers authenticate with a bearer token or basic auth; requests pick routes, never keys in URLs."""

from __future__ import annotations

import base64

import pytest

from pdrelay.config import RelayConfig
from pdrelay.errors import BadRequest, Forbidden, Unauthorized
from pdrelay.ingest.auth import authenticate
from pdrelay.policy.routing import route_for_routing_key, select_route
from tests.conftest import ROUTING_KEY

OTHER_KEY = "0THERR0UT1NGKEY00000000000000002"
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
