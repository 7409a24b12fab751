"""The relay's configuration document: callers (who may send), routes (where alerts go and
when they page) and maintenance windows.

One document, validated at load with errors that name the place of each mistake. It lives in a
file locally and in SSM Parameter Store (``ssm:/name``) or Secrets Manager (``secret:name``) in
AWS, read with the process's own clients and kept for a cache age, so a change is picked up without a
redeploy. A complete commented example is events/config/example.yaml (docs/configuration.md); the smallest is::

    version: 1
    default_route: platform
    callers:
      - name: alertmanager
        token: "a-long-random-string"
        routes: [platform]          # optional; empty means every route
    routes:
      platform:
        routing_key: "<32-character Events API v2 integration key>"

A route sends to one PagerDuty service (``routing_key``) or to several named ``destinations``;
its ``rules`` (see :mod:`pdrelay.policy.rules`) pick the destinations per alert, its ``templates``
(:mod:`pdrelay.policy.templates`) write the event's text, and its ``storm``
settings bound how often it pages; a ``heartbeat`` (:mod:`pdrelay.policy.heartbeats`) pages
when its monitor goes silent. ``maintenance`` windows (:mod:`pdrelay.policy.windows`) hold triggers.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pdrelay import aws
from pdrelay.errors import ConfigError, validation_problems
from pdrelay.policy.heartbeats import Heartbeat
from pdrelay.policy.rules import Rule, check_destinations
from pdrelay.policy.templates import Templates, merged
from pdrelay.policy.windows import Window
from pdrelay.settings import Settings

ROUTING_KEY_RE = re.compile(r"^[A-Za-z0-9]{32}$")
ROUTE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
DEMO_ROUTING_KEY = "pdrelaydemo000000000000000000000"
DEFAULT_DESTINATION = "default"


def _check_routing_key(value: str) -> str:
    if not ROUTING_KEY_RE.fullmatch(value):
        raise ValueError("must be a 32-character Events API v2 integration key (letters and digits)")
    return value


class DestinationConfig(BaseModel):
    """One PagerDuty service a route can page: its Events API v2 integration key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    routing_key: str = Field(description="The service's Events API v2 integration key (32 characters).")
    description: str = ""
    events_per_minute: int | None = Field(
        None,
        gt=0,
        le=100000,
        description=(
            "PagerDuty's limit for this integration key (events per minute; default the route's, else "
            "PDRELAY_RATE_LIMIT, 120). AIOps integrations allow more."
        ),
    )

    @field_validator("routing_key")
    @classmethod
    def _key_shape(cls, value: str) -> str:
        return _check_routing_key(value)


