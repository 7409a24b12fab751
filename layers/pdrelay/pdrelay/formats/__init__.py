"""Monitor formats: each module turns one monitor's payload into normalized alerts.

A format is a module in this package (names starting with ``_`` are skipped) that defines:

``NAME``
    the path segment in ``POST /v1/alerts/{NAME}``;
``DETECT_ORDER``
    an int; ``auto`` tries formats in increasing order;
``detect(doc, headers) -> bool``
    whether a decoded payload looks like this format;
``parse(doc, context) -> list[Alert] | Parsed``
    the alerts it carries, or :class:`pdrelay.errors.BadRequest` naming each problem. A
    :class:`Parsed` also carries notes for the answer (a test notification, an ignored state),
    per-item rejections (the other alerts of the request still go), and actions to run once the
    alerts are queued (confirming an SNS subscription).

and may define ``REPLAY_BY_BODY = True`` when every notification carries its own times (so an
identical body within the replay window is a sender's retry, not a new event), and ``Options``, a
pydantic model of per-route options (``routes.NAME.formats.NAME`` in the configuration);
``context.options`` is then an instance of it.

Adding a monitor is adding one module (and its tests and fixtures): the registry finds it. What the
monitor sends and what becomes of it is written once, in its page ``docs/senders/<NAME>.md``; the
module's docstring keeps only what a maintainer of the parser needs beyond that page.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache, lru_cache
from types import ModuleType
from typing import Any

from pydantic import BaseModel, ValidationError

from pdrelay.errors import BadRequest, validation_problems
from pdrelay.models import Alert


@dataclass(frozen=True)
class ParseContext:
    """What a format may know about the request besides the payload."""

    received_at: datetime
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names
    options: Any = None  # the format's ``Options`` for the route, when it defines them
    body: bytes = b""  # the raw body, for senders that sign it


@dataclass
class Parsed:
    """What a payload amounts to."""

    alerts: list[Alert] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # "where: why", one per alert refused
    after: list[Callable[[], None]] = field(default_factory=list)  # run once the alerts are queued


@dataclass(frozen=True)
class Format:
    name: str
    detect_order: int
    detect: Callable[[Any, Mapping[str, str]], bool]
    parse: Callable[[Any, ParseContext], list[Alert] | Parsed]
    options: type[BaseModel] | None = None
    replay_by_body: bool = False  # every notification carries its own times: same body, same event

    def options_for(self, raw: Mapping[str, Any] | None) -> Any:
        """This format's options from a route's raw mapping (validated at config load)."""
        if self.options is None:
            return None
        return self.options.model_validate(raw or {})

    def run(self, doc: Any, context: ParseContext) -> Parsed:
        result = self.parse(doc, context)
        return result if isinstance(result, Parsed) else Parsed(alerts=list(result))


def _from_module(module: ModuleType) -> Format:
    return Format(
        name=module.NAME,
        detect_order=getattr(module, "DETECT_ORDER", 100),
        detect=module.detect,
        parse=module.parse,
        options=getattr(module, "Options", None),
        replay_by_body=getattr(module, "REPLAY_BY_BODY", False),
    )


@lru_cache(maxsize=1)
def module_names() -> tuple[str, ...]:
    """The format modules present (a module's file name is its ``NAME``), without importing them."""
    return tuple(sorted(info.name for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_")))


@cache
def _load(name: str) -> Format:
    fmt = _from_module(importlib.import_module(f"{__name__}.{name}"))
    if fmt.name != name:
        raise RuntimeError(f"format module {name}.py declares NAME {fmt.name!r}")  # a packaging mistake
    return fmt


@lru_cache(maxsize=1)
def registry() -> dict[str, Format]:
    """Every format, in detection order. Imports all the modules: ``get`` imports only the one named,
    so a request naming its format in the URL does not pay for the other fifteen on a cold start."""
    found = {name: _load(name) for name in module_names()}
    return dict(sorted(found.items(), key=lambda item: (item[1].detect_order, item[0])))


def names() -> list[str]:
    return list(module_names())


def get(name: str) -> Format:
    if name not in module_names():
        raise BadRequest(f"unknown format {name!r}", [f"known formats: auto, {', '.join(names())}"])
    return _load(name)


def detect(doc: Any, headers: Mapping[str, str]) -> Format:
    for fmt in registry().values():
        if fmt.detect(doc, headers):
            return fmt
    raise BadRequest(
        "could not detect the payload's format",
        [
            f"tried: {', '.join(n for n, f in registry().items() if f.detect_order < MANUAL_ONLY)}",
            "name the format in the URL: /v1/alerts/{format}",
        ],
    )


MANUAL_ONLY = 1000  # formats at or after this DETECT_ORDER are never auto-detected (generic)


def option_problems(name: str, raw: Any) -> list[str]:
    """What is wrong with a route's options for format ``name`` (for config validation)."""
    if name not in module_names():
        return [f"no format named {name!r} (known: {', '.join(names())})"]
    fmt = _load(name)
    if fmt.options is None:
        return [f"format {name!r} takes no options"]
    try:
        fmt.options.model_validate(raw if raw is not None else {})
    except ValidationError as exc:
        return validation_problems(exc, empty="(options)")
    return []
