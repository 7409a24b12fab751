"""The ``pdrelay`` command.

dev            run the whole relay on this machine
send           send an event with the PagerDuty Agent's pd-send options
incidents      list the local PagerDuty emulator's incidents
queue status   where alerts are, per route (like pd-queue status)
dlq show       the dead-letter queue's messages and reasons
dlq purge      empty the dead-letter queue
redrive        move dead-lettered alerts back to the queue (like pd-queue retry)
sweep          re-send resolves never confirmed delivered
maintenance    add, list or end maintenance windows and silences
test           send a labelled test event to every destination of a route, then resolve it
change         send a change event (a deploy marker)
config         validate, explain (what a payload would do) or push a configuration

Operators' commands work on the running `pdrelay dev`, or on a deployed stack with --stack NAME.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import requests

from pdrelay.ops.resources import DEV_STATE as STATE_FILE


def _state() -> dict[str, Any]:
    try:
        return dict(json.loads(STATE_FILE.read_text()))
    except (OSError, ValueError):
        return {}


def cmd_dev(args: argparse.Namespace) -> int:
    from pdrelay.errors import ConfigError
    from pdrelay.local.stack import LocalStack, StackOptions
    from pdrelay.observability import mask

    token = args.token or os.environ.get("PDRELAY_TOKEN") or secrets.token_urlsafe(24)
    routing_key = args.routing_key or os.environ.get("PDRELAY_ROUTING_KEY", "")
    events_url = args.events_url or os.environ.get("PDRELAY_EVENTS_URL") or None
    options = StackOptions(
        template=Path(args.template),
        host="127.0.0.1",
        port=args.port,
        emulator_port=args.emulator_port,
        events_url=events_url,
        routing_key=routing_key,
        token=token,
        config=args.config or "",
        retry_base_seconds=args.retry_base_seconds,
    )
    stack = LocalStack(options)
    try:
        stack.start()
        if args.config:
            from pdrelay.config import load_config
            from pdrelay.settings import get_settings

            load_config(get_settings())
    except ConfigError as exc:
        stack.stop()
        print(f"pdrelay: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        stack.stop()
        print(f"pdrelay: cannot start the local stack: {exc}", file=sys.stderr)
        return 2
    STATE_FILE.parent.mkdir(exist_ok=True)
    STATE_FILE.write_text(
        json.dumps(
            {
                "url": stack.url,
                "events_url": stack.events_url,
                "token": token if not args.config else "",
                "aws_endpoint": stack.moto_url,
                "queue_url": stack.queue_urls["AlertQueue"],
                "dlq_url": stack.queue_urls["DeadLetterQueue"],
                "table_name": stack.table_names["DedupTable"],
            }
        )
    )
    STATE_FILE.chmod(0o600)
    print(f"pdrelay is running at {stack.url}")
    print(
        f"  PagerDuty target : {stack.events_url}"
        + ("  (local emulator: open it in a browser)" if stack.emulator else "")
    )
    print(f"  AWS emulator     : {stack.moto_url} (queues and table from {args.template})")
    if not args.config:
        print(f"  routing key      : {mask(routing_key) if routing_key else 'demo key (emulator)'}")
        print(f"  bearer token     : {token}")
        print("\nTry it:")
        print(f"  curl -s -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' \\")
        print(f"       --data @events/formats/alertmanager/firing.json {stack.url}/v1/alerts/alertmanager")
        print("  pdrelay incidents")
        print("  pdrelay test --route default     # a labelled test event, then its resolve")
    print("\nPress Ctrl-C to stop.", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()
    return 0


def cmd_send(args: argparse.Namespace) -> int:
    """Like the PagerDuty Agent's pd-send, through a running relay or straight to an Events API."""
    state = _state()
    details: dict[str, str] = {}
    for field in args.field or []:
        key, sep, value = field.partition("=")
        if not sep:
            print(f"pdrelay send: -f takes KEY=VALUE, got {field!r}", file=sys.stderr)
            return 2
        details[key] = value
    event: dict[str, Any] = {"routing_key": args.routing_key, "event_action": args.type}
    if args.incident_key:
        event["dedup_key"] = args.incident_key
    if args.type == "trigger" or args.description:
        if not args.description:
            print("pdrelay send: a trigger needs -d DESCRIPTION", file=sys.stderr)
            return 2
        event["payload"] = {"summary": args.description, "source": args.source, "severity": args.severity}
        if details:
            event["payload"]["custom_details"] = details
    if args.client:
        event["client"] = args.client
    if args.client_url:
        event["client_url"] = args.client_url
    headers = {}
    if args.direct:
        url = (
            args.events_url
            or os.environ.get("PDRELAY_EVENTS_URL")
            or state.get("events_url")
            or "https://events.pagerduty.com"
        ).rstrip("/") + "/v2/enqueue"
    else:
        base = args.url or os.environ.get("PDRELAY_URL") or state.get("url")
        token = args.token or os.environ.get("PDRELAY_TOKEN") or state.get("token")
        if not base or not token:
            print("pdrelay send: no relay URL/token: start `pdrelay dev`, or pass --url and --token", file=sys.stderr)
            return 2
        url = base.rstrip("/") + "/v2/enqueue"
        headers["Authorization"] = f"Bearer {token}"
    try:
        answer = requests.post(url, json=event, headers=headers, timeout=10)
    except requests.RequestException as exc:
        print(f"pdrelay send: {type(exc).__name__}: could not reach {url}", file=sys.stderr)
        return 1
    print(f"{answer.status_code} {answer.text.strip()}")
    return 0 if answer.status_code < 300 else 1