class StormControl(BaseModel):
    """Per-route limits on paging. Zero turns a limit off."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_resend_seconds: int = Field(
        0,
        ge=0,
        le=86400,
        description=(
            "Per alert: an updated trigger for an incident already open is sent at most this often; "
            "updates in between are recorded, counted as suppressed, and the next one sent carries "
            "the latest content."
        ),
    )
    max_new_per_minute: int = Field(
        0,
        ge=0,
        le=10000,
        description=(
            "Per route and destination: new incidents opened per minute; further new alerts in that "
            "minute are rolled up into one summary incident that lists them and resolves when they have."
        ),
    )
    rollup_update_seconds: int = Field(
        60,
        ge=0,
        le=3600,
        description=("How often the roll-up incident is re-sent with its updated list while alerts join it."),
    )


class Route(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    routing_key: str | None = Field(
        None,
        description=(
            "The PagerDuty Events API v2 integration key (32 characters): shorthand for one destination "
            "named 'default'."
        ),
    )
    destinations: dict[str, DestinationConfig] = Field(
        default_factory=dict,
        description=("Named PagerDuty services this route can page, e.g. the owning team's and the platform team's."),
    )
    default_destinations: tuple[str, ...] = Field(
        (), description=("Where alerts that match no rule go; empty: every destination.")
    )
    rules_match: Literal["first", "all"] = Field(
        "first",
        description=("'first': the first matching rule decides; 'all': every matching rule adds its destinations."),
    )
    rules: tuple[Rule, ...] = ()
    templates: Templates | None = Field(
        None,
        description=(
            "Event templates (Jinja2, sandboxed) for summary, source, component, group, class, severity "
            "and custom_details entries, over the normalized alert; a rule's templates override these."
        ),
    )
    storm: StormControl = Field(default_factory=StormControl)
    heartbeat: Heartbeat | None = Field(
        None,
        description=(
            "A dead man's switch: page the route's destinations once when no contact (an alert, one "
            "matching `when`, or a ping to POST /v1/heartbeat/{route}) came for longer than `every`; "
            "resolve when it does."
        ),
    )
    description: str = ""
    send_test_notifications: bool = Field(
        False, description="Page for the test notifications monitors send when someone clicks 'test'."
    )
    formats: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Per-format options, e.g. alertmanager: {group_by: group}."
    )
    resolved_before_paged: Literal["page", "record", "drop"] = Field(
        "page",
        description=(
            "An alert that resolved while its trigger was still waiting to reach PagerDuty (paced, "
            "PagerDuty down, in back-off): 'page' sends the trigger, then the resolve (an incident that "
            "opens and resolves); 'record' sends one change event saying what fired and that it "
            "resolved while delivery was held (change events notify no one); 'drop' sends nothing."
        ),
    )
    events_per_minute: int | None = Field(
        None,
        gt=0,
        le=100000,
        description=(
            "PagerDuty's limit for the route's integration keys (events per minute; default PDRELAY_RATE_LIMIT)."
        ),
    )

    @field_validator("formats", mode="before")
    @classmethod
    def _format_options(cls, value: Any) -> Any:
        from pdrelay import formats  # the registry imports no configuration: no cycle

        if not isinstance(value, dict):
            return value
        problems = []
        for name, raw in value.items():
            if raw is not None and not isinstance(raw, dict):
                problems.append(f"{name}: expected a mapping of options")
                continue
            problems.extend(f"{name}: {p}" for p in formats.option_problems(str(name), raw))
        if problems:
            raise ValueError("; ".join(problems))
        return {str(k): dict(v or {}) for k, v in value.items()}

    def options_for(self, fmt: Any) -> Any:
        """The validated options of format ``fmt`` (a :class:`pdrelay.formats.Format`) on this route."""
        return fmt.options_for(self.formats.get(fmt.name))

    @field_validator("routing_key")
    @classmethod
    def _key_shape(cls, value: str | None) -> str | None:
        return None if value is None else _check_routing_key(value)

    @model_validator(mode="after")
    def _destinations(self) -> Route:
        problems = []
        if self.routing_key is None and not self.destinations:
            problems.append("routing_key: give a routing_key or at least one destination")
        if self.routing_key is not None and DEFAULT_DESTINATION in self.destinations:
            problems.append(f"destinations.{DEFAULT_DESTINATION}: already defined by routing_key")
        problems.extend(
            f"destinations.{name}: destination names are lower-case letters, digits, '.', '_' or '-'"
            for name in self.destinations
            if not ROUTE_NAME_RE.fullmatch(name)
        )
        known = set(self.targets)
        problems.extend(
            f"default_destinations: no destination named {name!r}"
            for name in self.default_destinations
            if name not in known
        )
        problems.extend(check_destinations(self.rules, known))
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def templates_for(self, rule: str | None) -> Templates | None:
        """The templates for alerts that rule ``rule`` (None: no rule) sent: the rule's over the route's."""
        found = next((r.templates for r in self.rules if r.name == rule), None) if rule else None
        return merged(self.templates, found)

    @property
    def targets(self) -> dict[str, str]:
        """Destination name → routing key, the shorthand ``routing_key`` first (as 'default')."""
        found = {DEFAULT_DESTINATION: self.routing_key} if self.routing_key else {}
        found.update({name: d.routing_key for name, d in self.destinations.items()})
        return found

    @property
    def defaults(self) -> tuple[str, ...]:
        return self.default_destinations or tuple(self.targets)

    @property
    def limits(self) -> dict[str, int]:
        """Routing key → events per minute, for the keys whose limit is set here."""
        found = {self.routing_key: self.events_per_minute} if self.routing_key else {}
        found.update({d.routing_key: d.events_per_minute or self.events_per_minute for d in self.destinations.values()})
        return {k: v for k, v in found.items() if v}

    def targets_fingerprint(self) -> str:
        """A short fingerprint of the route's routing keys (which incidents a resolve must reach)."""
        import hashlib

        return hashlib.sha256("\n".join(sorted(set(self.targets.values()))).encode()).hexdigest()[:12]

    @property
    def primary_key(self) -> str:
        """The routing key of the route's first destination (for single-destination answers)."""
        return next(iter(self.targets.values()))


