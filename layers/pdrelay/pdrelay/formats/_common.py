"""Helpers shared by format modules: tolerant field access, severity mapping, links, summaries."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import ValidationError

from pdrelay.errors import validation_problems
from pdrelay.formats import Parsed
from pdrelay.models import SUMMARY_LIMIT, Alert, Link, truncate

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


def obj(value: object) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one: for reading nested fields of any shape."""
    return value if isinstance(value, dict) else {}


def listed(value: object) -> list[Any]:
    """``value`` if it is a JSON list, else an empty one."""
    return value if isinstance(value, list) else []


def label_hash(labels: Mapping[str, str]) -> str:
    """An identity for senders without a fingerprint: a hash of the sorted labels (what
    Alertmanager's and Grafana's fingerprints are derived from too)."""
    canonical = json.dumps(sorted(labels.items()), separators=(",", ":"))
    return "labels-" + hashlib.sha256(canonical.encode()).hexdigest()[:32]


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


SECRET_QUERY_KEY = re.compile(r"token|key|secret|pass|pwd|auth|sig|credential|session|code", re.IGNORECASE)


def safe_url(value: object) -> str | None:
    """A URL fit to show in PagerDuty: no ``user:password@``, and the values of query parameters
    that look like credentials (``api_key``, ``token``, ``sig``...) masked. Monitors report the URLs
    they check, and those can carry the checked site's credentials."""
    url = text(value)
    if not url:
        return None
    try:
        parts = urlsplit(url)
        if not parts.netloc and not parts.query:
            return url
        netloc = parts.netloc.rpartition("@")[2]
        query = urlencode(
            [
                (k, "***" if SECRET_QUERY_KEY.search(k) and v else v)
                for k, v in parse_qsl(parts.query, keep_blank_values=True)
            ],
            safe="/:,*",
        )
    except ValueError:
        return None
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def http_link(href: object, label: str) -> Link | None:
    url = text(href)
    if url and url.lower().startswith(("https://", "http://")):
        cleaned = safe_url(url)
        return Link(href=cleaned, text=label) if cleaned else None
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


def links(*candidates: tuple[object, str]) -> list[Link]:
    """Links for the (href, label) pairs whose href is an http(s) URL, in order, without repeats."""
    found: list[Link] = []
    for href, label in candidates:
        link = http_link(href, label)
        if link is not None and all(link.href != seen.href for seen in found):
            found.append(link)
    return found


def compact(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """``mapping`` without None, empty strings, empty lists and empty mappings."""
    return {k: v for k, v in mapping.items() if v is not None and v != "" and v != [] and v != {}}


def collect(items: Iterable[Any], build: Callable[[Any], Alert], where: str = "alerts") -> Parsed:
    """One alert per item; an item ``build`` refuses (ValueError, or a model error) is listed in
    ``rejected`` as ``where[i]: why`` while the others go on."""
    parsed = Parsed()
    for index, raw in enumerate(items):
        try:
            parsed.alerts.append(build(raw))
        except ValidationError as exc:
            parsed.rejected.extend(validation_problems(exc, prefix=f"{where}[{index}]: ", empty="alert"))
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            parsed.rejected.append(f"{where}[{index}]: {exc}")
    return parsed
