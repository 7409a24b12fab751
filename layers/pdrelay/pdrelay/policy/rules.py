"""Routing rules: which of a route's PagerDuty destinations an alert goes to, and how it is changed.

A route has destinations (PagerDuty services) and, optionally, rules. Each rule has a ``when``
(a :class:`Matcher`: conditions on the alert's fields, labels and details, all of which must hold),
the destinations it sends to, and transforms for them (a severity or a severity mapping, extra
custom details, event templates: :mod:`pdrelay.policy.templates`), or ``page: false`` to keep
those destinations quiet::

    rules:
      - name: db-critical
        when:
          labels.team: {regex: "^db-"}
          severity: [critical, error]
        send_to: [payments, platform]       # empty or absent: the route's default destinations
        severity: {warning: critical}        # or a fixed severity: critical
        custom_details: {escalation: db on-call}
      - name: no-canaries
        when: {summary: {regex: "(?i)canary"}}
        page: false

:func:`plan` applies the rules to one alert. In mode ``first`` the first matching rule decides; in
mode ``all`` every matching rule adds its destinations and every matching ``page: false`` rule takes
its destinations (all of them, when it names none) away, whatever the order. When no rule matches,
the alert goes to the default destinations unchanged. The plan explains itself line by line, so
``pdrelay`` can answer "why did (or didn't) this page?".

What a condition tests (:func:`lookup`): the alert's own fields (``format``, ``severity``,
``source``, ``summary``, ``component``, ``group``, ``class``, ``identity``, ``action``, ``client``);
``labels.<name>``, from ``custom_details.labels`` (a mapping: Alertmanager, Grafana) merged with
``custom_details.tags`` (a mapping, or a list of ``key:value``, ``key=value`` or bare ``key``
strings: Datadog, Wavefront...; labels win, a bare tag's value is ""); ``details.<dotted.path>``,
any value inside custom_details (list items by index; a key that itself holds dots is found too).
Values are compared as text: numbers as written by ``str()``, booleans as ``true``/``false``,
mappings and lists as compact JSON, capped at 4096 characters so that a regex's cost is bounded.

This module does no I/O: the configuration embeds its models, ingest and dispatch call :func:`plan`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, RootModel, field_validator, model_validator

from pdrelay.models import SEVERITIES, Alert, Severity
from pdrelay.policy.templates import Templates

VALUE_LIMIT = 4096
REGEX_LIMIT = 1000
PATH_LIMIT = 256

# The alert fields a condition may test, by the name used in configuration.
FIELDS: dict[str, str] = {
    "format": "format",
    "severity": "severity",
    "source": "source",
    "summary": "summary",
    "component": "component",
    "group": "group",
    "class": "class_",
    "identity": "identity",
    "action": "action",
    "client": "client",
}


# --- looking values up -----------------------------------------------------------------------------


def as_text(value: Any) -> str | None:
    """The text a condition compares: None stays None, everything else a string of at most 4096."""
    if value is None:
        return None
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = value
    elif isinstance(value, dict | list | tuple):
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    else:
        text = str(value)
    return text[:VALUE_LIMIT]


def _split_tag(tag: str) -> tuple[str, str]:
    """``key:value`` or ``key=value`` (at the first of either), or a bare ``key`` with value ""."""
    cut = min((i for i in (tag.find(":"), tag.find("=")) if i >= 0), default=-1)
    return (tag, "") if cut < 0 else (tag[:cut], tag[cut + 1 :])


def labels(alert: Alert) -> dict[str, str]:
    """The alert's labels: ``custom_details.tags`` merged under ``custom_details.labels``.

    For a list of tags naming the same key twice, the first one counts."""
    merged: dict[str, str] = {}
    tags = alert.custom_details.get("tags")
    if isinstance(tags, dict):
        for key, value in tags.items():
            text = as_text(value)
            if text is not None:
                merged[str(key)] = text
    elif isinstance(tags, list):
        for tag in tags:
            if isinstance(tag, dict | list) or tag is None:
                continue
            key, value = _split_tag(as_text(tag) or "")
            if key:
                merged.setdefault(key, value)
    own = alert.custom_details.get("labels")
    if isinstance(own, dict):
        for key, value in own.items():
            text = as_text(value)
            if text is not None:
                merged[str(key)] = text
    return merged


def _dig(node: Any, parts: list[str]) -> tuple[Any, bool]:
    """The value at ``parts`` under ``node``; a mapping key may itself contain dots."""
    if not parts:
        return node, True
    if isinstance(node, dict):
        for j in range(1, len(parts) + 1):
            key = ".".join(parts[:j])
            if key in node:
                found = _dig(node[key], parts[j:])
                if found[1]:
                    return found
        return None, False
    head = parts[0]
    if isinstance(node, list) and head.isascii() and head.isdigit() and int(head) < len(node):
        return _dig(node[int(head)], parts[1:])
    return None, False


def lookup(alert: Alert, path: str) -> str | None:
    """The value the condition on ``path`` tests, as text, or None when the alert has none.

    Names that are not fields are refused when the configuration loads; here they are just missing."""
    if path in FIELDS:
        return as_text(getattr(alert, FIELDS[path]))
    if path.startswith("labels."):
        return labels(alert).get(path.removeprefix("labels."))
    if path.startswith("details."):
        value, _ = _dig(alert.custom_details, path.removeprefix("details.").split("."))
        return as_text(value)
    return None


# --- conditions ------------------------------------------------------------------------------------


def _field_path(path: str) -> str:
    if len(path) > PATH_LIMIT:
        raise ValueError(f"a field name is at most {PATH_LIMIT} characters")
    if path in FIELDS:
        return path
    for prefix in ("labels.", "details."):
        if path.startswith(prefix):
            rest = path.removeprefix(prefix)
            if not rest or (prefix == "details." and "" in rest.split(".")):
                raise ValueError(f"{path!r}: give a name after {prefix!r}, without empty parts")
            return path
    raise ValueError(f"unknown field {path!r}; use one of {', '.join(FIELDS)}, labels.<name> or details.<path>")


def _scalar_text(value: Any) -> str:
    if value is None or isinstance(value, dict | list | tuple):
        raise ValueError("expected a single value (text, number or boolean)")
    return as_text(value) or ""


OPERATORS = ("equals", "in", "regex", "contains", "present", "not")


class FieldTest(BaseModel):
    """One field's test: a scalar means ``equals``, a list ``in``; a mapping combines operators."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    equals: str | None = None
    in_: tuple[str, ...] | None = Field(None, alias="in")
    regex: re.Pattern[str] | None = None
    contains: str | None = None
    present: bool | None = None
    not_: FieldTest | None = Field(None, alias="not")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("a test cannot be empty; to test that a field is missing, write {present: false}")
        if isinstance(value, list | tuple):
            return {"in": value}
        if not isinstance(value, dict):
            return {"equals": value}
        if not value:
            raise ValueError(f"no test given; use {', '.join(OPERATORS)}")
        return value

    @field_validator("equals", "contains", mode="before")
    @classmethod
    def _one_value(cls, value: Any) -> Any:
        return _scalar_text(value)

    @field_validator("in_", mode="before")
    @classmethod
    def _values(cls, value: Any) -> Any:
        if not isinstance(value, list | tuple):
            raise ValueError("expected a list of values")
        if not value:
            raise ValueError("an empty list matches nothing")
        return tuple(_scalar_text(v) for v in value)

    @field_validator("regex", mode="before")
    @classmethod
    def _compile(cls, value: Any) -> Any:
        if not isinstance(value, str):
            raise ValueError("expected a regular expression as text")
        if len(value) > REGEX_LIMIT:
            raise ValueError(f"a regular expression is at most {REGEX_LIMIT} characters")
        try:
            return re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression: {exc}") from None

    def holds(self, value: str | None) -> bool:
        """Whether ``value`` (None: the field is missing) passes every operator of this test."""
        if self.present is not None and (value is not None) != self.present:
            return False
        if self.not_ is not None and self.not_.holds(value):
            return False
        if value is None:
            return self.equals is None and self.in_ is None and self.regex is None and self.contains is None
        if self.equals is not None and value != self.equals:
            return False
        if self.in_ is not None and value not in self.in_:
            return False
        if self.regex is not None and not self.regex.search(value):
            return False
        return self.contains is None or self.contains.casefold() in value.casefold()

    def describe(self) -> str:
        parts = []
        if self.equals is not None:
            parts.append(repr(self.equals))
        if self.in_ is not None:
            parts.append(f"one of {list(self.in_)!r}")
        if self.regex is not None:
            parts.append(f"regex {self.regex.pattern!r}")
        if self.contains is not None:
            parts.append(f"substring {self.contains!r} (any case)")
        if self.present is not None:
            parts.append(f"present: {str(self.present).lower()}")
        if self.not_ is not None:
            parts.append(f"not ({self.not_.describe()})")
        return " and ".join(parts)


