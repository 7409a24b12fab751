"""`pdrelay dev` (the whole relay on this machine) and `pdrelay incidents` (its PagerDuty emulator's)."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import requests

from pdrelay.cli._common import Commands, read_state, write_state
from pdrelay.errors import ConfigError
from pdrelay.local.state import STATE_DIR_ENV, dev_log_file, state_dir

# What the `local` extra holds, named as itself: "pdrelay[local]" would send pip to a package index
# where the name "pdrelay" may belong to somebody else. (A test holds it to pyproject.toml's list.)
NEEDS_MOTO = (
    "pdrelay dev needs the local stack's AWS emulator, moto's server and cheroot (the 'local' extra):"
    " pip install 'moto[server]>=5.1,<6' 'cheroot>=10', or '.[local]' from a pdrelay checkout"
)


def _aws_emulator_installed() -> bool:
    """moto's server, and cheroot that serves it, are the optional 'local' extra (never in Lambda);
    the local stack starts them."""
    try:
        import cheroot.wsgi  # noqa: F401
        import moto.server  # noqa: F401 - imported to learn whether it can be; slow (~1 s), so only here
    except ImportError:
        return False
    return True


def cmd_dev(args: argparse.Namespace) -> int:
    if not _aws_emulator_installed():
        print(NEEDS_MOTO, file=sys.stderr)
        return 2
    # Here, not at the top: the local stack is for `pdrelay dev` alone.
    from pdrelay.local.stack import LocalStack, StackOptions
    from pdrelay.observability import mask

    token = args.token or os.environ.get("PDRELAY_TOKEN") or secrets.token_urlsafe(24)
    routing_key = args.routing_key or os.environ.get("PDRELAY_ROUTING_KEY", "")
    events_url = args.events_url or os.environ.get("PDRELAY_EVENTS_URL") or None
    if args.state_dir:
        os.environ[STATE_DIR_ENV] = str(Path(args.state_dir).expanduser().resolve())
    options = StackOptions(
        template=Path(args.template) if args.template else None,
        host="127.0.0.1",
        port=args.port,
        emulator_port=args.emulator_port,
        events_url=events_url,
        routing_key=routing_key,
        token=token,
        config=args.config or "",
        retry_base_seconds=args.retry_base_seconds,
        log_file=dev_log_file(),
    )
    try:
        stack = LocalStack(options)
    except OSError as exc:
        print(f"pdrelay: cannot read the template: {exc}", file=sys.stderr)
        return 2
    try:
        stack.start()
        # Here, not at the top: the validated settings and configuration models load pydantic.
        from pdrelay.config import load_config
        from pdrelay.settings import get_settings

        load_config(get_settings())  # --config, or the default built from --token/--routing-key
    except ConfigError as exc:
        stack.stop()
        print(f"pdrelay: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        stack.stop()
        print(f"pdrelay: cannot start the local stack: {exc}", file=sys.stderr)
        return 2
    started_at = datetime.now(UTC).isoformat()
    state_file = write_state(
        {
            "url": stack.url,
            "events_url": stack.events_url,
            "token": token if not args.config else "",
            "aws_endpoint": stack.moto_url,
            "aws_endpoints": stack.aws_endpoints,  # services with an emulator of their own (SQS)
            "queue_url": stack.queue_urls["AlertQueue"],
            "dlq_url": stack.queue_urls["DeadLetterQueue"],
            "table_name": stack.table_names["DedupTable"],
            "log_file": str(options.log_file),
            # Its queues and table start empty: `pdrelay trace` reads this run's log lines by default.
            "started_at": started_at,
            "max_receives": stack.max_receives,
            # The emulator's REST API and its key (not a secret): what `pdrelay reconcile` reads.
            "pagerduty_api_url": stack.emulator.rest_url if stack.emulator else "",
            "pagerduty_api_key": stack.emulator.api_key if stack.emulator else "",
        }
    )
    print(f"pdrelay is running at {stack.url}")
    print(
        f"  PagerDuty target : {stack.events_url}"
        + ("  (local emulator: open it in a browser)" if stack.emulator else "")
    )
    apart = "".join(f", {service.upper()} at {url}" for service, url in stack.aws_endpoints.items())
    print(f"  AWS emulator     : {stack.moto_url}{apart} (queues and table from {stack.template_source})")
    print(f"  state file       : {state_file} (how the other pdrelay commands find this one)")
    print(f"  log file         : {options.log_file} (its JSON log lines too; `pdrelay trace KEY` reads it)")
    if not args.config:
        print(f"  routing key      : {mask(routing_key) if routing_key else 'demo key (emulator)'}")
        print(f"  bearer token     : {token}")
        print("\nTry it:")
        print(f"  curl -s -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' \\")
        print(f"       --data {_sample_data(stack.template)} {stack.url}/v1/alerts/alertmanager")
        print("  pdrelay incidents")
        print("  pdrelay test --route default     # a labelled test event, then its resolve")
    if stack.emulator:
        print(
            f"\nDoes PagerDuty agree? `pdrelay reconcile` compares the emulator's open incidents (its REST API at"
            f"\n{stack.emulator.rest_url}, key {stack.emulator.api_key!r}) with the relay's table; --fix acts."
        )
    print(
        "\nFor development, demos and tests: queues and the table live in memory, so alerts still"
        "\nqueued and incidents still open when it stops are forgotten (deploy with `sam deploy`)."
    )
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


def _sample_data(template: Path | None) -> str:
    """curl's --data for the banner's example: the checkout's sample alert, else one inline."""
    sample = template.parent / "events/formats/alertmanager/firing.json" if template is not None else None
    if sample is not None and sample.is_file():
        return f"@{sample.relative_to(Path.cwd()) if sample.is_relative_to(Path.cwd()) else sample}"
    alert = {"status": "firing", "labels": {"alertname": "DiskFull", "severity": "critical"}, "fingerprint": "demo1"}
    return "'" + json.dumps({"version": "4", "status": "firing", "alerts": [alert]}) + "'"


def cmd_incidents(args: argparse.Namespace) -> int:
    base = args.events_url or read_state().get("events_url")
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


def register(commands: Commands) -> None:
    dev = commands.add_parser("dev", help="run the whole relay on this machine")
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
    dev.add_argument(
        "--template",
        help="the SAM template to build the queues, table and functions from (default: the pdrelay "
        "checkout's template.yaml around the working folder, else the one packaged with pdrelay)",
    )
    dev.add_argument(
        "--state-dir",
        help=f"where to write dev.json and dev.log, which the other commands read (default: {state_dir()}); "
        f"env {STATE_DIR_ENV}, which the other commands also follow",
    )
    dev.add_argument(
        "--retry-base-seconds",
        type=int,
        default=None,
        help="first retry delay after a failed delivery (default 2, as in Lambda)",
    )
    dev.set_defaults(func=cmd_dev)


def register_incidents(commands: Commands) -> None:
    incidents = commands.add_parser("incidents", help="list the local PagerDuty emulator's incidents")
    incidents.add_argument("--events-url")
    incidents.add_argument("--json", action="store_true")
    incidents.set_defaults(func=cmd_incidents)
