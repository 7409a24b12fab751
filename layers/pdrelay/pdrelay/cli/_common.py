"""What several commands share: the running `pdrelay dev`'s state, options, the operators' wrapper."""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeAlias

from botocore.exceptions import BotoCoreError, ClientError

from pdrelay.errors import PdrelayError
from pdrelay.local.state import dev_state_file
from pdrelay.ops import resources
from pdrelay.ops.resources import Resources

Command = Callable[[argparse.Namespace], int]
OperatorCommand = Callable[[argparse.Namespace, Resources], int]
# What `add_subparsers()` returns: each command module's `register` adds its parsers to it.
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def read_state() -> dict[str, Any]:
    """What the running `pdrelay dev` wrote down (URLs, token, queues); empty when none runs."""
    try:
        return dict(json.loads(dev_state_file().read_text()))
    except (OSError, ValueError):
        return {}


def write_state(state: dict[str, Any]) -> Path:
    """Written by `pdrelay dev` once its stack runs; readable by its user only (it holds the token)."""
    path = dev_state_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(json.dumps(state))
    return path


def parse_fields(items: list[str] | None, command: str) -> dict[str, str] | None:
    """`-f KEY=VALUE` options as custom details; None (after saying why) when one lacks its `=`."""
    details: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            print(f"pdrelay {command}: -f takes KEY=VALUE, got {item!r}", file=sys.stderr)
            return None
        details[key] = value
    return details


def add_relay_options(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """--url and --token: which relay a command talks to over HTTP."""
    parser.add_argument("--url", help="relay base URL (default: the running `pdrelay dev`); env PDRELAY_URL")
    parser.add_argument("--token", help="relay bearer token; env PDRELAY_TOKEN")
    return parser


def add_stack_option(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """--stack: an operators' command works on a deployed stack instead of the running `pdrelay dev`."""
    parser.add_argument("--stack", help="a deployed stack's name (default: the running `pdrelay dev`)")
    return parser


def _resources(args: argparse.Namespace) -> Resources:
    if getattr(args, "stack", None):
        return resources.from_stack(args.stack)
    return resources.from_dev_state()


def _copy_to_dev_log(args: argparse.Namespace) -> Callable[[], None]:
    """On the running `pdrelay dev`, the command's log lines also go to its log file, where
    `pdrelay trace` finds them beside the functions' (what `pdrelay sweep`, `redrive` or `reconcile`
    did to an alert); on a deployed stack they stay on this terminal. Returns how to stop."""
    log_file = "" if getattr(args, "stack", None) else str(read_state().get("log_file") or "")
    if not log_file:
        return lambda: None
    from pdrelay.observability import copy_lines_to, logger

    def write(line: str) -> None:
        try:
            with open(log_file, "a", encoding="utf-8") as out:  # a few lines: `pdrelay dev` rotates the file
                out.write(line + "\n")
        except OSError:
            pass  # the stack stopped and its folder went: the terminal still has the line

    logger.append_keys(function=f"pdrelay {args.command}")  # beside the functions' lines: say whose
    stop = copy_lines_to(write)

    def done() -> None:
        stop()
        logger.remove_keys(["function"])

    return done


def one_line_errors(name: str, call: Callable[[], int]) -> int:
    """``call()``, its problems turned into one clear line: 2 for pdrelay's own, 1 for AWS's."""
    try:
        return call()
    except PdrelayError as exc:
        print(f"pdrelay {name}: {exc}", file=sys.stderr)
        return 2
    except (ClientError, BotoCoreError) as exc:
        print(f"pdrelay {name}: AWS said: {exc}", file=sys.stderr)
        return 1


def operator(command: OperatorCommand) -> Command:
    """Run an operators' command on its stack's resources, turning problems into one clear line."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        stop_copying = _copy_to_dev_log(args)
        try:
            return one_line_errors(args.command, lambda: command(args, _resources(args)))
        finally:
            stop_copying()

    return run