FieldPath = Annotated[str, AfterValidator(_field_path)]


class Matcher(RootModel[dict[FieldPath, FieldTest]]):
    """A ``when:`` mapping of field to test; every test must hold. Empty or absent: matches everything."""

    model_config = ConfigDict(frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _absent(cls, value: Any) -> Any:
        return {} if value is None else value

    def matches(self, alert: Alert) -> bool:
        return all(test.holds(lookup(alert, path)) for path, test in self.root.items())

    def explain(self, alert: Alert) -> list[str]:
        """One line per condition, saying whether it holds for ``alert`` and why."""
        if not self.root:
            return ["no conditions: matches every alert"]
        lines = []
        for path, test in self.root.items():
            value = lookup(alert, path)
            shown = value if value is None or len(value) <= 80 else value[:77] + "..."
            subject = f"{path} (missing)" if value is None else f"{path} = {shown!r}"
            verb = "matches" if test.holds(value) else "does not match"
            lines.append(f"{subject} {verb} {test.describe()}")
        return lines


# --- rules and plans -------------------------------------------------------------------------------


def _severity_problems(value: Any) -> list[str]:
    known = ", ".join(SEVERITIES)
    if isinstance(value, str):
        return [] if value in SEVERITIES else [f"{value!r} is not a severity ({known})"]
    if isinstance(value, dict):
        return [
            f"{item!r} is not a severity ({known})"
            for pair in value.items()
            for item in pair
            if not isinstance(item, str) or item not in SEVERITIES
        ]
    return [f"expected a severity ({known}) or a mapping such as {{warning: critical}}"]


class Rule(BaseModel):
    """One rule of a route: when it matches, where the alert goes and how it is changed on the way."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=128)
    when: Matcher = Field(default_factory=lambda: Matcher({}))
    send_to: tuple[str, ...] = Field((), description="Destination names; empty: the route's defaults.")
    severity: Severity | dict[Severity, Severity] | None = Field(
        None, description="A fixed severity, or a mapping from the alert's severity (others unchanged)."
    )
    custom_details: dict[str, Any] = Field(default_factory=dict, description="Merged over the alert's (top level).")
    page: bool = Field(True, description="False: these destinations are not paged for matching alerts.")
    templates: Templates | None = Field(
        None, description="Event templates for the destinations this rule sends to, over the route's (templates)."
    )

    @field_validator("send_to", mode="before")
    @classmethod
    def _absent(cls, value: Any) -> Any:
        return () if value is None else value

    @field_validator("severity", mode="before")
    @classmethod
    def _severity(cls, value: Any) -> Any:
        if value is not None and (problems := _severity_problems(value)):
            raise ValueError("; ".join(problems))
        return value

    @property
    def transforms(self) -> bool:
        return self.severity is not None or bool(self.custom_details)

    def apply(self, alert: Alert) -> Alert:
        """The alert as this rule sends it: a copy when something changes, ``alert`` itself otherwise."""
        if not self.transforms:
            return alert
        update: dict[str, Any] = {}
        if isinstance(self.severity, dict):
            update["severity"] = self.severity.get(alert.severity, alert.severity)
        elif self.severity is not None:
            update["severity"] = self.severity
        if self.custom_details:
            update["custom_details"] = {**alert.custom_details, **self.custom_details}
        return alert.model_copy(update=update)


class Target(NamedTuple):
    destination: str
    rule: str | None
    alert: Alert


@dataclass(frozen=True)
class Plan:
    """Where one alert goes: targets to send, destinations a ``page: false`` rule kept quiet, and why."""

    targets: list[Target] = field(default_factory=list)
    not_paged: list[tuple[str, str]] = field(default_factory=list)
    matched: list[str] = field(default_factory=list)
    explanation: list[str] = field(default_factory=list)


def _unique(names: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(names))


def _describe_rule(rule: Rule, alert: Alert, lines: list[str]) -> bool:
    matched = rule.when.matches(alert)
    lines.append(f"rule {rule.name!r} {'matches' if matched else 'does not match'}")
    lines.extend(f"  {line}" for line in rule.when.explain(alert))
    return matched


def plan(
    rules: Sequence[Rule], mode: Literal["first", "all"], default_destinations: Sequence[str], alert: Alert
) -> Plan:
    """Apply ``rules`` to ``alert``: which destinations get it, transformed how, and which are kept quiet."""
    lines: list[str] = []
    matched: list[Rule] = []
    for i, rule in enumerate(rules):
        if _describe_rule(rule, alert, lines):
            matched.append(rule)
            if mode == "first":
                if i < len(rules) - 1:
                    lines.append(f"the rules after {rule.name!r} are not evaluated (mode: first)")
                break

    defaults = _unique(default_destinations)
    senders = [r for r in matched if r.page]
    blockers = [r for r in matched if not r.page]
    candidates: dict[str, Rule | None] = {}
    if mode == "first" and blockers:
        blockers = blockers[:1]
        candidates = dict.fromkeys(_unique(blockers[0].send_to) or defaults, None)
    elif senders:
        for rule in senders:
            for name in _unique(rule.send_to) or defaults:
                candidates.setdefault(name, rule)
    else:
        if not matched:
            lines.append("no rule matches: the default destinations, unchanged")
        candidates = dict.fromkeys(defaults, None)

    targets: list[Target] = []
    not_paged: list[tuple[str, str]] = []
    for name, decider in candidates.items():
        blocker = next((b for b in blockers if not b.send_to or name in b.send_to), None)
        if blocker is not None:
            not_paged.append((name, blocker.name))
            lines.append(f"do not page {name} (rule {blocker.name!r} has page: false)")
            continue
        sent = decider.apply(alert) if decider is not None else alert
        how = f"rule {decider.name!r}" if decider is not None else "default"
        if sent.severity != alert.severity:
            how += f", severity {alert.severity} -> {sent.severity}"
        if decider is not None and decider.custom_details:
            how += f", custom_details + {sorted(decider.custom_details)}"
        if decider is not None and decider.templates is not None:
            how += ", the rule's templates"
        targets.append(Target(name, decider.name if decider is not None else None, sent))
        lines.append(f"send to {name} ({how})")
    if not targets:
        lines.append("nothing is sent")
    return Plan(targets=targets, not_paged=not_paged, matched=[r.name for r in matched], explanation=lines)


def check_destinations(rules: Sequence[Rule], known: set[str]) -> list[str]:
    """Problems a route's rules have with its destinations, and rule names used twice."""
    problems: list[str] = []
    first_use: dict[str, int] = {}
    for i, rule in enumerate(rules):
        if rule.name in first_use:
            problems.append(f"rules.{i}.name: {rule.name!r} is already the name of rules.{first_use[rule.name]}")
        first_use.setdefault(rule.name, i)
        seen: set[str] = set()
        for name in rule.send_to:
            if name not in known:
                problems.append(f"rules.{i}.send_to: no destination named {name!r}")
            elif name in seen:
                problems.append(f"rules.{i}.send_to: {name!r} is listed twice")
            seen.add(name)
    return problems
