"""`pdrelay reconcile`: does PagerDuty agree with the relay's table? (:mod:`pdrelay.ops.reconcile`)

Works on the running `pdrelay dev` (against its PagerDuty emulator, with the key it prints), or on a
deployed stack with --stack NAME. Exit status: 0 when nothing differs (or everything was fixed), 1
when differences remain, 2 when it could not compare.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from pdrelay.cli._common import Commands, add_stack_option, operator
from pdrelay.errors import ConfigError
from pdrelay.ops.resources import Resources

API_KEY_ENV = "PDRELAY_PAGERDUTY_API_KEY"


def _api_key(args: argparse.Namespace, resources: Resources) -> str:
    """The REST API key: a file, the environment, a secret (given, or the stack's), or the local
    emulator's. Never printed."""
    if args.api_key_file:
        try:
            key = Path(args.api_key_file).expanduser().read_text().strip()
        except OSError as exc:
            raise ConfigError(f"cannot read --api-key-file: {exc.strerror}") from exc
        if not key:
            raise ConfigError("--api-key-file is empty")
        return key
    if os.environ.get(API_KEY_ENV):
        return os.environ[API_KEY_ENV].strip()
    secret = args.api_key_secret or resources.api_key_secret
    if secret:
        from pdrelay.ops.resources import read_secret_string

        return read_secret_string(secret, resources.client("secretsmanager"))
    if resources.api_key:
        return resources.api_key
    raise ConfigError(
        f"no PagerDuty REST API key: give --api-key-file FILE, set {API_KEY_ENV}, or --api-key-secret ARN "
        "(a deployed stack's ReconcileApiKeySecretArn is used when set)"
    )


@operator
def cmd_reconcile(args: argparse.Namespace, resources: Resources) -> int:
    # Here, not at the top: the table store and the configuration load boto3 and pydantic.
    from pdrelay.delivery.events_api import EventsClient
    from pdrelay.ops.pagerduty_api import DEFAULT_API_URL, RestClient
    from pdrelay.ops.reconcile import Options, reconcile
    from pdrelay.table import DedupStore

    config = None
    if args.config:
        from pdrelay.config import parse_config

        try:
            config = parse_config(Path(args.config).read_text())
        except OSError as exc:
            raise ConfigError(f"cannot read {args.config}: {exc.strerror}") from exc
    api_url = args.api_url or os.environ.get("PDRELAY_PAGERDUTY_API_URL") or resources.api_url or DEFAULT_API_URL
    events_url = (
        args.events_url
        or resources.events_url
        or os.environ.get("PDRELAY_EVENTS_URL")
        or "https://events.pagerduty.com"
    )
    report = reconcile(
        DedupStore(resources.client("dynamodb"), resources.table_name),
        RestClient(_api_key(args, resources), api_url),
        EventsClient(events_url) if args.fix else None,
        config,
        Options(fix=args.fix, resolve_unknown=args.resolve_unknown, grace_seconds=args.grace),
    )
    left = sum(1 for d in report.drifts if not d.done)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
        return 1 if left else 0
    mode = "fixing" if args.fix else "dry run: nothing is changed; --fix acts"
    print(f"pdrelay reconcile ({mode})")
    print(f"PagerDuty {api_url}: {len(report.keys)} routing key(s) compared, {report.api_requests} API request(s)")
    if report.keys:
        print(f"\n  {'routing key':<12} {'service':<10} {'open at PagerDuty':>17} {'open here':>10}")
        for k in report.keys:
            print(f"  {k.routing_key:<12} {k.service:<10} {k.open_at_pagerduty:>17} {k.open_here:>10}")
    if report.not_at_pagerduty:
        print(
            f"\nnot found at PagerDuty (no Events API v2 integration this key can see): "
            f"{', '.join(report.not_at_pagerduty)}"
        )
    counts = report.counts()
    print(f"\n{len(report.drifts)} difference(s): " + ", ".join(f"{n} {kind}" for kind, n in counts.items()))
    for d in report.drifts:
        incident = f"{d.incident} (#{d.incident_number}) {d.pagerduty_status}" if d.incident else "no incident"
        verb = "" if not d.acts else "done: " if d.done else "not done: " if args.fix else "would "
        print(
            f"  {d.kind:<22} {d.routing_key:<6} {d.dedup_key}\n"
            f"  {'':<22} PagerDuty: {incident}; table: {d.table_state} -> {verb}{d.action}"
        )
    if report.skipped:
        print("\nnot compared: " + ", ".join(f"{n} {why}" for why, n in sorted(report.skipped.items())))
    return 1 if left else 0


def register(commands: Commands) -> None:
    parser = add_stack_option(
        commands.add_parser("reconcile", help="compare PagerDuty's open incidents with the relay's table")
    )
    parser.add_argument("--fix", action="store_true", help="act on the differences (default: only report them)")
    parser.add_argument(
        "--resolve-unknown",
        action="store_true",
        help="with --fix, also resolve incidents open at PagerDuty that the relay has no alert for",
    )
    parser.add_argument("--api-key-file", help=f"a file holding a read-only PagerDuty REST API key; env {API_KEY_ENV}")
    parser.add_argument("--api-key-secret", help="a Secrets Manager secret (ARN or name) holding the key")
    parser.add_argument("--api-url", help="PagerDuty's REST API (default https://api.pagerduty.com, or the emulator's)")
    parser.add_argument("--events-url", help="where --fix sends resolves (default: the stack's Events API)")
    parser.add_argument("--config", help="a configuration file: its routes' routing keys are compared too")
    parser.add_argument("--grace", type=int, default=120, help="seconds after a send before an alert is compared")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(func=cmd_reconcile)