def cmd_incidents(args: argparse.Namespace) -> int:
    base = args.events_url or _state().get("events_url")
    if not base:
        print("pdrelay incidents: no emulator known: start `pdrelay dev` or pass --events-url", file=sys.stderr)
        return 2
    try:
        incidents = requests.get(base.rstrip("/") + "/incidents", timeout=5).json()
    except (requests.RequestException, ValueError) as exc:
        print(f"pdrelay incidents: {type(exc).__name__}: {base} did not answer", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(incidents, indent=2))
        return 0
    if not incidents:
        print("no incidents")
        return 0
    print(f"{'#':>4}  {'status':<12} {'severity':<9} {'events':>6}  {'dedup key':<40} summary")
    for inc in incidents:
        print(
            f"{inc['number']:>4}  {inc['status']:<12} {inc['severity']:<9} {len(inc['log']):>6}  "
            f"{inc['dedup_key'][:40]:<40} {inc['summary'][:80]}"
        )
    return 0


def _resources(args: argparse.Namespace) -> Any:
    from pdrelay.ops import resources

    if getattr(args, "stack", None):
        return resources.from_stack(args.stack)
    return resources.from_dev_state()


def _operator(func: Any) -> Any:
    """Run an operators' command, turning configuration problems into one clear line."""

    def run(args: argparse.Namespace) -> int:
        from botocore.exceptions import BotoCoreError, ClientError

        from pdrelay.errors import PdrelayError

        try:
            return int(func(args, _resources(args)))
        except PdrelayError as exc:
            print(f"pdrelay {args.command}: {exc}", file=sys.stderr)
            return 2
        except (ClientError, BotoCoreError) as exc:
            print(f"pdrelay {args.command}: AWS said: {exc}", file=sys.stderr)
            return 1

    return run


