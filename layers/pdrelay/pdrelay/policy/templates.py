"""Event templates: a route's or a rule's own text for the event's summary, source, component,
group, class, severity and custom details entries, rendered from the normalized alert::

    templates:
      summary: "[{{ labels.env | upper }}] {{ labels.alertname }} on {{ labels.instance | default('?') }}"
      source: "{{ labels.instance }}"
      severity: "{{ 'critical' if labels.tier == 'db' else severity }}"
      custom_details:
        runbook: "https://runbooks.example.com/{{ labels.alertname | lower }}"

Templates are Jinja2 in its immutable sandbox, compiled when the configuration loads (a mistake is
a configuration error that names its place), and rendered at ingest, per destination, after the
route's rules have changed the alert and the scrubber has removed credentials from it: the queue
message carries the rendered fields, so the dedup table's content hash, the payload kept for later
events and ``pdrelay config explain`` all see what PagerDuty sees.

What a template sees (:func:`context`) is the alert only, never a routing key: ``labels`` (as the
rules see them), ``annotations``, ``details`` (custom_details), the alert's fields (``summary``,
``source``, ``severity``, ``component``, ``group``, ``class``, ``format``, ``identity``,
``action``, ``client``, ``client_url``), its times as ISO 8601 text (``occurred_at``,
``timestamp``), ``links`` and the ``route`` and ``rule`` names. A missing label or detail renders
as empty text (alerts differ in what they carry); a name that is none of these is refused at load.

The language is cut down so that a template's cost is bounded by the alert's size and a render
is deterministic (the same alert renders the same text, so a repeat is still ``unchanged``):

- statements: ``{% if %}`` and ``{% for %}`` only (no ``set``, macros, includes or recursive
  loops); every loop of one render shares :data:`ITERATION_LIMIT` iterations, ``range`` at most
  :data:`RANGE_LIMIT` items;
- no attribute that starts with ``_``; text, mappings and lists offer a few read-only methods
  (:data:`METHODS`); filters are a safe list (:data:`FILTERS`: no ``random``, ``format``,
  ``center``...); ``*``, ``**`` and ``+`` are checked for size, ``%`` on text refused;
- output at most the field's limit (:data:`LIMITS`), streamed and cut off when exceeded; and a
  wall-clock limit (:data:`TIME_LIMIT_SECONDS`) checked at every loop step, call, lookup and
  output chunk, a backstop set far above what a template that passes the other limits needs.

A template that fails on one alert (an error, a limit, an empty or over-long summary, a severity
that is not one) leaves that field as the format made it and says so in the event's custom
details under ``pdrelay_template_errors``: a template can never make an event PagerDuty refuses.

Jinja2 is imported only when a configuration has templates (the functions' cold start).
"""

from __future__ import annotations

import contextvars
import json
import time
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pdrelay.models import SEVERITIES, SUMMARY_LIMIT, Alert

if TYPE_CHECKING:
    from jinja2 import Template

SOURCE_LIMIT = 4096  # a template's own text
FIELD_LIMIT = 255
DETAIL_LIMIT = 4096
DETAIL_ENTRIES = 50
LIMITS: dict[str, int] = {
    "summary": SUMMARY_LIMIT,
    "source": FIELD_LIMIT,
    "component": FIELD_LIMIT,
    "group": FIELD_LIMIT,
    "class": FIELD_LIMIT,
    "severity": 16,
}
ITERATION_LIMIT = 10_000
RANGE_LIMIT = 1_000
TIME_LIMIT_SECONDS = 0.25
ERRORS_KEY = "pdrelay_template_errors"
FIELDS = ("summary", "source", "component", "group", "class", "severity")
NAMES = frozenset(
    {
        "labels",
        "annotations",
        "details",
        "summary",
        "source",
        "severity",
        "component",
        "group",
        "class",
        "format",
        "identity",
        "action",
        "client",
        "client_url",
        "occurred_at",
        "timestamp",
        "links",
        "route",
        "rule",
        "range",
        "loop",
    }
)
METHODS: dict[type, frozenset[str]] = {
    str: frozenset(
        [
            "lower",
            "upper",
            "title",
            "capitalize",
            "casefold",
            "strip",
            "lstrip",
            "rstrip",
            "split",
            "rsplit",
            "splitlines",
            "startswith",
            "endswith",
            "removeprefix",
            "removesuffix",
            "partition",
            "rpartition",
            "count",
            "find",
            "rfind",
            "isdigit",
            "isalpha",
            "isalnum",
            "isspace",
            "islower",
            "isupper",
        ]
    ),
    dict: frozenset({"items", "keys", "values", "get"}),
    list: frozenset({"index", "count"}),
    tuple: frozenset({"index", "count"}),
}
FILTERS = frozenset(
    [
        "abs",
        "capitalize",
        "count",
        "default",
        "d",
        "dictsort",
        "first",
        "float",
        "int",
        "items",
        "join",
        "last",
        "length",
        "list",
        "lower",
        "map",
        "max",
        "min",
        "reject",
        "rejectattr",
        "replace",
        "reverse",
        "round",
        "select",
        "selectattr",
        "sort",
        "string",
        "sum",
        "title",
        "tojson",
        "trim",
        "truncate",
        "unique",
        "upper",
        "urlencode",
        "wordcount",
    ]
)
STATEMENTS = {"Output": None, "If": None, "For": None}  # node types a template may use


