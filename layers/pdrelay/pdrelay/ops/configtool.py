"""``pdrelay config validate | explain | push``: check a configuration before relying on it.

- validate: parse and check the document; every problem names its place.
- explain: run a sample payload through the same code ingest runs (format, test handling,
  scrubbing, rules, event templates) and show, per destination, the event PagerDuty would get
  (templated fields rendered, a failed template named), and whether a
  maintenance window in the document holds it at a given time. Nothing is sent or stored.
- push: validate, then write the document where the deployed stack reads it (SSM Parameter Store
  or Secrets Manager). The functions re-read it within ``PDRELAY_CONFIG_MAX_AGE`` (60 s).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pdrelay.aws import client
from pdrelay.config import RelayConfig, parse_config
from pdrelay.errors import ConfigError
from pdrelay.observability import mask

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_ssm import SSMClient

SSM_STANDARD_LIMIT = 4096
SSM_ADVANCED_LIMIT = 8192


def summary(config: RelayConfig) -> list[str]:
    """What a valid document sets up, routing keys masked."""
    from pdrelay.policy.windows import format_duration

    lines = [f"default route: {config.default_route}"]
    for name, route in config.routes.items():
        targets = ", ".join(f"{d} ({mask(k)})" for d, k in route.targets.items())
        extras = []
        if route.rules:
            extras.append(f"{len(route.rules)} rule(s), {route.rules_match} match")
        templated = (
            [f"route: {', '.join(route.templates.fields()) or 'custom_details'}"] if route.templates else []
        ) + [f"rule {r.name}" for r in route.rules if r.templates is not None]
        if templated:
            extras.append(f"templates ({'; '.join(templated)})")
        if route.storm.min_resend_seconds:
            extras.append(f"re-send at most every {route.storm.min_resend_seconds} s")
        if route.storm.max_new_per_minute:
            extras.append(f"roll-up above {route.storm.max_new_per_minute} new/min")
        lines.append(f"route {name}: {targets}" + (f"; {'; '.join(extras)}" if extras else ""))
    for caller in config.callers:
        lines.append(f"caller {caller.name}: routes {', '.join(caller.routes) or 'all'}")
    for window in config.maintenance:
        kind = (
            f"every {','.join(window.schedule.days)} at {window.schedule.at} for "
            f"{format_duration(window.schedule.duration)}"
            if window.schedule
            else f"{window.start.isoformat() if window.start else '?'} → "
            f"{window.end.isoformat() if window.end else '?'}"
        )
        lines.append(
            f"maintenance {window.name}: {kind} ({window.timezone}); routes {', '.join(window.routes or ()) or 'all'}"
        )
    return lines


@dataclass
class Explanation:
    format: str
    route: str | None
    lines: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)  # what PagerDuty would get, keys masked

    def as_dict(self) -> dict[str, Any]:
        return {"format": self.format, "route": self.route, "explanation": self.lines, "events": self.events}


def explain(
    config: RelayConfig,
    body: bytes,
    *,
    format_name: str = "auto",
    route: str | None = None,
    headers: Mapping[str, str] | None = None,
    at: datetime,
) -> Explanation:
    """What ingest and the dispatcher would do with ``body``, without sending or storing anything."""
    from pdrelay import formats
    from pdrelay.delivery.events_api import build_event
    from pdrelay.ingest.body import decode_json
    from pdrelay.ingest.fanout import fan_out
    from pdrelay.ingest.parsing import parse_payload, tests_handled
    from pdrelay.ingest.request import IncomingRequest
    from pdrelay.policy import rules, templates, windows
    from pdrelay.policy.routing import Destination

    headers = {k.lower(): v for k, v in (headers or {}).items()}
    doc = decode_json(body)
    fmt = formats.detect(doc, headers) if format_name == "auto" else formats.get(format_name)
    route_name = route or config.default_route
    if route_name not in config.routes:
        raise ConfigError(f"no route named {route_name!r}", [f"configured routes: {', '.join(config.routes)}"])
    chosen = config.routes[route_name]
    out = Explanation(fmt.name, route_name)
    out.lines.append(f"format: {fmt.name}" + (" (detected)" if format_name == "auto" else ""))
    context = formats.ParseContext(received_at=at, headers=headers, body=body, options=chosen.options_for(fmt))
    parsed = parse_payload(fmt, doc, context)
    alerts = tests_handled(parsed, chosen, route_name)
    out.lines.extend(f"note: {n}" for n in parsed.notes)
    out.lines.extend(f"rejected: {r}" for r in parsed.rejected)
    request = IncomingRequest(body=body, request_id="explain", received_at=at, headers=headers)
    for alert in alerts:
        out.lines.append(
            f"alert {alert.identity}: {alert.action}, severity {alert.severity}, summary {alert.summary!r}"
        )
        plan = rules.plan(chosen.rules, chosen.rules_match, chosen.defaults, alert)
        out.lines.extend("  " + line for line in plan.explanation)
        fanned = fan_out([alert], Destination(route=route_name, routing_key=chosen.primary_key), config, request)
        out.lines.extend("  " + n for n in fanned.notes)
        for message in fanned.messages:
            window = windows.holding(config.maintenance, route_name, message.alert, at)
            event = build_event(message, message.alert.action)
            event["routing_key"] = mask(event["routing_key"])
            verdict = (
                f"held by maintenance window {window.name!r}"
                if window is not None and message.alert.action == "trigger"
                else "sent"
            )
            out.lines.append(
                f"  → {message.destination or '-'} ({event['routing_key']}): {event['event_action']} "
                f"{message.dedup_key}: {verdict}" + (f" (rule {message.rule})" if message.rule else "")
            )
            if chosen.templates_for(message.rule) is not None:
                payload = event["payload"]
                out.lines.append(f"    templated: summary {payload['summary']!r}, source {payload['source']!r}")
                failed = payload.get("custom_details", {}).get(templates.ERRORS_KEY, [])
                out.lines.extend(f"    template failed: {error}" for error in failed)
            out.events.append(
                {"destination": message.destination, "rule": message.rule, "verdict": verdict, "event": event}
            )
    if not alerts:
        out.lines.append("nothing would be sent")
    out.lines.append(
        "not evaluated here: windows added with `pdrelay maintenance`, storm control (it depends on "
        "what else is firing), and the dedup table (an unchanged repeat would not be sent)"
    )
    return out


def push(
    text: str, target: str, *, ssm: SSMClient | None = None, secretsmanager: SecretsManagerClient | None = None
) -> str:
    """Validate ``text`` and store it at ``target`` (``ssm:/name`` or ``secret:name``); what was done."""
    config = parse_config(text, "the configuration")
    del config  # validated; the document is stored as written (comments and all)
    if target.startswith("ssm:"):
        name = target[4:]
        size = len(text.encode())
        if size > SSM_ADVANCED_LIMIT:
            raise ConfigError(
                f"the document is {size} bytes; SSM parameters hold at most {SSM_ADVANCED_LIMIT}",
                ["store it in Secrets Manager (secret:name, up to 64 KB) and point PDRELAY_CONFIG at it"],
            )
        tier: Literal["Standard", "Advanced"] = "Standard" if size <= SSM_STANDARD_LIMIT else "Advanced"
        ssm = ssm or client("ssm")
        ssm.put_parameter(Name=name, Value=text, Type="SecureString", Overwrite=True, Tier=tier)
        return f"stored in SSM parameter {name} ({size} bytes, {tier} tier, SecureString)"
    if target.startswith("secret:"):
        from botocore.exceptions import ClientError

        name = target[7:]
        secretsmanager = secretsmanager or client("secretsmanager")
        try:
            secretsmanager.put_secret_value(SecretId=name, SecretString=text)
            return f"stored as a new version of secret {name}"
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
        secretsmanager.create_secret(Name=name, SecretString=text, Description="pdrelay configuration")
        return f"created secret {name}"
    raise ConfigError(f"cannot push to {target!r}", ["use ssm:/parameter-name or secret:secret-name"])


def read_payload(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def as_json(explanation: Explanation) -> str:
    return json.dumps(explanation.as_dict(), indent=2, ensure_ascii=False, default=str)
