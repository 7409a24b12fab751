"""`pdrelay maintenance add|list|end`: windows and silences stored in the relay's table.

The table store, the windows and the configuration are pydantic models: each command imports them
itself, so that `pdrelay send` and the other commands start without loading them.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pdrelay.cli._common import Commands, add_stack_option, operator
from pdrelay.errors import ConfigError
from pdrelay.ops.resources import Resources

if TYPE_CHECKING:
    from pdrelay.policy.windows import Window
    from pdrelay.table import DedupStore


def _window_line(window: Window, now: datetime, origin: str) -> str:
    from pdrelay.policy.windows import format_duration  # pydantic: see the module docstring

    state = "active" if window.active_at(now) else "expired" if window.expired(now) else "scheduled"
    if window.schedule:
        when = (
            f"every {','.join(window.schedule.days)} at {window.schedule.at} for "
            f"{format_duration(window.schedule.duration)}"
        )
    else:
        assert window.start and window.end  # Window requires both when it has no schedule
        when = f"{window.start.isoformat()} → {window.end.isoformat()}"
    end = window.current_end(now) if window.active_at(now) else None
    matcher = ", ".join(f"{path} {test.describe()}" for path, test in window.when.root.items()) or "all alerts"
    return (
        f"{window.name:<24} {state:<9} {when} ({window.timezone}); routes {','.join(window.routes) or 'all'}; "
        f"{matcher}"
        + (f"; ends {end.isoformat()}" if end else "")
        + (f"; {window.comment}" if window.comment else "")
        + f"  [{origin}]"
    )


def _store(resources: Resources) -> DedupStore:
    from pdrelay.table import DedupStore  # pydantic: see the module docstring

    return DedupStore(resources.client("dynamodb"), resources.table_name)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@operator
def cmd_maintenance_list(args: argparse.Namespace, resources: Resources) -> int:
    from pdrelay.config import parse_config  # pydantic: see the module docstring
    from pdrelay.policy import judge

    store, now = _store(resources), _now()
    stored, _version = judge.stored_windows(store)
    shown = [(w, "pdrelay maintenance") for w in stored]
    if args.config:
        shown = [(w, "configuration") for w in parse_config(Path(args.config).read_text()).maintenance] + shown
    if args.json:
        print(
            json.dumps(
                [{**w.model_dump(mode="json"), "origin": o, "active": w.active_at(now)} for w, o in shown],
                indent=2,
                default=str,
            )
        )
    elif not shown:
        print(
            "no maintenance windows"
            + (
                ""
                if args.config
                else " (added with `pdrelay maintenance add`; pass --config FILE to list the configuration's too)"
            )
        )
    for window, origin in shown if not args.json else ():
        print(_window_line(window, now, origin))
    return 0


@operator
def cmd_maintenance_end(args: argparse.Namespace, resources: Resources) -> int:
    from pdrelay.policy import judge  # pydantic: see the module docstring

    def drop(windows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not any(w.get("name") == args.name for w in windows):
            raise ConfigError(
                f"no window named {args.name!r} was added with `pdrelay maintenance add`",
                ["windows in the configuration document end when you remove them there"],
            )
        return [w for w in windows if w.get("name") != args.name]

    judge.save_windows(_store(resources), drop)
    print(f"ended {args.name}: alerts it held that are still firing go out at the next sweep (within a minute)")
    return 0


@operator
def cmd_maintenance_add(args: argparse.Namespace, resources: Resources) -> int:
    from pdrelay.policy import judge  # pydantic: see the module docstring
    from pdrelay.policy.windows import Window, parse_duration

    store, now = _store(resources), _now()
    doc: dict[str, Any] = {
        "name": args.name,
        "timezone": args.timezone,
        "send_held_at_end": not args.drop_held,
        "comment": args.comment or "",
        "routes": args.route or [],
    }
    when: dict[str, Any] = {}
    for item in args.match or []:
        key, op, value = item.partition("~")
        if op:
            when[key] = {"regex": value}
            continue
        key, op, value = item.partition("=")
        if not op:
            print(f"pdrelay maintenance: --match takes FIELD=VALUE or FIELD~REGEX, got {item!r}", file=sys.stderr)
            return 2
        when[key] = value
    doc["when"] = when
    try:
        if args.every:
            doc["schedule"] = {"days": args.every.split(","), "at": args.at, "duration": args.duration}
        elif args.duration_for:
            doc["start"] = (datetime.fromisoformat(args.start) if args.start else now).isoformat()
            doc["end"] = (datetime.fromisoformat(doc["start"]) + parse_duration(args.duration_for)).isoformat()
        else:
            doc["start"], doc["end"] = args.start, args.end
        window = Window.model_validate(doc)
    except ValueError as exc:
        print(f"pdrelay maintenance: {exc}", file=sys.stderr)
        return 2
    stored_doc = window.model_dump(mode="json", exclude_defaults=True)
    stored_doc["name"] = window.name

    def add(windows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if any(w.get("name") == window.name for w in windows):
            raise ConfigError(f"a window named {window.name!r} exists", ["end it first, or pick another name"])
        return [w for w in windows if not Window.model_validate(w).expired(now)] + [stored_doc]

    judge.save_windows(store, add)
    print("added " + _window_line(window, now, "pdrelay maintenance"))
    return 0


def register(commands: Commands) -> None:
    maintenance = commands.add_parser("maintenance", help="maintenance windows and silences").add_subparsers(
        dest="maintenance_command", required=True
    )
    listing = add_stack_option(maintenance.add_parser("list", help="windows and whether they are active"))
    listing.add_argument("--config", help="also list this configuration file's windows")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_maintenance_list)
    add = add_stack_option(
        maintenance.add_parser("add", help="hold matching triggers for a while (a window or silence)")
    )
    add.add_argument("name")
    add.add_argument("--route", action="append", help="only this route (repeatable; default: all)")
    add.add_argument(
        "--match",
        action="append",
        help="FIELD=VALUE or FIELD~REGEX, e.g. labels.alertname=DiskFull "
        "(repeatable, all must hold; default: every alert)",
    )
    add.add_argument("--for", dest="duration_for", help="from --start (default now) for this long, e.g. 2h")
    add.add_argument("--start", help="ISO 8601 start")
    add.add_argument("--end", help="ISO 8601 end")
    add.add_argument("--every", help="recurring on these days, e.g. sat,sun (with --at and --duration)")
    add.add_argument("--at", help="local start time HH:MM of a recurring window")
    add.add_argument("--duration", help="length of a recurring window, e.g. 2h")
    add.add_argument("--timezone", default="UTC", help="IANA time zone (default UTC)")
    add.add_argument("--drop-held", action="store_true", help="do not send what it held when it ends")
    add.add_argument("--comment")
    add.set_defaults(func=cmd_maintenance_add)
    end = add_stack_option(maintenance.add_parser("end", help="end a window now (what it held goes out)"))
    end.add_argument("name")
    end.set_defaults(func=cmd_maintenance_end)
