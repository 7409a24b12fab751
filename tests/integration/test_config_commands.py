"""`pdrelay config push`, `validate` and `explain`: push validates, then stores in SSM or Secrets
Manager (moto) what the functions read back; validate and explain answer hostile files and
arguments (a YAML alias bomb, a file that is not UTF-8, a bad ``--at``) with an error, never a
traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.conftest import Aws
from tests.integration.policy_harness import (
    OPS_KEY,
    PLATFORM_KEY,
    TEAM_KEY,
    ops_doc,
    shop_doc,
)


def test_config_push_validates_then_stores_in_ssm_or_secrets_manager(aws: Aws, tmp_path: Path) -> None:
    import boto3

    from pdrelay.config import load_config
    from pdrelay.errors import ConfigError
    from pdrelay.ops import configtool
    from pdrelay.settings import Settings

    text = "# ours\n" + json.dumps(shop_doc())
    ssm, secrets = boto3.client("ssm"), boto3.client("secretsmanager")
    assert "SecureString" in configtool.push(text, "ssm:/pdrelay/config", ssm=ssm)
    assert ssm.get_parameter(Name="/pdrelay/config", WithDecryption=True)["Parameter"]["Value"] == text
    assert configtool.push(text, "secret:pdrelay/config", secretsmanager=secrets) == "created secret pdrelay/config"
    assert "new version" in configtool.push(text, "secret:pdrelay/config", secretsmanager=secrets)
    # What the functions read back is the same configuration.
    loaded = load_config(Settings.from_env({"PDRELAY_CONFIG": "ssm:/pdrelay/config"}))
    assert loaded.routes["shop"].targets == {"team": TEAM_KEY, "platform": PLATFORM_KEY}
    with pytest.raises(ConfigError) as refused:
        configtool.push(
            text.replace('"default_route": "shop"', '"default_route": "nope"'), "ssm:/pdrelay/config", ssm=ssm
        )
    assert "default_route: no route named 'nope'" in str(refused.value.problems)
    assert ssm.get_parameter(Name="/pdrelay/config", WithDecryption=True)["Parameter"]["Value"] == text
    big = text + "\n#" + "x" * 9000
    with pytest.raises(ConfigError, match="SSM parameters hold at most 8192"):
        configtool.push(big, "ssm:/pdrelay/config", ssm=ssm)


def cli(*argv: str) -> int:
    from pdrelay.cli import main

    return main(list(argv))


def test_config_validate_survives_a_yaml_alias_bomb_and_reports_the_places(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x"]']
    lines += [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 8)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join([*lines, "default_route: *a7"]))
    assert cli("config", "validate", str(path)) == 2
    assert "default_route: Input should be a valid string" in capsys.readouterr().err


def test_config_validate_on_a_file_that_is_not_utf8_is_an_error_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("default_route: caf\u00e9\n".encode("latin-1"))
    assert cli("config", "validate", str(path)) == 2
    assert "UTF-8" in capsys.readouterr().err


def test_config_explain_with_a_bad_at_is_an_error_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, payload = tmp_path / "c.json", tmp_path / "p.json"
    config.write_text(json.dumps(ops_doc()))
    payload.write_text(
        json.dumps(
            {
                "routing_key": OPS_KEY,
                "event_action": "trigger",
                "payload": {"summary": "s", "source": "h", "severity": "error"},
            }
        )
    )
    assert cli("config", "explain", str(config), "--payload", str(payload), "--at", "tomorrow 9am") == 2
    assert "--at" in capsys.readouterr().err
