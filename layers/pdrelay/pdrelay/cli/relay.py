"""`pdrelay test` and `pdrelay change`: commands that call the relay's own HTTP endpoints."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import requests

from pdrelay.cli._common import Commands, add_relay_options, parse_fields, read_state


def _relay(args: argparse.Namespace, command: str) -> tuple[str, dict[str, str]] | None:
    """The relay's base URL and auth headers, from the options, the environment or `pdrelay dev`."""
    state = read_state()
    base = args.url or os.environ.get("PDRELAY_URL") or state.get("url")
    token = args.token or os.environ.get("PDRELAY_TOKEN") or state.get("token")
    if not base or not token:
        print(
            f"pdrelay {command}: no relay URL/token: start `pdrelay dev`, or pass --url and --token "
            "(env PDRELAY_URL, PDRELAY_TOKEN)",
            file=sys.stderr,
        )
        return None
    return str(base).rstrip("/"), {"Authorization": f"Bearer {token}"}


def _call(
    session: requests.Session, method: str, url: str, headers: dict[str, str], command: str, body: Any = None
) -> tuple[int, Any]:
    """(HTTP status, JSON answer); (0, None) when the relay cannot be reached."""
    try:
        answer = session.request(method, url, json=body, headers=headers, timeout=15)
    except requests.RequestException as exc:
        print(f"pdrelay {command}: {type(exc).__name__}: could not reach {url}", file=sys.stderr)
        return 0, None
    try:
        return answer.status_code, answer.json()
    except ValueError:
        return answer.status_code, {"message": answer.text[:500]}


def _final(answer: Any) -> bool:
    """Whether a destination's answer will not change: it succeeded, or failed for good."""
    return isinstance(answer, dict) and bool(answer.get("ok") or "(retrying)" not in str(answer.get("error")))


def _wait_for(
    session: requests.Session, base: str, headers: dict[str, str], probe: str, action: str, timeout: float
) -> dict[str, Any] | None:
    """The test's report once every destination has its answer to ``action``; at the deadline the
    last report read (None if none could be: an error answer is not a report)."""
    deadline = time.monotonic() + timeout
    report: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        status, answer = _call(session, "GET", f"{base}/v1/test/{probe}", headers, "test")
        rows = (answer or {}).get("destinations", []) if status == 200 else []
        if rows:
            report = answer
        if rows and all(_final(row.get(action)) for row in rows):
            return report
        time.sleep(0.5)
    return report


def _dedup_keys(started: dict[str, Any]) -> dict[str, str]:
    """Each destination's dedup key for the test incident, from the relay's answer to the trigger
    (relays from before it listed them per destination answer one for all)."""
    return {d["destination"]: d.get("dedup_key") or started.get("dedup_key") or "-" for d in started["destinations"]}


def _with_key(row: dict[str, Any], dedup_keys: dict[str, str]) -> dict[str, Any]:
    return {**row, "dedup_key": dedup_keys.get(row["destination"], "-")}


def cmd_test(args: argparse.Namespace, session: requests.Session | None = None) -> int:
    """Send a labelled test trigger to every destination of a route, resolve it, report each answer
    and the dedup key the test incident has on each destination. With --json, stdout is one JSON
    document (the report, each destination with its ``dedup_key``) and the progress lines go to stderr."""
    relay = _relay(args, "test")
    if relay is None:
        return 2
    base, headers = relay
    session = session or requests.Session()
    status, started = _call(
        session,
        "POST",
        f"{base}/v1/test/{args.route}",
        headers,
        "test",
        {"action": "trigger", "severity": args.severity},
    )
    if status != 202:
        print(f"pdrelay test: the relay answered {status}: {json.dumps(started)}", file=sys.stderr)
        return 1
    progress = sys.stderr if args.json else sys.stdout
    probe = started["probe"]
    dedup_keys = _dedup_keys(started)
    print(
        f"test {probe}: trigger sent to route {args.route} "
        f"({', '.join(d['destination'] for d in started['destinations'])}); waiting for PagerDuty's answers",
        file=progress,
    )
    report = _wait_for(session, base, headers, probe, "trigger", args.timeout)
    if not args.no_resolve:
        _call(session, "POST", f"{base}/v1/test/{args.route}", headers, "test", {"action": "resolve", "probe": probe})
        report = _wait_for(session, base, headers, probe, "resolve", args.timeout) or report
    rows = (report or {}).get("destinations") or []
    unreported = not rows  # the report could not be read: each destination is still named, with its key
    if unreported:
        rows = [
            {"destination": d["destination"], "routing_key": d.get("routing_key", "-")} for d in started["destinations"]
        ]
    if args.json:
        print(json.dumps({**(report or {}), "destinations": [_with_key(r, dedup_keys) for r in rows]}, indent=2))
    ok = not unreported
    for row in rows:
        for action in ("trigger", "resolve"):
            if action == "resolve" and args.no_resolve:
                continue
            answer = row.get(action)
            if answer is None and unreported:
                line = "no report from the relay"
            elif answer is None:
                ok = False
                line = "no answer yet (the dispatcher has not sent it: see `pdrelay queue status`)"
            else:
                ok = ok and bool(answer.get("ok"))
                line = f"HTTP {answer.get('status') or '-'}: {answer.get('advice')}"
            if action == "trigger":
                line += f" (dedup key {dedup_keys.get(row['destination'], '-')})"
            if not args.json:
                print(f"  {row['destination']:<16} {row['routing_key']:<8} {action:<8} {line}")
    verdict = "all destinations accepted the test" if ok else "some destinations did not accept the test"
    if unreported:
        verdict = (
            f"no report for test {probe} from the relay: the trigger was queued, whether PagerDuty took it is"
            " not known (look for the dedup keys above in PagerDuty, or run the test again)"
        )
    print(verdict, file=progress)
    return 0 if ok else 1


def cmd_change(args: argparse.Namespace) -> int:
    """A change event (deploy marker) through the relay, like PagerDuty's /v2/change/enqueue."""
    payload: dict[str, Any] = {"summary": args.summary, "source": args.source}
    details = parse_fields(args.field, "change")
    if details is None:
        return 2
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
    status, answer = _call(requests.Session(), "POST", f"{base}/v2/change/enqueue", headers, "change", event)
    print(f"{status} {json.dumps(answer)}")
    return 0 if 200 <= status < 300 else 1


def register(commands: Commands) -> None:
    test = add_relay_options(
        commands.add_parser("test", help="send a labelled test event to every destination of a route")
    )
    test.add_argument("--route", required=True)
    test.add_argument("--severity", default="info", choices=["critical", "error", "warning", "info"])
    test.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for each answer")
    test.add_argument("--no-resolve", action="store_true", help="leave the test incident open")
    test.add_argument("--json", action="store_true")
    test.set_defaults(func=cmd_test)

    change = add_relay_options(commands.add_parser("change", help="send a change event (a deploy marker)"))
    change.add_argument("-k", "--routing-key", required=True, help="route name or routing key")
    change.add_argument("-d", "--summary", required=True)
    change.add_argument("--source", default=os.uname().nodename)
    change.add_argument("--timestamp", help="ISO 8601 (default: when PagerDuty receives it)")
    change.add_argument("-f", "--field", action="append", help="custom detail KEY=VALUE (repeatable)")
    change.add_argument("-l", "--link", action="append", help="'URL [text]' (repeatable)")
    change.set_defaults(func=cmd_change)
