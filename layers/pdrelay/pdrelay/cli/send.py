"""`pdrelay send`: an event with the PagerDuty Agent's pd-send options, through a relay or straight to PagerDuty."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import requests

from pdrelay.cli._common import Commands, add_relay_options, parse_fields, read_state


def cmd_send(args: argparse.Namespace) -> int:
    """Like the PagerDuty Agent's pd-send, through a running relay or straight to an Events API."""
    state = read_state()
    details = parse_fields(args.field, "send")
    if details is None:
        return 2
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


def register(commands: Commands) -> None:
    send = commands.add_parser("send", help="send an event, with the PagerDuty Agent's pd-send options")
    send.add_argument("-k", "--routing-key", required=True, help="route name or routing key")
    send.add_argument("-t", "--type", required=True, choices=["trigger", "acknowledge", "resolve"])
    send.add_argument("-d", "--description", help="summary")
    send.add_argument("-i", "--incident-key", help="dedup key")
    send.add_argument("-f", "--field", action="append", help="custom detail KEY=VALUE (repeatable)")
    send.add_argument("-c", "--client")
    send.add_argument("-u", "--client-url")
    send.add_argument("--severity", default="error", choices=["critical", "error", "warning", "info"])
    send.add_argument("--source", default=os.uname().nodename)
    add_relay_options(send)
    send.add_argument("--direct", action="store_true", help="send straight to the Events API")
    send.add_argument("--events-url", help="Events API base URL for --direct")
    send.set_defaults(func=cmd_send)
