"""Monitor formats: each module turns one monitor's payload into normalized alerts.

A format is a module in this package (names starting with ``_`` are skipped) that defines:

``NAME``
    the path segment in ``POST /v1/alerts/{NAME}``;
``DETECT_ORDER``
    an int; ``auto`` tries formats in increasing order;
``detect(doc, headers) -> bool``
    whether a decoded payload looks like this format;
``parse(doc, context) -> list[Alert]``
    the alerts it carries, or :class:`pdrelay.errors.BadRequest` naming each problem.

Adding a monitor is adding one module (and its tests): the registry finds it.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from types import ModuleType
from typing import Any

from pdrelay.errors import BadRequest
from pdrelay.models import Alert


@dataclass(frozen=True)
class ParseContext:
    """What a format may know about the request besides the payload."""

    received_at: datetime
    headers: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Format:
    name: str
    detect_order: int
    detect: Callable[[Any, Mapping[str, str]], bool]
    parse: Callable[[Any, ParseContext], list[Alert]]


def _from_module(module: ModuleType) -> Format:
    return Format(
        name=module.NAME,
        detect_order=getattr(module, "DETECT_ORDER", 100),
        detect=module.detect,
        parse=module.parse,
    )


@lru_cache(maxsize=1)
def registry() -> dict[str, Format]:
    found: dict[str, Format] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        fmt = _from_module(importlib.import_module(f"{__name__}.{info.name}"))
        found[fmt.name] = fmt
    return dict(sorted(found.items(), key=lambda item: (item[1].detect_order, item[0])))


def names() -> list[str]:
    return list(registry())


def get(name: str) -> Format:
    try:
        return registry()[name]
    except KeyError:
        raise BadRequest(
            f"unknown format {name!r}", [f"known formats: auto, {', '.join(names())}"]
        ) from None


def detect(doc: Any, headers: Mapping[str, str]) -> Format:
    for fmt in registry().values():
        if fmt.detect(doc, headers):
            return fmt
    raise BadRequest(
        "could not detect the payload's format",
        [f"tried: {', '.join(names())}", "name the format in the URL: /v1/alerts/{format}"],
    )