@_operator
def cmd_queue_status(args: argparse.Namespace, resources: Any) -> int:
    from pdrelay.ops.status import queue_status
    from pdrelay.table import DedupStore

    status = queue_status(
        resources.client("sqs"),
        resources.queue_url,
        resources.dlq_url,
        DedupStore(resources.client("dynamodb"), resources.table_name),
        args.window,
    )
    if args.json:
        print(json.dumps(status.as_dict(), indent=2, ensure_ascii=False))
        return 0
    print(
        f"alert queue: {status.waiting} waiting, {status.in_flight} in flight, {status.delayed} delayed"
        f"   dead-letter queue: {status.dlq}"
    )
    print(
        f"\n{'route':<20} {'routing key':<12} {'sending':>8} {'delivered':>10} {'open':>6} {'held':>5} "
        f"{'rolled up':>9} {'suppressed':>10} {'in DLQ':>7}   (delivered, suppressed: last "
        f"{status.window_seconds // 60} min)"
    )
    for r in status.routes:
        print(
            f"{r.route[:20]:<20} {r.routing_key:<12} {r.sending:>8} {r.delivered:>10} {r.open:>6} {r.held:>5} "
            f"{r.rolled_up:>9} {r.suppressed:>10} {r.dead_lettered:>7}"
        )
    if status.reasons:
        print("\nwhy alerts are in the DLQ:")
        for reason, n in status.reasons:
            print(f"  {n:>5}  {reason}")
    return 0


@_operator
def cmd_dlq_show(args: argparse.Namespace, resources: Any) -> int:
    from pdrelay.ops import redrive

    inspection = redrive.inspect(resources.client("sqs"), resources.dlq_url, limit=args.limit, keep=args.limit)
    if args.json:
        print(json.dumps(inspection.as_dict(), indent=2, ensure_ascii=False))
        return 0
    print(f"{inspection.total} message(s) in the dead-letter queue")
    for m in inspection.messages:
        print(
            f"- {m['route']} {m['routing_key']} {m['action'] or '?'} {m['dedup_key']}: {m['reason']}"
            + (f" (HTTP {m['http_status']})" if m["http_status"] else "")
            + (f", {m['attempts']} attempt(s)" if m["attempts"] else "")
        )
    return 0


@_operator
def cmd_dlq_purge(args: argparse.Namespace, resources: Any) -> int:
    from pdrelay.ops import redrive

    if not args.yes:
        print("pdrelay dlq purge: this deletes every dead-lettered alert; add --yes to do it", file=sys.stderr)
        return 2
    print(f"purged about {redrive.purge(resources.client('sqs'), resources.dlq_url)} message(s)")
    return 0


@_operator
def cmd_redrive(args: argparse.Namespace, resources: Any) -> int:
    from pdrelay.observability import mask
    from pdrelay.ops import redrive

    sqs = resources.client("sqs")
    total = redrive.count(sqs, resources.dlq_url)
    tty = sys.stderr.isatty()

    def progress(result: redrive.RedriveResult) -> None:
        done = result.matched
        if tty:
            width = 30
            filled = int(width * done / total) if total else width
            print(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}", end="", file=sys.stderr, flush=True)
        elif done % 100 == 0:
            print(f"{done}/{total}", file=sys.stderr)

    where = redrive.Filter(route=args.route, routing_key=args.routing_key)
    result = redrive.redrive(
        sqs,
        resources.dlq_url,
        resources.queue_url,
        where=where,
        dry_run=args.dry_run,
        limit=args.limit,
        progress=progress,
    )
    if tty and result.matched:
        print(file=sys.stderr)
    scope = (
        f"route {args.route}" if args.route else f"routing key {mask(args.routing_key)}" if args.routing_key else "all"
    )
    verb = "would move" if args.dry_run else "moved"
    print(
        f"{verb} {result.matched if args.dry_run else result.moved} message(s) ({scope}); "
        f"{result.skipped} left in the dead-letter queue"
    )
    return 0


@_operator
def cmd_sweep(args: argparse.Namespace, resources: Any) -> int:
    from pdrelay.ops.resources import run_sweep

    events_url = (
        args.events_url
        or resources.events_url
        or os.environ.get("PDRELAY_EVENTS_URL")
        or "https://events.pagerduty.com"
    )
    result = run_sweep(resources, events_url, args.older_than)
    print(
        f"{result['found']} pending resolve(s): {result['resolved']} delivered, {result['failed']} failed, "
        f"{result['rejected']} refused by PagerDuty"
    )
    return 0


