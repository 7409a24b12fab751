"""PagerDuty Events API v2 events, as any tool that speaks to PagerDuty sends them.

User documentation: docs/senders/events_v2.md.

The routing key is resolved by ingest (``policy.routing``), not here; the sender's dedup key is the
identity, sent unchanged.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from pdrelay.errors import BadRequest
from pdrelay.formats import ParseContext
from pdrelay.models import DEDUP_KEY_LIMIT, SEVERITIES, SUMMARY_LIMIT, Alert, Image, Link
from pdrelay.timeutil import parse_time

NAME = "events_v2"
DETECT_ORDER = 10
ACTIONS = ("trigger", "acknowledge", "resolve")


def detect(doc: Any, headers: Mapping[str, str]) -> bool:
    return isinstance(doc, dict) and "event_action" in doc and ("routing_key" in doc or "payload" in doc)


def validate(doc: Any) -> list[str]:
    """PagerDuty-style messages for everything wrong with ``doc``; empty when valid."""
    if not isinstance(doc, dict):
        return ["Event object must be a JSON object"]
    errors: list[str] = []
    action = doc.get("event_action")
    if action not in ACTIONS:
        errors.append("'event_action' must be one of trigger, acknowledge, resolve")
    dedup_key = doc.get("dedup_key")
    if dedup_key is not None and (not isinstance(dedup_key, str) or not dedup_key):
        errors.append("'dedup_key' must be a non-empty string")
    elif isinstance(dedup_key, str) and len(dedup_key) > DEDUP_KEY_LIMIT:
        errors.append(f"'dedup_key' must be at most {DEDUP_KEY_LIMIT} characters")
    if action in ("acknowledge", "resolve") and not dedup_key:
        errors.append(f"'dedup_key' is required for event_action {action}")
    payload = doc.get("payload")
    if action == "trigger" or payload is not None:
        errors.extend(_payload_errors(payload, required=action == "trigger"))
    for field, item_errors in (("links", _link_errors), ("images", _image_errors)):
        items = doc.get(field)
        if items is None:
            continue
        if not isinstance(items, list):
            errors.append(f"'{field}' must be a list")
            continue
        for i, item in enumerate(items):
            errors.extend(f"'{field}[{i}]' {msg}" for msg in item_errors(item))
    return errors


def _payload_errors(payload: Any, *, required: bool) -> list[str]:
    if not isinstance(payload, dict):
        return ["'payload' is missing or not an object"] if required else ["'payload' must be an object"]
    errors = []
    summary = payload.get("summary")
    if required and (not isinstance(summary, str) or not summary.strip()):
        errors.append("'payload.summary' is missing or blank")
    elif isinstance(summary, str) and len(summary) > SUMMARY_LIMIT:
        errors.append(f"'payload.summary' is {len(summary)} characters; the limit is {SUMMARY_LIMIT}")
    source = payload.get("source")
    if required and (not isinstance(source, str) or not source.strip()):
        errors.append("'payload.source' is missing or blank")
    severity = payload.get("severity")
    if (required or severity is not None) and severity not in SEVERITIES:
        errors.append("'payload.severity' must be one of critical, error, warning, info")
    if payload.get("timestamp") is not None and parse_time(payload.get("timestamp")) is None:
        errors.append("'payload.timestamp' must be an ISO 8601 date-time")
    details = payload.get("custom_details")
    if details is not None and not isinstance(details, dict | str | list | int | float | bool):
        errors.append("'payload.custom_details' must be an object")
    return errors


def _link_errors(item: Any) -> list[str]:
    if not isinstance(item, dict) or not isinstance(item.get("href"), str):
        return ["needs an 'href' string"]
    return []


def _image_errors(item: Any) -> list[str]:
    if not isinstance(item, dict) or not isinstance(item.get("src"), str):
        return ["needs a 'src' string"]
    if not item["src"].lower().startswith("https://"):
        return ["'src' must be an HTTPS URL"]
    return []


def _opt_str(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def parse(doc: Any, context: ParseContext) -> list[Alert]:
    errors = validate(doc)
    if errors:
        raise BadRequest("Event object is invalid", errors)
    payload = doc.get("payload") or {}
    dedup_key = doc.get("dedup_key") or uuid.uuid4().hex
    timestamp = parse_time(payload.get("timestamp"))
    details = payload.get("custom_details")
    if details is not None and not isinstance(details, dict):
        details = {"details": details}
    return [
        Alert(
            format=NAME,
            identity=dedup_key,
            dedup_key=dedup_key,
            action=doc["event_action"],
            # Ordered by arrival, as PagerDuty orders them: a sender's ``timestamp`` is often the
            # detection time, kept on every repeat, and must not make a re-fire look older than a resolve.
            occurred_at=context.received_at,
            summary=_opt_str(payload.get("summary")),
            source=_opt_str(payload.get("source")),
            severity=payload.get("severity") or "error",
            timestamp=timestamp,
            component=_opt_str(payload.get("component")),
            group=_opt_str(payload.get("group")),
            class_=_opt_str(payload.get("class")),
            custom_details=details or {},
            links=[Link.model_validate(x) for x in doc.get("links") or []],
            images=[Image.model_validate(x) for x in doc.get("images") or []],
            client=_opt_str(doc.get("client")),
            client_url=_opt_str(doc.get("client_url")),
        )
    ]
