"""The ``pdrelay`` command.

dev            run the whole relay on this machine
send           send an event with the PagerDuty Agent's pd-send options
incidents      list the local PagerDuty emulator's incidents
queue status   where alerts are, per route (like pd-queue status)
dlq show       the dead-letter queue's messages and reasons
dlq purge      empty the dead-letter queue
redrive        move dead-lettered alerts back to the queue (like pd-queue retry)
sweep          re-send resolves never confirmed delivered
trace          what happened to an alert: its timeline from the logs, its state now
reconcile      compare PagerDuty's open incidents with the relay's table (--fix acts)
maintenance    add, list or end maintenance windows and silences
test           send a labelled test event to every destination of a route, then resolve it
change         send a change event (a deploy marker)
config         validate, explain (what a payload would do) or push a configuration

Operators' commands work on the running `pdrelay dev`, or on a deployed stack with --stack NAME.
"""

from __future__ import annotations

import argparse

# Every command module is imported to build the parser, so their top-level imports are what each
# command pays at start-up (`pdrelay send` runs from monitors' scripts): only the standard library,
# requests and botocore's exceptions. pydantic models, boto3, moto and the local stack are
# imported inside the commands that use them.
from pdrelay.cli import config, dev, maintenance, queues, reconcile, relay, send, trace


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pdrelay", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    dev.register(commands)
    send.register(commands)
    dev.register_incidents(commands)  # after send, as `pdrelay --help` has always listed them
    queues.register(commands)
    trace.register(commands)
    reconcile.register(commands)
    relay.register(commands)
    maintenance.register(commands)
    config.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))
