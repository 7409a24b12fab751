"""`pdrelay trace KEY`: what happened to an alert, from the logs, and its state now, from the table.

On the running `pdrelay dev` (its log file, ``dev.log`` in the state folder, or ``--log-file``) or on
a deployed stack with --stack NAME (one CloudWatch Logs Insights query over its functions' log
groups). See :mod:`pdrelay.ops.trace`.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from pdrelay.cli._common import Commands, add_stack_option, one_line_errors, read_state
from pdrelay.errors import ConfigError, PdrelayError

if TYPE_CHECKING:
    from pdrelay.ops.resources import Resources
    from pdrelay.ops.trace import Trace
    from pdrelay.timeutil import Clock

DEFAULT_SINCE = "24h"


def cmd_trace(args: argparse.Namespace) -> int:
    # Not an `operator` command: it reads the logs of a stopped `pdrelay dev` too.
    return one_line_errors("trace", lambda: _show(run(args), args.json))


def _show(found: Trace, as_json: bool) -> int:
    print(json.dumps(found.as_dict(), indent=2, ensure_ascii=False) if as_json else render(found))
    return 0 if found.steps or found.states else 3


def run(args: argparse.Namespace, clock: Clock | None = None, cloudformation: Any = None, logs: Any = None) -> Trace:
    """The trace the options ask for (clients and clock injectable, for tests)."""
    # Here, not at the top: the table store loads pydantic models; only this command needs them.
    from pdrelay.local.state import dev_log_file
    from pdrelay.ops import resources as stack_resources
    from pdrelay.ops import trace
    from pdrelay.timeutil import SYSTEM_CLOCK

    clock = clock or SYSTEM_CLOCK
    now = clock.now()
    since = trace.since_option(args.since or DEFAULT_SINCE, now)
    where: Resources | None
    if args.stack:
        import boto3

        cloudformation = cloudformation or boto3.client("cloudformation")
        logs = logs or boto3.client("logs")
        found = trace.stack_logs(args.stack, cloudformation)

        def fetch(texts: list[str]) -> tuple[list[trace.LogLine], bool]:
            return trace.search_logs(logs, found.groups, texts, since, now, clock)

        source = f"stack {args.stack} ({len(found.groups)} log groups)"
        max_receives = found.max_receives
        where = stack_resources.from_stack(args.stack, cloudformation)
    else:
        state = read_state()
        path = Path(args.log_file or state.get("log_file") or dev_log_file()).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"no log file at {path}", ["start `pdrelay dev` (it writes one), pass --log-file, or --stack NAME"]
            )

        this_run = args.since is None and not args.log_file and bool(state.get("started_at"))
        if this_run:
            # The running stack's queues and table started empty: its own lines tell this alert's
            # story beside its table's state; an earlier run's are asked for with --since.
            since = datetime.fromisoformat(str(state["started_at"]))

        def fetch(texts: list[str]) -> tuple[list[trace.LogLine], bool]:
            return trace.read_log_files(path, since, texts), True

        source = str(path) + (" (since this `pdrelay dev` started; --since for earlier runs)" if this_run else "")
        max_receives = state.get("max_receives")
        where = stack_resources.from_dev_state() if state else None
    result = trace.trace_from_logs(args.key, fetch, max_receives)
    result.source = source
    keys = result.dedup_keys or [args.key]
    if where is None:
        result.notes.append("no running `pdrelay dev`: no state from the dedup table")
    else:
        routes = [s.route for s in result.steps if s.route] + list(args.route or [])
        try:
            result.states, scanned = current_states(where, keys, routes, now)
        except (PdrelayError, ClientError, BotoCoreError) as exc:  # the timeline is worth showing anyway
            result.notes.append(f"the dedup table could not be read ({exc}): no state shown")
            scanned = False
        if scanned:
            result.notes.append("no route's key history named this alert: its state was found by scanning the table")
    return result


def current_states(
    where: Resources, dedup_keys: list[str], routes: list[str], now: datetime
) -> tuple[list[dict[str, Any]], bool]:
    """Each alert's items from the table (through its routes' key history; a scan when none has
    it), as operators read them; and whether a scan was needed."""
    from pdrelay.ops.alerts import describe, items_of
    from pdrelay.table import DedupStore

    store = DedupStore(where.client("dynamodb"), where.table_name)
    states: list[dict[str, Any]] = []
    scanned = False
    for key in dedup_keys:
        records = items_of(store, key, routes) if routes else []
        if not records:
            records = store.find_alert_items(key)
            scanned = scanned or bool(records)
        states.extend({"dedup_key": key, **describe(r, now)} for r in records)
    return states, scanned


def _time(text: str | None) -> str:
    return (text or "-").replace("T", " ").removesuffix("Z")


def render(found: Trace) -> str:
    """The trace as a person reads it: a line per step, then a row per destination."""
    several = len(found.dedup_keys) > 1
    out = [
        f"pdrelay trace {found.key}: "
        + (
            f"{found.taken_as} → {', '.join(found.dedup_keys)}"
            if found.taken_as not in ("dedup key", "unknown")
            else found.taken_as
        )
        + f"; {len(found.steps)} step(s) from {found.source}",
        "",
    ]
    if not found.steps:
        out.append("no log line mentions it in that time (see --since)")
    else:
        head = f"{'time (UTC)':<23}  {'step':<13}  {'destination':<12}  "
        out.append(head + ("dedup key / " if several else "") + "what")
        for step in found.steps:
            row = f"{_time(step.as_dict()['at']):<23}  {step.kind:<13}  {(step.destination or '-')[:12]:<12}  "
            out.append(row + (f"{step.dedup_key or '*'} / " if several else "") + step.text)
    out.append("")
    if found.states:
        out.append("state now (dedup table):")
        out.append(
            f"  {'route':<12} {'destination':<12} {'key':<6} {'state':<12} {'last action':<11} "
            f"{'delivered':<9} {'paged':<5} {'episode started':<23} {'sends':>5}  more"
        )
        for s in found.states:
            more = [f"{k} {s[k]}" for k in ("hold", "rollup", "due_at", "sending_until", "suppressed") if s.get(k)]
            if several:
                more.insert(0, str(s["dedup_key"]))
            row = (
                f"  {str(s['route'])[:12]:<12} {str(s['destination'])[:12]:<12} {s['routing_key']:<6} "
                f"{s['state']:<12} {s['last_action']:<11} {'yes' if s['delivered'] else 'no':<9} "
                f"{'yes' if s['paged'] else 'no':<5} {_time(s['episode_started_at']):<23} {s['sends']:>5}  "
            )
            out.append((row + ", ".join(more)).rstrip())
    elif not any("no running" in n or "could not be read" in n for n in found.notes):
        out.append("state now: not in the dedup table (never sent, or resolved longer ago than it keeps alerts)")
    out.extend(f"note: {n}" for n in found.notes)
    return "\n".join(out)


def register(commands: Commands) -> None:
    trace = add_stack_option(
        commands.add_parser("trace", help="what happened to an alert: its timeline from the logs, its state now")
    )
    trace.add_argument("key", help="a dedup key, an alert identity (as the ingest answer shows it) or a request id")
    trace.add_argument(
        "--since",
        help=f"how far back to look: 30m, 24h, 7d or a time (default {DEFAULT_SINCE}; on the local stack, "
        "since the running `pdrelay dev` started)",
    )
    trace.add_argument(
        "--log-file",
        help="the local stack's log file (default: the running `pdrelay dev`'s, dev.log in its state folder)",
    )
    trace.add_argument("--route", action="append", help="also look for its state on this route (repeatable)")
    trace.add_argument("--json", action="store_true", help="the timeline and state as JSON, for tools")
    trace.set_defaults(func=cmd_trace)
