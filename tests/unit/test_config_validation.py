"""The configuration document is validated at load, and every error says where the mistake is."""

from __future__ import annotations

import json

import pytest

from pdrelay.config import DEMO_ROUTING_KEY, default_config, load_config, parse_config
from pdrelay.errors import ConfigError
from pdrelay.settings import Settings
from tests.conftest import ROUTING_KEY

GOOD = {
    "version": 1,
    "default_route": "platform",
    "callers": [{"name": "alertmanager", "token": "a" * 24, "routes": ["platform"]}],
    "routes": {"platform": {"routing_key": ROUTING_KEY}},
}


def problems_of(doc: object) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(json.dumps(doc))
    return caught.value.problems


def test_a_valid_document_loads() -> None:
    config = parse_config(json.dumps(GOOD))
    assert config.routes["platform"].routing_key == ROUTING_KEY
    assert config.route_for_key(ROUTING_KEY) == "platform"


def test_yaml_is_accepted_too() -> None:
    text = f"""
default_route: platform
callers:
  - name: am
    token: {"b" * 20}
routes:
  platform:
    routing_key: {ROUTING_KEY}
"""
    assert parse_config(text).default_route == "platform"


def test_a_bad_routing_key_is_reported_with_its_path() -> None:
    doc = json.loads(json.dumps(GOOD))
    doc["routes"]["platform"]["routing_key"] = "too-short"
    assert any(p.startswith("routes.platform.routing_key:") for p in problems_of(doc))


def test_references_to_missing_routes_are_reported() -> None:
    doc = json.loads(json.dumps(GOOD))
    doc["default_route"] = "nope"
    doc["callers"][0]["routes"] = ["ghost"]
    problems = " ".join(problems_of(doc))
    assert "default_route: no route named 'nope'" in problems
    assert "callers.0.routes: no route named 'ghost'" in problems


def test_short_tokens_unknown_fields_and_duplicate_tokens_are_refused() -> None:
    doc = json.loads(json.dumps(GOOD))
    doc["callers"][0]["token"] = "short"
    doc["surprise"] = True
    problems = problems_of(doc)
    assert any(p.startswith("callers.0.token:") for p in problems)
    assert any(p.startswith("surprise:") for p in problems)
    doc = json.loads(json.dumps(GOOD))
    doc["callers"].append({"name": "other", "token": "a" * 24})
    assert any("same token" in p for p in problems_of(doc))


def test_not_yaml_at_all_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not valid YAML"):
        parse_config("routes: [unclosed")
    with pytest.raises(ConfigError, match="mapping"):
        parse_config("[1, 2]")


def test_errors_never_echo_the_routing_key_or_token() -> None:
    doc = json.loads(json.dumps(GOOD))
    doc["routes"]["platform"]["routing_key"] = "S3CRETVALUE-that-is-wrong"
    doc["callers"][0]["token"] = "tiny"
    with pytest.raises(ConfigError) as caught:
        parse_config(json.dumps(doc))
    assert "S3CRETVALUE" not in str(caught.value)


def test_without_a_source_the_embedded_default_uses_the_token_and_demo_key() -> None:
    config = default_config(Settings.from_env({"PDRELAY_TOKEN": "t" * 20}))
    assert config.routes["default"].routing_key == DEMO_ROUTING_KEY
    with pytest.raises(ConfigError, match="PDRELAY_TOKEN"):
        default_config(Settings.from_env({}))


def test_a_file_source_is_read_and_a_missing_file_is_a_clear_error(tmp_path) -> None:
    path = tmp_path / "pdrelay.json"
    path.write_text(json.dumps(GOOD))
    assert load_config(Settings.from_env({"PDRELAY_CONFIG": str(path)})).default_route == "platform"
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(Settings.from_env({"PDRELAY_CONFIG": str(tmp_path / "missing.json")}))


def test_invalid_environment_settings_name_the_variable() -> None:
    with pytest.raises(ConfigError, match="PDRELAY_MAX_BODY_BYTES"):
        Settings.from_env({"PDRELAY_MAX_BODY_BYTES": "lots"})


def test_a_default_configuration_from_a_short_token_is_a_configuration_error_that_never_echoes_it() -> None:
    """`pdrelay dev --token short` stops at start with the reason, instead of answering 500 to every request."""
    with pytest.raises(ConfigError) as refused:
        default_config(Settings.from_env({"PDRELAY_TOKEN": "short-secret"}))
    assert "callers.0.token: String should have at least 16 characters" in str(refused.value)
    assert "short-secret" not in str(refused.value)


def test_a_yaml_error_never_quotes_the_line_with_a_token() -> None:
    text = 'default_route: a\ncallers:\n  - name: x\n    token: "s3cr3t-token-value-1234\nroutes: {}\n'
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert "s3cr3t" not in str(caught.value)
    assert "line" in str(caught.value)
