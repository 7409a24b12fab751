"""`pdrelay config validate|explain|push`: check a configuration document, try it on a payload, deploy it."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pdrelay.cli._common import Command, Commands
from pdrelay.errors import PdrelayError

if TYPE_CHECKING:
    from pdrelay.config import RelayConfig

ConfigCommand = Callable[[argparse.Namespace, str, "RelayConfig"], int]


def _on_document(command: ConfigCommand) -> Command:
    """Run a config command on the parsed FILE (and its text), turning problems into clear lines."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        # Here, not at the top: the configuration's models load pydantic, which `pdrelay send` does without.
        from pdrelay.config import parse_config

        try:
            text = Path(args.file).read_text(encoding="utf-8")
        except OSError as exc:
            print(f"pdrelay config: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
            return 2
        except UnicodeDecodeError as exc:
            print(f"pdrelay config: {args.file} is not UTF-8 text (byte {exc.start})", file=sys.stderr)
            return 2
        try:
            return command(args, text, parse_config(text, args.file))
        except PdrelayError as exc:
            print(f"pdrelay config {args.config_command}: {getattr(exc, 'message', None) or exc}", file=sys.stderr)
            for problem in getattr(exc, "problems", None) or []:
                print(f"  - {problem}", file=sys.stderr)
            return 2
        except OSError as exc:
            print(f"pdrelay config {args.config_command}: {exc}", file=sys.stderr)
            return 2

    return run


@_on_document
def cmd_validate(args: argparse.Namespace, text: str, config: RelayConfig) -> int:
    from pdrelay.ops import configtool  # here: pydantic, as in _on_document

    print(f"{args.file}: valid")
    for line in configtool.summary(config):
        print(f"  {line}")
    return 0


@_on_document
def cmd_explain(args: argparse.Namespace, text: str, config: RelayConfig) -> int:
    from pdrelay.ops import configtool  # here: pydantic, as in _on_document

    try:
        at = datetime.fromisoformat(args.at) if args.at else datetime.now(UTC)
    except ValueError:
        print(
            f"pdrelay config explain: --at {args.at!r} is not an ISO 8601 time (e.g. 2026-12-01T22:30:00+01:00)",
            file=sys.stderr,
        )
        return 2
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    headers = dict(h.split(":", 1) for h in args.header or [] if ":" in h)
    result = configtool.explain(
        config,
        configtool.read_payload(args.payload),
        format_name=args.format,
        route=args.route,
        headers={k.strip(): v.strip() for k, v in headers.items()},
        at=at,
    )
    print(configtool.as_json(result) if args.json else "\n".join(result.lines))
    return 0


@_on_document
def cmd_push(args: argparse.Namespace, text: str, config: RelayConfig) -> int:
    target = args.to
    if not target and args.stack:
        target = _stack_config_source(args.stack)
    if not target:
        print("pdrelay config push: say where: --to ssm:/name, --to secret:name or --stack NAME", file=sys.stderr)
        return 2
    # Here, not at the top: boto3 takes a while to import, and only a push to AWS needs it.
    import boto3

    from pdrelay.ops import configtool  # pydantic, as in _on_document

    print(
        configtool.push(
            text,
            target,
            ssm=boto3.client("ssm") if target.startswith("ssm:") else None,
            secretsmanager=boto3.client("secretsmanager") if target.startswith("secret:") else None,
        )
    )
    print("the functions pick it up within a minute (PDRELAY_CONFIG_MAX_AGE)")
    return 0


def _stack_config_source(stack: str) -> str:
    import boto3  # here: see cmd_push

    stacks = boto3.client("cloudformation").describe_stacks(StackName=stack)["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    return str(outputs.get("ConfigSource", ""))


def register(commands: Commands) -> None:
    config = commands.add_parser("config", help="check and deploy a configuration").add_subparsers(
        dest="config_command", required=True
    )
    validate = config.add_parser("validate", help="check a configuration file")
    validate.add_argument("file")
    validate.set_defaults(func=cmd_validate)
    explain = config.add_parser("explain", help="what a payload would do under a configuration (sends nothing)")
    explain.add_argument("file")
    explain.add_argument("--payload", required=True, help="a monitor's JSON payload")
    explain.add_argument("--format", default="auto")
    explain.add_argument("--route", help="default: the configuration's default_route")
    explain.add_argument("--header", action="append", help="'Name: value' as the monitor sends it (repeatable)")
    explain.add_argument("--at", help="evaluate maintenance windows at this ISO 8601 time (default now)")
    explain.add_argument("--json", action="store_true")
    explain.set_defaults(func=cmd_explain)
    push = config.add_parser("push", help="validate and store a configuration for a deployed stack")
    push.add_argument("file")
    target = push.add_mutually_exclusive_group()
    target.add_argument("--to", help="ssm:/parameter-name or secret:secret-name")
    target.add_argument("--stack", help="a deployed stack (its ConfigSource output)")
    push.set_defaults(func=cmd_push)