class RateLimit(BaseModel):
    """At most ``requests`` accepted in any ``per_seconds`` (a token bucket shared by every instance)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    requests: int = Field(gt=0, le=1_000_000)
    per_seconds: int = Field(60, gt=0, le=86400)


class Caller(BaseModel):
    """Who may send. Credentials: bearer tokens (also basic auth's password, or ``?token=``) and
    HMAC keys for senders that sign; several may be active at once, so they rotate without a gap.
    Kept in Secrets Manager in production (``credentials_secret``), inline only for local use."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64)
    token: str | None = Field(None, min_length=16, description="One bearer token (same as tokens: [...]).")
    tokens: tuple[str, ...] = Field((), description="Bearer tokens, all accepted (rotate: add, move, remove).")
    hmac_keys: tuple[str, ...] = Field((), description="Keys for X-Pdrelay-Signature (HMAC-SHA256), all accepted.")
    require_signature: bool = Field(False, description="Refuse this caller's requests unless they are signed.")
    rate_limit: RateLimit | None = Field(None, description="Per-caller limit; default PDRELAY_CALLER_RATE_LIMIT.")
    routes: tuple[str, ...] = ()
    default_route: str | None = None
    read_alerts: bool = Field(
        False,
        description="May also read alerts' state on its routes (GET /v1/alerts/{dedup_key}); "
        "off by default, so a sender's leaked token reads nothing.",
    )

    @field_validator("tokens")
    @classmethod
    def _token_length(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(len(t) < 16 for t in value):
            raise ValueError("every token has at least 16 characters")
        if any(t != t.strip() or any(c.isspace() for c in t) for t in value):
            raise ValueError("a token has no spaces (presented tokens are trimmed, so it could never match)")
        return value

    @field_validator("token")
    @classmethod
    def _one_token(cls, value: str | None) -> str | None:
        if value is not None and (value != value.strip() or any(c.isspace() for c in value)):
            raise ValueError("a token has no spaces (presented tokens are trimmed, so it could never match)")
        return value

    @field_validator("hmac_keys")
    @classmethod
    def _key_length(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(len(k) < 32 for k in value):
            raise ValueError("every HMAC key has at least 32 characters")
        return value

    @property
    def all_tokens(self) -> tuple[str, ...]:
        return ((self.token,) if self.token else ()) + self.tokens


class RelayConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = 1
    default_route: str
    allow_unlisted_routing_keys: bool = Field(
        False, description="On /v2/enqueue, pass routing keys that no route names straight through."
    )
    callers: tuple[Caller, ...] = Field(min_length=1)
    credentials_secret: str | None = Field(
        None,
        description=(
            "secret:NAME in Secrets Manager holding callers' credentials: "
            '{"callers": {"<name>": {"tokens": [...], "hmac_keys": [...]}}}, merged with any given inline.'
        ),
    )
    routes: dict[str, Route] = Field(min_length=1)
    maintenance: tuple[Window, ...] = Field(
        (), description=("Maintenance windows and silences: triggers that match are recorded but not sent.")
    )

    @field_validator("version")
    @classmethod
    def _version(cls, value: int) -> int:
        if value != 1:
            raise ValueError("only version 1 is understood")
        return value

    @model_validator(mode="after")
    def _references(self) -> RelayConfig:
        problems = [
            f"routes.{name}: route names are lower-case letters, digits, '.', '_' or '-'"
            for name in self.routes
            if not ROUTE_NAME_RE.fullmatch(name)
        ]
        if self.default_route not in self.routes:
            problems.append(f"default_route: no route named {self.default_route!r}")
        seen: set[str] = set()
        names: set[str] = set()
        if self.credentials_secret is not None and not self.credentials_secret.startswith("secret:"):
            problems.append("credentials_secret: secret:NAME (a Secrets Manager secret)")
        for i, caller in enumerate(self.callers):
            for name in (*caller.routes, *([caller.default_route] if caller.default_route else [])):
                if name not in self.routes:
                    problems.append(f"callers.{i}.routes: no route named {name!r}")
            if caller.name in names:
                problems.append(f"callers.{i}.name: {caller.name!r} is used twice")
            names.add(caller.name)
            for token in caller.all_tokens:
                if token in seen:
                    problems.append(f"callers.{i}.tokens: the same token is given twice")
                seen.add(token)
            for key in caller.hmac_keys:
                if key in seen:
                    problems.append(f"callers.{i}.hmac_keys: the same key is given twice (or is also a token)")
                seen.add(key)
            credentials = caller.all_tokens or caller.hmac_keys
            if not credentials and self.credentials_secret is None:
                problems.append(f"callers.{i}: no credential (token, tokens or hmac_keys; or credentials_secret)")
            if caller.require_signature and not caller.hmac_keys and self.credentials_secret is None:
                problems.append(f"callers.{i}.require_signature: the caller has no hmac_keys")
        names = set()
        for i, window in enumerate(self.maintenance):
            if window.name in names:
                problems.append(f"maintenance.{i}.name: {window.name!r} is used twice")
            names.add(window.name)
            problems.extend(
                f"maintenance.{i}.routes: no route named {name!r}"
                for name in window.routes or ()
                if name not in self.routes
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def events_per_minute(self, routing_key: str) -> int | None:
        """The configured limit of a routing key (the lowest, if routes disagree), or None."""
        found = [route.limits[routing_key] for route in self.routes.values() if routing_key in route.limits]
        return min(found) if found else None

    def route_for_key(self, routing_key: str) -> str | None:
        """The first route that has ``routing_key`` among its destinations."""
        for name, route in self.routes.items():
            if routing_key in route.targets.values():
                return name
        return None


def load_document(text: str, origin: str = "configuration") -> Any:
    """A JSON or YAML document's data. JSON is read without loading the YAML parser, which a
    function's cold start then never pays for."""
    if text.lstrip().startswith("{"):
        try:
            return json.loads(text)
        except ValueError:
            pass  # YAML flow style, or broken: the YAML parser says which
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # str(exc) quotes the offending line, which may hold a token: keep only what and where.
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1} column {mark.column + 1}: " if mark is not None else ""
        raise ConfigError(
            f"{origin} is not valid YAML or JSON", [where + str(getattr(exc, "problem", None) or type(exc).__name__)]
        ) from None


def parse_config(text: str, origin: str = "configuration") -> RelayConfig:
    """Parse and validate a JSON or YAML document; errors name each wrong place."""
    raw = load_document(text, origin)
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin} must be a mapping at the top level")
    try:
        return RelayConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{origin} is invalid", validation_problems(exc)) from exc


@lru_cache(maxsize=8)
def _parse_cached(digest: str, text: str, origin: str) -> RelayConfig:
    del digest  # part of the cache key only
    return parse_config(text, origin)


def default_config(settings: Settings) -> RelayConfig:
    """The embedded one-route document used when no configuration source is named."""
    if not settings.token:
        raise ConfigError("no configuration: set PDRELAY_CONFIG, or PDRELAY_TOKEN for a local default")
    try:
        return RelayConfig.model_validate(
            {
                "default_route": "default",
                "callers": [{"name": "default", "token": settings.token}],
                "routes": {"default": {"routing_key": settings.routing_key or DEMO_ROUTING_KEY}},
            }
        )
    except ValidationError as exc:
        # callers.0.token: PDRELAY_TOKEN; routes.default...: PDRELAY_ROUTING_KEY (values never echoed)
        raise ConfigError("PDRELAY_TOKEN or PDRELAY_ROUTING_KEY is invalid", validation_problems(exc)) from exc


def read_source(source: str, max_age: int) -> str:
    """The raw document behind ``source``: ``ssm:/name``, ``secret:name`` or a file path, read at
    most once per ``max_age`` seconds in a process (with the process's own AWS clients)."""
    read_at, text = _FILES.get(source, (0.0, ""))
    if read_at and time.monotonic() - read_at < max_age:
        return text
    if source.startswith("ssm:"):
        text = _read_aws(source, lambda: aws.client("ssm").get_parameter(Name=source[4:], WithDecryption=True))
    elif source.startswith("secret:"):
        text = _read_aws(source, lambda: aws.client("secretsmanager").get_secret_value(SecretId=source[7:]))
    else:
        path = Path(source.removeprefix("file:"))
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read configuration file {path}", [exc.strerror or str(exc)]) from exc
    _FILES[source] = (time.monotonic(), text)
    return text


def _read_aws(source: str, call: Any) -> str:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        answer = call()
    except ClientError as exc:
        raise ConfigError(f"cannot read {source}", [str(exc.response.get("Error", {}).get("Code", "error"))]) from exc
    except BotoCoreError as exc:
        raise ConfigError(f"cannot read {source}", [type(exc).__name__]) from exc
    if "Parameter" in answer:
        return str(answer["Parameter"]["Value"])
    if "SecretString" not in answer:
        raise ConfigError(f"cannot read {source}", ["the secret has no string value"])
    return str(answer["SecretString"])


_FILES: dict[str, tuple[float, str]] = {}  # source -> (when read, monotonic; its text)


def clear_cache() -> None:
    _FILES.clear()
    _parse_cached.cache_clear()
    _with_credentials.cache_clear()


def load_config(settings: Settings, *, with_credentials: bool = True) -> RelayConfig:
    """The configuration; with the callers' credentials from Secrets Manager unless
    ``with_credentials`` is false (the dispatcher and sweeper need routes, not credentials, and
    may not read the secret)."""
    if not settings.config_source:
        return default_config(settings)
    text = read_source(settings.config_source, settings.config_max_age_seconds)
    digest = hashlib.sha256(text.encode()).hexdigest()
    config = _parse_cached(digest, text, settings.config_source)
    if config.credentials_secret is None or not with_credentials:
        return config
    secret = read_source(config.credentials_secret, settings.config_max_age_seconds)
    both = hashlib.sha256(digest.encode() + hashlib.sha256(secret.encode()).digest()).hexdigest()
    return _with_credentials(both, text, secret, settings.config_source)


@lru_cache(maxsize=8)
def _with_credentials(digest: str, text: str, secret: str, origin: str) -> RelayConfig:
    """The document with the callers' credentials from Secrets Manager added to any given inline."""
    del digest  # part of the cache key only
    where = "the credentials secret"
    try:
        doc = json.loads(secret)
    except ValueError:
        raise ConfigError(f"{where} is not JSON", ['{"callers": {"<caller name>": {"tokens": [...]}}}']) from None
    callers = doc.get("callers") if isinstance(doc, dict) else None
    if not isinstance(callers, dict):
        raise ConfigError(f"{where} is invalid", ['expected {"callers": {"<caller name>": {"tokens": [...]}}}'])
    raw = load_document(text)  # parsed and validated once already (parse_config)
    known = {str(c.get("name")) for c in raw["callers"]}
    problems = [f"callers.{name}: no caller of that name in the configuration" for name in callers if name not in known]
    for caller in raw["callers"]:
        given = callers.get(caller.get("name")) or {}
        if (
            not isinstance(given, dict)
            or set(given) - {"tokens", "hmac_keys"}
            or not all(isinstance(v, list) for v in given.values())
        ):
            problems.append(f"callers.{caller.get('name')}: only tokens and hmac_keys (lists of strings)")
            continue
        caller["tokens"] = [*(caller.get("tokens") or []), *given.get("tokens", [])]
        caller["hmac_keys"] = [*(caller.get("hmac_keys") or []), *given.get("hmac_keys", [])]
    if problems:
        raise ConfigError(f"{where} is invalid", problems)
    raw.pop("credentials_secret", None)
    result = parse_config(json.dumps(raw), f"{origin} with {where}")
    return result


def config_reader(settings: Settings) -> Callable[[], RelayConfig | None]:
    """The configuration for the dispatcher's and the sweep's policy, re-read per its cache age;
    None (no policy) when there is none or it cannot be read, which is logged."""

    def read() -> RelayConfig | None:
        try:
            return load_config(settings, with_credentials=False)
        except ConfigError as exc:
            from pdrelay.observability import logger

            logger.warning("no readable configuration: windows and storm control are off", extra={"error": str(exc)})
            return None

    return read
