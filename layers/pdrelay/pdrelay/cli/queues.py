"""The queues, for operators: `queue status`, `dlq show`, `dlq purge`, `redrive` and `sweep`.

Each works on the running `pdrelay dev`, or on a deployed stack with --stack NAME.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from pdrelay.cli._common import Commands, add_stack_option, operator
from pdrelay.ops.resources import Resources, run_sweep


@operator
def cmd_queue_status(args: argparse.Namespace, resources: Resources) -> int:
    # Here, not at the top: the table store and its models load pydantic; only this command needs them.
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
        f"{'rolled up':>9} {'suppressed':>10} {'unpaged':>8} {'in DLQ':>7}   (delivered, suppressed, unpaged: last "
        f"{status.window_seconds // 60} min)"
    )
    for r in status.routes:
        print(
            f"{r.route[:20]:<20} {r.routing_key:<12} {r.sending:>8} {r.delivered:>10} {r.open:>6} {r.held:>5} "
            f"{r.rolled_up:>9} {r.suppressed:>10} {r.resolved_before_paged:>8} {r.dead_lettered:>7}"
        )
    if status.reasons:
        print("\nwhy alerts are in the DLQ:")
        for reason, n in status.reasons:
            print(f"  {n:>5}  {reason}")
    if status.heartbeats:
        print(f"\n{'heartbeat':<20} {'state':<7} {'last contact':<25} {'ago':>8}   from")
        for h in status.heartbeats:
            ago = f"{h.age_seconds}s" if h.age_seconds is not None else "-"
            sent = h.last_sent
            who = f"{sent.get('caller', '?')} ({sent.get('format', '?')})" if sent else "-"
            state = h.state + (f" since {h.silent_since}" if h.silent_since else "")
            print(f"{h.route[:20]:<20} {state:<7} {h.last_contact or 'never':<25} {ago:>8}   {who}")
    return 0


@operator
def cmd_dlq_show(args: argparse.Namespace, resources: Resources) -> int:
    # Here, not at the top: the redrive module loads boto3.
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


@operator
def cmd_dlq_purge(args: argparse.Namespace, resources: Resources) -> int:
    # Here, not at the top: the redrive module loads boto3.
    from pdrelay.ops import redrive

    if not args.yes:
        print("pdrelay dlq purge: this deletes every dead-lettered alert; add --yes to do it", file=sys.stderr)
        return 2
    print(f"purged about {redrive.purge(resources.client('sqs'), resources.dlq_url)} message(s)")
    return 0


@operator
def cmd_redrive(args: argparse.Namespace, resources: Resources) -> int:
    # Here, not at the top: the redrive module loads boto3.
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


@operator
def cmd_sweep(args: argparse.Namespace, resources: Resources) -> int:
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


def register(commands: Commands) -> None:
    queue = commands.add_parser("queue", help="the alert queue").add_subparsers(dest="queue_command", required=True)
    status = add_stack_option(queue.add_parser("status", help="where alerts are, per route"))
    status.add_argument("--window", type=int, default=3600, help="seconds counted as 'recently delivered'")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_queue_status)

    dlq = commands.add_parser("dlq", help="the dead-letter queue").add_subparsers(dest="dlq_command", required=True)
    show = add_stack_option(dlq.add_parser("show", help="list dead-lettered alerts and why"))
    show.add_argument("--limit", type=int, default=50)
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_dlq_show)
    purge = add_stack_option(dlq.add_parser("purge", help="delete every dead-lettered alert"))
    purge.add_argument("--yes", action="store_true")
    purge.set_defaults(func=cmd_dlq_purge)

    redrive = add_stack_option(commands.add_parser("redrive", help="move dead-lettered alerts back to the queue"))
    which = redrive.add_mutually_exclusive_group()
    which.add_argument("--route", help="only this route's alerts")
    which.add_argument("--routing-key", help="only this routing key's alerts")
    redrive.add_argument("--dry-run", action="store_true", help="count what would move; move nothing")
    redrive.add_argument("--limit", type=int, help="move at most this many")
    redrive.set_defaults(func=cmd_redrive)

    sweep = add_stack_option(commands.add_parser("sweep", help="re-send resolves never confirmed delivered"))
    sweep.add_argument("--older-than", type=int, default=900, help="seconds a resolve has been pending")
    sweep.add_argument("--events-url")
    sweep.set_defaults(func=cmd_sweep)