class TemplateFailure(Exception):
    """A template could not render for one alert (the field keeps the format's value)."""


class Templates(BaseModel):
    """A route's or a rule's event templates (Jinja2, sandboxed); each is optional."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    summary: str | None = Field(None, description="The incident title (at most 1024 characters once rendered).")
    source: str | None = Field(None, description="The affected system, e.g. a host name.")
    component: str | None = None
    group: str | None = None
    class_: str | None = Field(None, alias="class")
    severity: str | None = Field(None, description="Must render to critical, error, warning or info.")
    custom_details: dict[str, str] = Field(
        default_factory=dict, description="Entries added to (or replacing) the alert's custom details."
    )

    @field_validator("summary", "source", "component", "group", "class_", "severity")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            check(value)
        return value

    @field_validator("custom_details")
    @classmethod
    def _entries_compile(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > DETAIL_ENTRIES:
            raise ValueError(f"at most {DETAIL_ENTRIES} entries")
        problems = []
        for name, source in value.items():
            if not name or len(name) > 128 or name == ERRORS_KEY:
                problems.append(f"{name!r}: an entry name has 1 to 128 characters and is not {ERRORS_KEY}")
                continue
            try:
                check(source)
            except ValueError as exc:
                problems.append(f"{name}: {exc}")
        if problems:
            raise ValueError("; ".join(problems))
        return value

    def fields(self) -> dict[str, str]:
        """Field name (as PagerDuty spells it) → template, for the fields this set templates."""
        found = {
            "summary": self.summary,
            "source": self.source,
            "component": self.component,
            "group": self.group,
            "class": self.class_,
            "severity": self.severity,
        }
        return {k: v for k, v in found.items() if v is not None}


def merged(route: Templates | None, rule: Templates | None) -> Templates | None:
    """The templates for one destination: the rule's over the route's, field by field and entry by entry."""
    if route is None or rule is None:
        return rule or route
    update = rule.model_dump(by_alias=True, exclude_none=True, exclude={"custom_details"})
    both = {**route.model_dump(by_alias=True, exclude_none=True), **update}
    both["custom_details"] = {**route.custom_details, **rule.custom_details}
    return Templates.model_validate(both)


# --- the sandbox -----------------------------------------------------------------------------------


class _Budget:
    def __init__(self) -> None:
        self.deadline = time.monotonic() + TIME_LIMIT_SECONDS
        self.iterations = ITERATION_LIMIT

    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise TemplateFailure(f"took longer than {TIME_LIMIT_SECONDS} s")


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("pdrelay_template_budget", default=None)


def _tick() -> None:
    budget = _BUDGET.get()
    if budget is not None:
        budget.tick()


def _each(items: Any) -> Iterator[Any]:
    """Every ``{% for %}`` iterates through this: one budget of iterations per render."""
    budget = _BUDGET.get()
    for item in items:
        if budget is not None:
            budget.iterations -= 1
            if budget.iterations < 0:
                raise TemplateFailure(f"loops ran more than {ITERATION_LIMIT} times")
            budget.tick()
        yield item


def _range(*args: int) -> range:
    found = range(*args)
    if len(found) > RANGE_LIMIT:
        raise TemplateFailure(f"range() gives at most {RANGE_LIMIT} numbers")
    return found


def _shown(value: Any) -> Any:
    """What ``{{ value }}`` prints: nothing for None; never a function (its text holds an address,
    which would make the same alert render differently each time)."""
    from jinja2 import Undefined

    if value is None or isinstance(value, Undefined):
        return ""
    if callable(value):
        raise TemplateFailure("a function is printed, not called (add ())")
    return value


def _size(value: Any) -> int:
    return len(value) if isinstance(value, str | list | tuple) else 0


def _replace(text: Any, old: Any, new: Any, count: int | None = None) -> str:
    text, old, new = str(text), str(old), str(new)
    result: str
    times = text.count(old) if old else len(text) + 1
    if count is not None:
        times = min(times, max(count, 0))
    if len(text) + times * max(0, len(new) - len(old)) > DETAIL_LIMIT * 4:
        raise TemplateFailure("replace() would make the text too long")
    result = text.replace(old, new) if count is None else text.replace(old, new, count)
    return result


@lru_cache(maxsize=1)
def _environment() -> Any:
    import operator

    from jinja2 import ChainableUndefined, nodes
    from jinja2.exceptions import SecurityError
    from jinja2.filters import FILTERS as DEFAULT_FILTERS
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class Sandbox(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset({"*", "**", "+", "%"})

        def getattr(self, obj: Any, attribute: str) -> Any:
            _tick()
            allowed = METHODS.get(type(obj))
            if allowed is None:
                return super().getattr(obj, attribute)
            if attribute in allowed:
                return getattr(obj, attribute)
            if isinstance(obj, dict):  # labels.team: the entry (a label named like a method too)
                return obj[attribute] if attribute in obj else self.undefined(obj=obj, name=attribute)
            if hasattr(obj, attribute):
                return self.unsafe_undefined(obj, attribute)
            return self.undefined(obj=obj, name=attribute)

        def getitem(self, obj: Any, argument: Any) -> Any:
            _tick()
            try:
                return obj[argument]
            except (TypeError, LookupError):
                if isinstance(argument, str):
                    return self.getattr(obj, argument)
            return self.undefined(obj=obj, name=argument)

        def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
            raise SecurityError(f"{type(obj).__name__}.{attribute} is not available in templates")

        def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
            _tick()
            return super().call(__context, __obj, *args, **kwargs)

        def call_binop(self, context: Any, operator_: str, left: Any, right: Any) -> Any:
            _tick()
            if operator_ == "%" and isinstance(left, str):
                raise SecurityError("'%' formatting is not available in templates; use ~ and filters")
            if operator_ == "**" and (
                not isinstance(right, int | float)
                or abs(right) > 64
                or (isinstance(left, int) and left.bit_length() * abs(right) > 4096)
            ):
                raise SecurityError("'**' is limited to results of 4096 bits, exponents of at most 64")
            if operator_ == "*" and (isinstance(left, str | list | tuple) or isinstance(right, str | list | tuple)):
                times = right if isinstance(left, str | list | tuple) else left
                if not isinstance(times, int) or max(_size(left), _size(right)) * times > DETAIL_LIMIT:
                    raise SecurityError(f"'*' would make more than {DETAIL_LIMIT} characters or items")
            if operator_ == "+" and _size(left) + _size(right) > DETAIL_LIMIT * 4:
                raise SecurityError("'+' would make the value too long")
            return {"*": operator.mul, "**": operator.pow, "+": operator.add, "%": operator.mod}[operator_](left, right)

    env = Sandbox(autoescape=False, undefined=ChainableUndefined, finalize=_shown)
    env.globals.clear()
    env.globals.update({"range": _range, "_pdrelay_each": _each})
    env.filters = {name: f for name, f in DEFAULT_FILTERS.items() if name in FILTERS}
    env.filters["replace"] = _replace
    return env, nodes


def _statement_name(node: Any) -> str:
    names = {
        "Assign": "set",
        "AssignBlock": "set",
        "Macro": "macro",
        "CallBlock": "call",
        "FilterBlock": "filter",
        "With": "with",
        "Block": "block",
        "Extends": "extends",
        "Include": "include",
        "Import": "import",
        "FromImport": "from ... import",
    }
    return names.get(type(node).__name__, type(node).__name__.lower())


@lru_cache(maxsize=1024)
def compiled(source: str) -> Template:
    """``source`` compiled, or ValueError saying what is wrong and where (line numbers of ``source``)."""
    if len(source) > SOURCE_LIMIT:
        raise ValueError(f"a template is at most {SOURCE_LIMIT} characters")
    env, nodes = _environment()
    from jinja2 import TemplateSyntaxError, meta

    try:
        ast = env.parse(source)
        problems = _problems(ast, nodes)
        problems += [f"unknown name {name!r}" for name in sorted(meta.find_undeclared_variables(ast) - NAMES)]
        if problems:
            raise ValueError("; ".join(problems))
        for loop in ast.find_all(nodes.For):
            loop.iter = nodes.Call(nodes.Name("_pdrelay_each", "load"), [loop.iter], [], None, None)
        return env.from_string(ast)  # type: ignore[no-any-return]
    except TemplateSyntaxError as exc:  # also unknown filters and tests, found when compiling
        raise ValueError(f"{exc.message} at line {exc.lineno}") from None


def _problems(ast: Any, nodes: Any) -> list[str]:
    problems = []
    for stmt in ast.find_all(nodes.Stmt):
        if type(stmt).__name__ not in STATEMENTS:
            problems.append(f"line {stmt.lineno}: {{% {_statement_name(stmt)} %}} is not allowed (only if and for)")
        elif isinstance(stmt, nodes.For) and stmt.recursive:
            problems.append(f"line {stmt.lineno}: recursive loops are not allowed")
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        name = node.attr if isinstance(node, nodes.Getattr) else getattr(node.arg, "value", None)
        if isinstance(name, str) and name.startswith("_"):
            problems.append(f"line {node.lineno}: {name!r}: names that start with '_' are not available")
    return problems


def check(source: str) -> None:
    """ValueError when ``source`` is not a valid template (the configuration's validators)."""
    compiled(source)


# --- rendering -------------------------------------------------------------------------------------


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def context(alert: Alert, *, route: str | None = None, rule: str | None = None) -> dict[str, Any]:
    """What templates see: the normalized alert (no routing key, no configuration)."""
    from pdrelay.policy.rules import labels  # rules embeds Templates: imported here, no cycle

    details = _json_safe(alert.custom_details)
    annotations = details.get("annotations")
    return {
        "labels": labels(alert),
        "annotations": annotations if isinstance(annotations, dict) else {},
        "details": details,
        "summary": alert.summary,
        "source": alert.source,
        "severity": alert.severity,
        "component": alert.component,
        "group": alert.group,
        "class": alert.class_,
        "format": alert.format,
        "identity": alert.identity,
        "action": alert.action,
        "client": alert.client,
        "client_url": alert.client_url,
        "occurred_at": alert.occurred_at.isoformat(),
        "timestamp": alert.timestamp.isoformat() if alert.timestamp else None,
        "links": [link.model_dump() for link in alert.links],
        "route": route,
        "rule": rule,
    }


def render(source: str, values: dict[str, Any], limit: int) -> str:
    """``source`` rendered over ``values``, stripped, at most ``limit`` characters; else TemplateFailure."""
    template = compiled(source)
    token = _BUDGET.set(_Budget())
    try:
        out: list[str] = []
        size = 0
        for chunk in _chunks(template.generate(values)):
            size += len(chunk)
            if size > limit * 2 + 64:  # spaces are stripped below; stop streaming well before memory matters
                raise TemplateFailure(f"longer than {limit} characters")
            out.append(chunk)
    except TemplateFailure:
        raise
    except Exception as exc:  # a template is configuration-supplied code: any error is its failure
        raise TemplateFailure(_describe(exc)) from exc
    finally:
        _BUDGET.reset(token)
    text = "".join(out).strip()
    if len(text) > limit:
        raise TemplateFailure(f"{len(text)} characters, more than {limit}")
    return text


def _chunks(pieces: Iterable[str]) -> Iterator[str]:
    for piece in pieces:
        _tick()
        yield piece


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]


