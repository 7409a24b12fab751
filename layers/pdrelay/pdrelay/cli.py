"""The ``pdrelay`` command.

dev            run the whole relay on this machine
send           send an event with the PagerDuty Agent's pd-send options
incidents      list the local PagerDuty emulator's incidents
queue status   where alerts are, per route (like pd-queue status)
dlq show       the dead-letter queue's messages and reasons
dlq purge      empty the dead-letter queue
redrive        move dead-lettered alerts back to the queue (like pd-queue retry)
sweep          re-send resolves never confirmed delivered

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

from pdrelay.operations import DEV_STATE as STATE_FILE


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
        template=Path(args.template), host="127.0.0.1", port=args.port, emulator_port=args.emulator_port,
        events_url=events_url, routing_key=routing_key, token=token, config=args.config or "",
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
    STATE_FILE.write_text(json.dumps({
        "url": stack.url, "events_url": stack.events_url, "token": token if not args.config else "",
        "aws_endpoint": stack.moto_url, "queue_url": stack.queue_urls["AlertQueue"],
        "dlq_url": stack.queue_urls["DeadLetterQueue"], "table_name": stack.table_names["DedupTable"],
    }))
    STATE_FILE.chmod(0o600)
    print(f"pdrelay is running at {stack.url}")
    print(f"  PagerDuty target : {stack.events_url}" + ("  (local emulator: open it in a browser)"
                                                         if stack.emulator else ""))
    print(f"  AWS emulator     : {stack.moto_url} (queues and table from {args.template})")
    if not args.config:
        print(f"  routing key      : {mask(routing_key) if routing_key else 'demo key (emulator)'}")
        print(f"  bearer token     : {token}")
        print("\nTry it:")
        print(f"  curl -s -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' \\")
        print(f"       --data @events/formats/alertmanager/firing.json {stack.url}/v1/alerts/alertmanager")
        print("  pdrelay incidents")
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
        url = (args.events_url or os.environ.get("PDRELAY_EVENTS_URL") or state.get("events_url")
               or "https://events.pagerduty.com").rstrip("/") + "/v2/enqueue"
    else:
        base = args.url or os.environ.get("PDRELAY_URL") or state.get("url")
        token = args.token or os.environ.get("PDRELAY_TOKEN") or state.get("token")
        if not base or not token:
            print("pdrelay send: no relay URL/token: start `pdrelay dev`, or pass --url and --token",
                  file=sys.stderr)
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
        print(f"{inc['number']:>4}  {inc['status']:<12} {inc['severity']:<9} {len(inc['log']):>6}  "
              f"{inc['dedup_key'][:40]:<40} {inc['summary'][:80]}")
    return 0


def _resources(args: argparse.Namespace) -> Any:
    from pdrelay import operations

    if getattr(args, "stack", None):
        return operations.from_stack(args.stack)
    return operations.from_dev_state()


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
    from pdrelay.dedup import DedupStore
    from pdrelay.status import queue_status

    status = queue_status(resources.client("sqs"), resources.queue_url, resources.dlq_url,
                          DedupStore(resources.client("dynamodb"), resources.table_name), args.window)
    if args.json:
        print(json.dumps(status.as_dict(), indent=2, ensure_ascii=False))
        return 0
    print(f"alert queue: {status.waiting} waiting, {status.in_flight} in flight, {status.delayed} delayed"
          f"   dead-letter queue: {status.dlq}")
    print(f"\n{'route':<20} {'routing key':<12} {'sending':>8} {'delivered':>10} {'open':>6} {'in DLQ':>7}"
          f"   (delivered: last {status.window_seconds // 60} min)")
    for r in status.routes:
        print(f"{r.route[:20]:<20} {r.routing_key:<12} {r.sending:>8} {r.delivered:>10} {r.open:>6} "
              f"{r.dead_lettered:>7}")
    if status.reasons:
        print("\nwhy alerts are in the DLQ:")
        for reason, n in status.reasons:
            print(f"  {n:>5}  {reason}")
    return 0


@_operator
def cmd_dlq_show(args: argparse.Namespace, resources: Any) -> int:
    from pdrelay import redrive

    inspection = redrive.inspect(resources.client("sqs"), resources.dlq_url, limit=args.limit, keep=args.limit)
    if args.json:
        print(json.dumps(inspection.as_dict(), indent=2, ensure_ascii=False))
        return 0
    print(f"{inspection.total} message(s) in the dead-letter queue")
    for m in inspection.messages:
        print(f"- {m['route']} {m['routing_key']} {m['action'] or '?'} {m['dedup_key']}: {m['reason']}"
              + (f" (HTTP {m['http_status']})" if m["http_status"] else "")
              + (f", {m['attempts']} attempt(s)" if m["attempts"] else ""))
    return 0


@_operator
def cmd_dlq_purge(args: argparse.Namespace, resources: Any) -> int:
    from pdrelay import redrive

    if not args.yes:
        print("pdrelay dlq purge: this deletes every dead-lettered alert; add --yes to do it", file=sys.stderr)
        return 2
    print(f"purged about {redrive.purge(resources.client('sqs'), resources.dlq_url)} message(s)")
    return 0


@_operator
def cmd_redrive(args: argparse.Namespace, resources: Any) -> int:
    from pdrelay import redrive
    from pdrelay.observability import mask

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
    result = redrive.redrive(sqs, resources.dlq_url, resources.queue_url, where=where, dry_run=args.dry_run,
                             limit=args.limit, progress=progress)
    if tty and result.matched:
        print(file=sys.stderr)
    scope = (f"route {args.route}" if args.route
             else f"routing key {mask(args.routing_key)}" if args.routing_key else "all")
    verb = "would move" if args.dry_run else "moved"
    print(f"{verb} {result.matched if args.dry_run else result.moved} message(s) ({scope}); "
          f"{result.skipped} left in the dead-letter queue")
    return 0


@_operator
def cmd_sweep(args: argparse.Namespace, resources: Any) -> int:
    from pdrelay import operations

    events_url = args.events_url or resources.events_url or os.environ.get("PDRELAY_EVENTS_URL") \
        or "https://events.pagerduty.com"
    result = operations.run_sweep(resources, events_url, args.older_than)
    print(f"{result['found']} pending resolve(s): {result['resolved']} delivered, {result['failed']} failed, "
          f"{result['rejected']} refused by PagerDuty")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pdrelay", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    dev = sub.add_parser("dev", help="run the whole relay on this machine")
    dev.add_argument("--port", type=int, default=int(os.environ.get("PDRELAY_PORT", "3000")))
    dev.add_argument("--emulator-port", type=int, default=int(os.environ.get("PDRELAY_EMULATOR_PORT", "3001")))
    dev.add_argument("--events-url", help="send to this Events API base URL instead of the emulator "
                     "(e.g. https://events.pagerduty.com); env PDRELAY_EVENTS_URL")
    dev.add_argument("--routing-key", help="the default route's routing key; env PDRELAY_ROUTING_KEY")
    dev.add_argument("--token", help="the accepted bearer token (generated when absent); env PDRELAY_TOKEN")
    dev.add_argument("--config", help="a full configuration file (YAML or JSON)")
    dev.add_argument("--template", default="template.yaml")
    dev.add_argument("--retry-base-seconds", type=int, default=5,
                     help="first retry delay after a failed delivery (Lambda default: 30)")
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
