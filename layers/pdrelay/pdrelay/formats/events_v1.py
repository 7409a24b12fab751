"""PagerDuty Events API v1 (``/generic/2010-04-15/create_event.json``), as the PagerDuty Agent
(``pd-send``) and its Nagios and Zabbix scripts send it.

User documentation: docs/senders/events_v1.md.

``service_key`` is resolved like v2's ``routing_key`` by ingest (``policy.routing``), not here.
The PagerDuty Agent adds ``agent`` (``agent_id``, ``queued_by``, ``queued_at``): v2 has no field for
it, so it is kept under ``custom_details.agent`` (unless ``details`` has an ``agent`` of its own), and
``queued_at``, when the event was queued on the host, is the v2 ``payload.timestamp``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from pdrelay.errors import BadRequest
from pdrelay.formats import ParseContext
from pdrelay.formats._common import text
from pdrelay.models import DEDUP_KEY_LIMIT, SUMMARY_LIMIT, Alert, Image, Link, truncate
from pdrelay.timeutil import parse_time

NAME = "events_v1"
DETECT_ORDER = 11
ACTIONS = ("trigger", "acknowledge", "resolve")
AGENT_KEY = "agent"  # the PagerDuty Agent's own field, and where it goes in custom_details


def detect(doc: Any, headers: Mapping[str, str]) -> bool:
    return isinstance(doc, dict) and "event_type" in doc and "service_key" in doc


def validate(doc: Any) -> list[str]:
    """PagerDuty-style messages for everything wrong with ``doc``; empty when valid."""
    if not isinstance(doc, dict):
        return ["Event object must be a JSON object"]
    errors: list[str] = []
    action = doc.get("event_type")
    if action not in ACTIONS:
        errors.append("'event_type' must be one of trigger, acknowledge, resolve")
    key = doc.get("incident_key")
    if key is not None and (not isinstance(key, str) or not key.strip()):
        errors.append("'incident_key' must be a non-empty string")
    elif isinstance(key, str) and len(key) > DEDUP_KEY_LIMIT:
        errors.append(f"'incident_key' must be at most {DEDUP_KEY_LIMIT} characters")
    if action in ("acknowledge", "resolve") and not key:
        errors.append(f"'incident_key' is required for event_type {action}")
    if action == "trigger" and not text(doc.get("description")):
        errors.append("'description' is missing or blank")
    contexts = doc.get("contexts")
    if contexts is not None and not isinstance(contexts, list):
        errors.append("'contexts' must be a list")
    return errors


def _contexts(items: Any) -> tuple[list[Link], list[Image]]:
    links: list[Link] = []
    images: list[Image] = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        kind = text(item.get("type"))
        href, src = text(item.get("href")), text(item.get("src"))
        if kind == "link" and href:
            links.append(Link(href=href, text=text(item.get("text"))))
        elif kind == "image" and src:
            images.append(Image(src=src, href=href, alt=text(item.get("alt"))))
    return links, images


def parse(doc: Any, context: ParseContext) -> list[Alert]:
    errors = validate(doc)
    if errors:
        raise BadRequest("Event object is invalid", errors)
    given = doc.get("incident_key")
    key = given if isinstance(given, str) and given.strip() else uuid.uuid4().hex
    description = text(doc.get("description"))
    details = doc.get("details")
    if details is not None and not isinstance(details, dict):
        details = {"details": details}
    details = dict(details or {})
    agent = doc.get(AGENT_KEY)
    if agent is not None:
        details.setdefault(AGENT_KEY, agent)
    links, images = _contexts(doc.get("contexts"))
    client = text(doc.get("client"))
    return [
        Alert(
            format=NAME,
            identity=key,
            dedup_key=key,
            action=doc["event_type"],
            occurred_at=context.received_at,
            summary=truncate(" ".join(description.split()), SUMMARY_LIMIT) if description else None,
            source=client or "Events API v1",
            severity="error",
            timestamp=parse_time(agent.get("queued_at")) if isinstance(agent, dict) else None,
            custom_details=details,
            links=links,
            images=images,
            client=client,
            client_url=text(doc.get("client_url")),
        )
    ]