# -- relay endpoints (test, change) ---------------------------------------------------------------------
def _relay(args: argparse.Namespace, command: str) -> tuple[str, dict[str, str]] | None:
    state = _state()
    base = args.url or os.environ.get("PDRELAY_URL") or state.get("url")
    token = args.token or os.environ.get("PDRELAY_TOKEN") or state.get("token")
    if not base or not token:
        print(
            f"pdrelay {command}: no relay URL/token: start `pdrelay dev`, or pass --url and --token "
            "(env PDRELAY_URL, PDRELAY_TOKEN)",
            file=sys.stderr,
        )
        return None
    return base.rstrip("/"), {"Authorization": f"Bearer {token}"}


def _call(method: str, url: str, headers: dict[str, str], command: str, body: Any = None) -> tuple[int, Any]:
    try:
        answer = requests.request(method, url, json=body, headers=headers, timeout=15)
    except requests.RequestException as exc:
        print(f"pdrelay {command}: {type(exc).__name__}: could not reach {url}", file=sys.stderr)
        return 0, None
    try:
        return answer.status_code, answer.json()
    except ValueError:
        return answer.status_code, {"message": answer.text[:500]}


def _final(answer: Any) -> bool:
    return isinstance(answer, dict) and (answer.get("ok") or "(retrying)" not in str(answer.get("error")))


def _wait_for(base: str, headers: dict[str, str], probe: str, action: str, timeout: float) -> dict[str, Any] | None:
    import time

    deadline = time.monotonic() + timeout
    report: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        status, report = _call("GET", f"{base}/v1/test/{probe}", headers, "test")
        rows = (report or {}).get("destinations", []) if status == 200 else []
        if rows and all(_final(row.get(action)) for row in rows):
            return report
        time.sleep(0.5)
    return report


def cmd_test(args: argparse.Namespace) -> int:
    """Send a labelled test trigger to every destination of a route, resolve it, report each answer."""
    relay = _relay(args, "test")
    if relay is None:
        return 2
    base, headers = relay
    status, started = _call(
        "POST", f"{base}/v1/test/{args.route}", headers, "test", {"action": "trigger", "severity": args.severity}
    )
    if status != 202:
        print(f"pdrelay test: the relay answered {status}: {json.dumps(started)}", file=sys.stderr)
        return 1
    probe = started["probe"]
    print(
        f"test {probe}: trigger sent to route {args.route} "
        f"({', '.join(d['destination'] for d in started['destinations'])}); waiting for PagerDuty's answers"
    )
    report = _wait_for(base, headers, probe, "trigger", args.timeout)
    if not args.no_resolve:
        _call("POST", f"{base}/v1/test/{args.route}", headers, "test", {"action": "resolve", "probe": probe})
        report = _wait_for(base, headers, probe, "resolve", args.timeout) or report
    rows = (report or {}).get("destinations", [])
    if args.json:
        print(json.dumps(report, indent=2))
    ok = bool(rows)
    for row in rows:
        for action in ("trigger", "resolve"):
            if action == "resolve" and args.no_resolve:
                continue
            answer = row.get(action)
            if answer is None:
                ok = False
                line = "no answer yet (the dispatcher has not sent it: see `pdrelay queue status`)"
            else:
                ok = ok and bool(answer.get("ok"))
                line = f"HTTP {answer.get('status') or '-'}: {answer.get('advice')}"
            if not args.json:
                print(f"  {row['destination']:<16} {row['routing_key']:<8} {action:<8} {line}")
    print("all destinations accepted the test" if ok else "some destinations did not accept the test")
    return 0 if ok else 1