def apply(alert: Alert, templates: Templates | None, *, route: str | None = None, rule: str | None = None) -> Alert:
    """``alert`` with its templated fields rendered; a field whose template fails keeps its value,
    and the failure is listed under custom_details.pdrelay_template_errors. Events that carry no
    payload (a resolve without a summary: PagerDuty gets the stored one) are left alone."""
    if templates is None or alert.summary is None:
        return alert
    values = context(alert, route=route, rule=rule)
    update: dict[str, Any] = {}
    errors: list[str] = []
    for name, source in templates.fields().items():
        try:
            text = render(source, values, LIMITS[name])
            if name == "severity":
                text = text.lower()
                if text not in SEVERITIES:
                    raise TemplateFailure(f"{text!r} is not a severity ({', '.join(SEVERITIES)})")
            if not text and name in ("summary", "source"):
                raise TemplateFailure("rendered empty")
        except TemplateFailure as exc:
            errors.append(f"{name}: {exc}; kept the format's {name}")
            continue
        if text:
            update["class_" if name == "class" else name] = text
    details = dict(alert.custom_details)
    for name, source in templates.custom_details.items():
        try:
            details[name] = render(source, values, DETAIL_LIMIT)
        except TemplateFailure as exc:
            errors.append(f"custom_details.{name}: {exc}; " + ("kept the alert's" if name in details else "left out"))
    if errors:
        details[ERRORS_KEY] = errors
    if details != alert.custom_details:
        update["custom_details"] = details
    return alert.model_copy(update=update) if update else alert
