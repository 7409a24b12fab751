"""Helpers shared by format modules: tolerant field access, severity mapping, links, summaries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pdrelay.models import SUMMARY_LIMIT, Link, truncate

SEVERITY_WORDS: dict[str, str] = {
    **dict.fromkeys(
        ["critical", "crit", "fatal", "emergency", "emerg", "alert", "page", "disaster", "p1", "sev1"],
        "critical",
    ),
    **dict.fromkeys(["error", "err", "high", "major", "p2", "sev2"], "error"),
    **dict.fromkeys(["warning", "warn", "medium", "average", "minor", "p3", "sev3"], "warning"),
    **dict.fromkeys(
        ["info", "informational", "information", "low", "notice", "debug", "none", "ok", "p4", "p5"],
        "info",
    ),
}


def map_severity(value: object, default: str = "error") -> str:
    """One of PagerDuty's four severities for a monitor's severity word."""
    if isinstance(value, str):
        return SEVERITY_WORDS.get(value.strip().lower(), default)
    return default


def text(value: object) -> str | None:
    """A non-empty, stripped string, or None."""
    if value is None or isinstance(value, dict | list):
        return None
    result = str(value).strip()
    return result or None


def str_map(value: object) -> dict[str, str]:
    """A mapping of strings (labels, annotations), tolerating junk."""
    if not isinstance(value, Mapping):
        return {}
    return {str(k): "" if v is None else str(v) for k, v in value.items()}


def http_link(href: object, label: str) -> Link | None:
    url = text(href)
    if url and url.lower().startswith(("https://", "http://")):
        return Link(href=url, text=label)
    return None


def summary(*candidates: object, fallback: str) -> str:
    for candidate in candidates:
        value = text(candidate)
        if value:
            return truncate(" ".join(value.split()), SUMMARY_LIMIT)
    return truncate(fallback, SUMMARY_LIMIT)


def first(mapping: Mapping[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = text(mapping.get(key))
        if value:
            return value
    return None