def cmd_change(args: argparse.Namespace) -> int:
    """A change event (deploy marker) through the relay, like PagerDuty's /v2/change/enqueue."""
    payload: dict[str, Any] = {"summary": args.summary, "source": args.source}
    details = {}
    for item in args.field or []:
        key, sep, value = item.partition("=")
        if not sep:
            print(f"pdrelay change: -f takes KEY=VALUE, got {item!r}", file=sys.stderr)
            return 2
        details[key] = value
    if details:
        payload["custom_details"] = details
    if args.timestamp:
        payload["timestamp"] = args.timestamp
    event: dict[str, Any] = {"routing_key": args.routing_key, "payload": payload}
    links = []
    for item in args.link or []:
        href, _, text = item.partition(" ")
        links.append({"href": href, **({"text": text} if text else {})})
    if links:
        event["links"] = links
    relay = _relay(args, "change")
    if relay is None:
        return 2
    base, headers = relay
    status, answer = _call("POST", f"{base}/v2/change/enqueue", headers, "change", event)
    print(f"{status} {json.dumps(answer)}")
    return 0 if 200 <= status < 300 else 1


# -- maintenance windows ----------------------------------------------------------------------------------
def _window_line(window: Any, now: Any, origin: str) -> str:
    state = "active" if window.active_at(now) else "expired" if window.expired(now) else "scheduled"
    from pdrelay.policy.windows import format_duration

    when = (
        f"every {','.join(window.schedule.days)} at {window.schedule.at} for "
        f"{format_duration(window.schedule.duration)}"
        if window.schedule
        else f"{window.start.isoformat()} → {window.end.isoformat()}"
    )
    end = window.current_end(now) if window.active_at(now) else None
    matcher = ", ".join(f"{path} {test.describe()}" for path, test in window.when.root.items()) or "all alerts"
    return (
        f"{window.name:<24} {state:<9} {when} ({window.timezone}); routes {','.join(window.routes) or 'all'}; "
        f"{matcher}"
        + (f"; ends {end.isoformat()}" if end else "")
        + (f"; {window.comment}" if window.comment else "")
        + f"  [{origin}]"
    )


@_operator
def cmd_maintenance(args: argparse.Namespace, resources: Any) -> int:
    from datetime import UTC, datetime

    from pdrelay.errors import ConfigError
    from pdrelay.policy import judge
    from pdrelay.policy.windows import Window, parse_duration
    from pdrelay.table import DedupStore

    store = DedupStore(resources.client("dynamodb"), resources.table_name)
    now = datetime.now(UTC).replace(microsecond=0)
    if args.maintenance_command == "list":
        stored, _version = judge.stored_windows(store)
        shown = [(w, "pdrelay maintenance") for w in stored]
        if args.config:
            from pdrelay.config import parse_config

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
    if args.maintenance_command == "end":

        def drop(windows: list[dict[str, Any]]) -> list[dict[str, Any]]:
            if not any(w.get("name") == args.name for w in windows):
                raise ConfigError(
                    f"no window named {args.name!r} was added with `pdrelay maintenance add`",
                    ["windows in the configuration document end when you remove them there"],
                )
            return [w for w in windows if w.get("name") != args.name]

        judge.save_windows(store, drop)
        print(f"ended {args.name}: alerts it held that are still firing go out at the next sweep (within a minute)")
        return 0
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


# -- the configuration --------------------------------------------------------------------------------------
def cmd_config(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from pdrelay.config import parse_config
    from pdrelay.errors import PdrelayError
    from pdrelay.ops import configtool

    try:
        text = Path(args.file).read_text(encoding="utf-8")
    except OSError as exc:
        print(f"pdrelay config: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    except UnicodeDecodeError as exc:
        print(f"pdrelay config: {args.file} is not UTF-8 text (byte {exc.start})", file=sys.stderr)
        return 2
    try:
        config = parse_config(text, args.file)
        if args.config_command == "validate":
            print(f"{args.file}: valid")
            for line in configtool.summary(config):
                print(f"  {line}")
            return 0
        if args.config_command == "explain":
            try:
                at = datetime.fromisoformat(args.at) if args.at else datetime.now(UTC)
            except ValueError:
                print(
                    f"pdrelay config explain: --at {args.at!r} is not an ISO 8601 time "
                    "(e.g. 2026-12-01T22:30:00+01:00)",
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
        target = args.to
        if not target and args.stack:
            target = _stack_config_source(args.stack)
        if not target:
            print("pdrelay config push: say where: --to ssm:/name, --to secret:name or --stack NAME", file=sys.stderr)
            return 2
        import boto3

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
    except PdrelayError as exc:
        print(f"pdrelay config {args.config_command}: {getattr(exc, 'message', None) or exc}", file=sys.stderr)
        for problem in getattr(exc, "problems", None) or []:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"pdrelay config {args.config_command}: {exc}", file=sys.stderr)
        return 2


def _stack_config_source(stack: str) -> str:
    import boto3

    stacks = boto3.client("cloudformation").describe_stacks(StackName=stack)["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    return str(outputs.get("ConfigSource", ""))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pdrelay", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)

    dev = sub.add_parser("dev", help="run the whole relay on this machine")
    dev.add_argument("--port", type=int, default=int(os.environ.get("PDRELAY_PORT", "3000")))
    dev.add_argument("--emulator-port", type=int, default=int(os.environ.get("PDRELAY_EMULATOR_PORT", "3001")))
    dev.add_argument(
        "--events-url",
        help="send to this Events API base URL instead of the emulator "
        "(e.g. https://events.pagerduty.com); env PDRELAY_EVENTS_URL",
    )
    dev.add_argument("--routing-key", help="the default route's routing key; env PDRELAY_ROUTING_KEY")
    dev.add_argument("--token", help="the accepted bearer token (generated when absent); env PDRELAY_TOKEN")
    dev.add_argument("--config", help="a full configuration file (YAML or JSON)")
    dev.add_argument("--template", default="template.yaml")
    dev.add_argument(
        "--retry-base-seconds",
        type=int,
        default=5,
        help="first retry delay after a failed delivery (Lambda default: 30)",
    )
    dev.set_defaults(func=cmd_dev)

    send = sub.add_parser("send", help="send an event, with the PagerDuty Agent's pd-send options")
    send.add_argument("-k", "--routing-key", required=True, help="route name or routing key")
    send.add_argument("-t", "--type", required=True, choices=["trigger", "acknowledge", "resolve"])
    send.add_argument("-d", "--description", help="summary")
    send.add_argument("-i", "--incident-key", help="dedup key")
    send.add_argument("-f", "--field", action="append", help="custom detail KEY=VALUE (repeatable)")
    send.add_argument("-c", "--client")
    send.add_argument("-u", "--client-url")
    send.add_argument("--severity", default="error", choices=["critical", "error", "warning", "info"])
    send.add_argument("--source", default=os.uname().nodename)
    send.add_argument("--url", help="relay base URL (default: the running `pdrelay dev`); env PDRELAY_URL")
    send.add_argument("--token", help="relay bearer token; env PDRELAY_TOKEN")
    send.add_argument("--direct", action="store_true", help="send straight to the Events API")
    send.add_argument("--events-url", help="Events API base URL for --direct")
    send.set_defaults(func=cmd_send)

    incidents = sub.add_parser("incidents", help="list the local PagerDuty emulator's incidents")
    incidents.add_argument("--events-url")
    incidents.add_argument("--json", action="store_true")
    incidents.set_defaults(func=cmd_incidents)

    def operator(parser_: argparse.ArgumentParser) -> argparse.ArgumentParser:
        parser_.add_argument("--stack", help="a deployed stack's name (default: the running `pdrelay dev`)")
        return parser_

    queue = sub.add_parser("queue", help="the alert queue").add_subparsers(dest="queue_command", required=True)
    status = operator(queue.add_parser("status", help="where alerts are, per route"))
    status.add_argument("--window", type=int, default=3600, help="seconds counted as 'recently delivered'")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_queue_status)

    dlq = sub.add_parser("dlq", help="the dead-letter queue").add_subparsers(dest="dlq_command", required=True)
    show = operator(dlq.add_parser("show", help="list dead-lettered alerts and why"))
    show.add_argument("--limit", type=int, default=50)
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_dlq_show)
    purge = operator(dlq.add_parser("purge", help="delete every dead-lettered alert"))
    purge.add_argument("--yes", action="store_true")
    purge.set_defaults(func=cmd_dlq_purge)

    redrive = operator(sub.add_parser("redrive", help="move dead-lettered alerts back to the queue"))
    which = redrive.add_mutually_exclusive_group()
    which.add_argument("--route", help="only this route's alerts")
    which.add_argument("--routing-key", help="only this routing key's alerts")
    redrive.add_argument("--dry-run", action="store_true", help="count what would move; move nothing")
    redrive.add_argument("--limit", type=int, help="move at most this many")
    redrive.set_defaults(func=cmd_redrive)

    sweep = operator(sub.add_parser("sweep", help="re-send resolves never confirmed delivered"))
    sweep.add_argument("--older-than", type=int, default=900, help="seconds a resolve has been pending")
    sweep.add_argument("--events-url")
    sweep.set_defaults(func=cmd_sweep)

    def relay(parser_: argparse.ArgumentParser) -> argparse.ArgumentParser:
        parser_.add_argument("--url", help="relay base URL (default: the running `pdrelay dev`); env PDRELAY_URL")
        parser_.add_argument("--token", help="relay bearer token; env PDRELAY_TOKEN")
        return parser_

    test = relay(sub.add_parser("test", help="send a labelled test event to every destination of a route"))
    test.add_argument("--route", required=True)
    test.add_argument("--severity", default="info", choices=["critical", "error", "warning", "info"])
    test.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for each answer")
    test.add_argument("--no-resolve", action="store_true", help="leave the test incident open")
    test.add_argument("--json", action="store_true")
    test.set_defaults(func=cmd_test)

    change = relay(sub.add_parser("change", help="send a change event (a deploy marker)"))
    change.add_argument("-k", "--routing-key", required=True, help="route name or routing key")
    change.add_argument("-d", "--summary", required=True)
    change.add_argument("--source", default=os.uname().nodename)
    change.add_argument("--timestamp", help="ISO 8601 (default: when PagerDuty receives it)")
    change.add_argument("-f", "--field", action="append", help="custom detail KEY=VALUE (repeatable)")
    change.add_argument("-l", "--link", action="append", help="'URL [text]' (repeatable)")
    change.set_defaults(func=cmd_change)

    maintenance = sub.add_parser("maintenance", help="maintenance windows and silences").add_subparsers(
        dest="maintenance_command", required=True
    )
    listing = operator(maintenance.add_parser("list", help="windows and whether they are active"))
    listing.add_argument("--config", help="also list this configuration file's windows")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_maintenance)
    add = operator(maintenance.add_parser("add", help="hold matching triggers for a while (a window or silence)"))
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
    add.set_defaults(func=cmd_maintenance)
    end = operator(maintenance.add_parser("end", help="end a window now (what it held goes out)"))
    end.add_argument("name")
    end.set_defaults(func=cmd_maintenance)

    config = sub.add_parser("config", help="check and deploy a configuration").add_subparsers(
        dest="config_command", required=True
    )
    validate = config.add_parser("validate", help="check a configuration file")
    validate.add_argument("file")
    validate.set_defaults(func=cmd_config)
    explain = config.add_parser("explain", help="what a payload would do under a configuration (sends nothing)")
    explain.add_argument("file")
    explain.add_argument("--payload", required=True, help="a monitor's JSON payload")
    explain.add_argument("--format", default="auto")
    explain.add_argument("--route", help="default: the configuration's default_route")
    explain.add_argument("--header", action="append", help="'Name: value' as the monitor sends it (repeatable)")
    explain.add_argument("--at", help="evaluate maintenance windows at this ISO 8601 time (default now)")
    explain.add_argument("--json", action="store_true")
    explain.set_defaults(func=cmd_config)
    push = config.add_parser("push", help="validate and store a configuration for a deployed stack")
    push.add_argument("file")
    target = push.add_mutually_exclusive_group()
    target.add_argument("--to", help="ssm:/parameter-name or secret:secret-name")
    target.add_argument("--stack", help="a deployed stack (its ConfigSource output)")
    push.set_defaults(func=cmd_config)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))
