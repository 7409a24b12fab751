"""Credentials taken out of what pdrelay sends to PagerDuty.

Monitors paste whatever they hold into alerts: webhook headers, connection strings, environment
dumps. Before an alert is queued, :func:`scrub_details` rewrites its ``custom_details`` and
:func:`scrub_text` its summary. Both are pure functions; the input is never changed.

Two kinds of rule, and nothing else (a false positive hides what a responder needs):

**Key names.** A dict entry whose key names a credential loses its value: a string becomes
:data:`REDACTED`, and inside a dict or list value every string leaf does; numbers, booleans and null
stay (they say "set / not set", not the secret). A key is split into words at ``_ - . space`` and
at camelCase humps, lower-cased, trailing qualifiers (``value``, ``hash``, ``b64``, ``header``,
digits, ...) dropped; it names a credential when its last word is one of password(s), passwd, pwd,
pass, passphrase, secret(s), token, authorization, auth, credential(s), cookie(s), signature, dsn
(or a glued spelling ending in password, passwd, token, secret, apikey or credential(s), such as
``accesstoken``), or its last two words are api key, private key, access key, secret key, session
id or client secret. So ``x-api-key``, ``apiToken``, ``AWS_SECRET_ACCESS_KEY``, ``Set-Cookie`` and
``db_password_2`` are credentials; ``author``, ``authority``, ``compass``, ``passenger``,
``tokenizer_version``, ``token_expires_at``, ``secret_arn``, ``auth_method``, ``max_tokens`` and
``pass_rate`` are not (the credential word must end the key). Kubernetes-style pairs
``{"name": "DB_PASSWORD", "value": "..."}`` lose the ``value`` the same way.

**Values**, in every string under any key, replaced inside the string so the rest stays readable:
PEM private-key blocks (to the END line, or to the end of the string when it was cut off);
``scheme://user:password@host`` (user and host kept); ``key=value`` text, query strings and
``"key": "value"`` JSON text whose key names a credential as above (``Password=...;``,
``?access_token=...``, ``pwd={...}``; a bare ``pass=`` followed only by digits is a count and stays);
a 40-character AWS secret after an ``aws_secret_access_key`` / ``SecretAccessKey`` label (``:`` or
``=``); ``Bearer <token>`` (a token of 8+ characters with a digit or an inner capital: "Bearer token
expired" stays) and ``Basic <base64>`` (only when it decodes to printable ``user:password``); and
token shapes: AWS key ids (AKIA/ASIA + 16), GitHub (ghp_, gho_, ghu_, ghs_, ghr_, github_pat_),
Slack (xoxa-, xoxb-, xoxp-, xoxr-, xoxs-), Stripe (sk_/rk_ live and test), Google API keys
(AIza + 35) and JWTs (three base64url parts, the first starting ``eyJ``).

The count returned is the number of replacements: one per string leaf under a credential key, one
per credential found inside a string. Scrubbing is idempotent: a second pass finds nothing.

Bounds: every pattern runs in linear time (possessive or bounded quantifiers, no nesting). Strings
longer than :data:`SCAN_LIMIT` characters are scanned up to the limit (cut back to a whitespace when
one is near) and the unscanned rest is dropped behind :data:`UNSCANNED_MARKER` (one count), since
nothing unscanned may leave. Containers nested deeper than :data:`MAX_DEPTH` levels below
``custom_details`` become :data:`DEPTH_MARKER` (one count). Dict keys are kept as they are, including
non-string keys. Replacements are longer than short secrets: callers with a length limit (the
summary's 1024) truncate after scrubbing.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

REDACTED = "[redacted by pdrelay]"
DEPTH_MARKER = "[nested too deep: removed by pdrelay]"
UNSCANNED_MARKER = " …[unscanned remainder removed by pdrelay]"
MAX_DEPTH = 64
SCAN_LIMIT = 256 * 1024
_CUT_SLACK = 1024  # how far back from SCAN_LIMIT a whitespace is looked for

# --- key names ---------------------------------------------------------------------------------

_KEY_WORD = re.compile(r"[A-Z]{1,64}(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
_CREDENTIAL_WORDS = frozenset(
    {
        "password",
        "passwords",
        "passwd",
        "pwd",
        "pass",
        "passphrase",
        "secret",
        "secrets",
        "token",
        "authorization",
        "auth",
        "credential",
        "credentials",
        "cookie",
        "cookies",
        "signature",
        "dsn",
        "apikey",
        "apikeys",
        "privatekey",
        "accesskey",
        "secretkey",
        "sessionid",
        "setcookie",
        "xapikey",
    }
)
_GLUED_ENDINGS = ("password", "passwd", "token", "secret", "apikey", "credential", "credentials")
_CREDENTIAL_PAIRS = frozenset(
    {
        ("api", "key"),
        ("api", "keys"),
        ("private", "key"),
        ("access", "key"),
        ("secret", "key"),
        ("session", "id"),
        ("client", "secret"),
    }
)
_QUALIFIERS = frozenset(
    {
        "value",
        "val",
        "string",
        "str",
        "text",
        "raw",
        "plain",
        "plaintext",
        "hash",
        "hashed",
        "b64",
        "base64",
        "encoded",
        "enc",
        "hex",
        "data",
        "header",
        "hdr",
    }
)
_KEY_TAIL = 128  # the credential word ends the key, so only its end is read


@lru_cache(maxsize=4096)
def _credential_word(key: str) -> str | None:
    """The credential word(s) ``key`` ends with, lower-case, or None."""
    words: list[str] = [w.lower() for w in _KEY_WORD.findall(key[-_KEY_TAIL:])]
    while words and (words[-1].isdigit() or words[-1] in _QUALIFIERS):
        words.pop()
    if not words:
        return None
    last = words[-1]
    if last in _CREDENTIAL_WORDS or last.endswith(_GLUED_ENDINGS):
        return last
    if len(words) > 1 and (words[-2], last) in _CREDENTIAL_PAIRS:
        return f"{words[-2]} {last}"
    return None


def is_credential_key(key: str) -> bool:
    """Whether a dict key (or a ``key=`` in text) names a credential, by the rules above."""
    return _credential_word(key) is not None


# --- values ------------------------------------------------------------------------------------

_Decide = Callable[[re.Match[str]], str | None]

_PEM = re.compile(
    r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----"
    r".*?(?:-----END [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----|\Z)",
    re.S,
)
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]{0,30}://[^\s:/?#@]{0,256}+:)([^\s/?#]{1,1024})@")
_AWS_SECRET = re.compile(
    r"(?i)((?<![A-Za-z0-9])(?:aws[_.-]?)?secret[_.-]?access[_.-]?key[\"']?\s*[:=]\s*[\"']?)"
    r"([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"
)
_KV_BARE = re.compile(
    r"(?<![A-Za-z0-9_.-])([A-Za-z][A-Za-z0-9_.-]{0,63}+)(\s*=\s*)"
    r"((?i:bearer|basic|token|digest)\s+)?"
    r"(\"[^\"\n]*+\"|'[^'\n]*+'|\{[^}\n]*+\}|(?:[^\s;&\"'<>)\]}]|&(?![A-Za-z][A-Za-z0-9_.-]{0,63}=))++)"
)
_KV_QUOTED = re.compile(r"([\"'])([A-Za-z][A-Za-z0-9_. -]{0,63}+)\1(\s*:\s*)(\"(?:[^\"\\\n]|\\.)*+\"|'[^'\n]*+')")
_SCHEME = re.compile(r"(?i)(?<![A-Za-z0-9])(bearer|basic)(\s+)([A-Za-z0-9._~+/-]++=*+)")
_SHAPES = re.compile(
    r"(?<![A-Za-z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])"
    r"|(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{30,}+|github_pat_[A-Za-z0-9_]{20,}+)"
    r"|(?<![A-Za-z0-9])xox[abprs]-[A-Za-z0-9-]{10,}+"
    r"|(?<![A-Za-z0-9])[rs]k_(?:live|test)_[A-Za-z0-9]{16,}+"
    r"|(?<![A-Za-z0-9_-])AIza[A-Za-z0-9_-]{35}(?![A-Za-z0-9_-])"
    r"|(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{5,}+\.[A-Za-z0-9_-]{2,}+\.[A-Za-z0-9_-]*+"
)


def _already(m: re.Match[str], group: int) -> bool:
    """The credential position already holds a redaction (a second pass, or an earlier rule)."""
    start = m.start(group)
    text = m.string
    return text.startswith(REDACTED, start) or text.startswith(REDACTED, start + 1)


def _pem(m: re.Match[str]) -> str | None:
    return REDACTED


def _url_password(m: re.Match[str]) -> str | None:
    return f"{m.group(1)}{REDACTED}@"


def _aws_secret(m: re.Match[str]) -> str | None:
    return m.group(1) + REDACTED


def _quoted(value: str) -> tuple[str, str, str]:
    """(opening, content, closing) of a value that may be quoted or braced."""
    if len(value) >= 2 and value[0] + value[-1] in ('""', "''", "{}"):
        return value[0], value[1:-1], value[-1]
    return "", value, ""


def _kv_value(key: str, m: re.Match[str], group: int) -> str | None:
    word = _credential_word(key)
    if word is None or _already(m, group):
        return None
    opening, content, closing = _quoted(m.group(group))
    if not content or (word == "pass" and content.isdigit()):
        return None
    return f"{opening}{REDACTED}{closing}"


def _kv_bare(m: re.Match[str]) -> str | None:
    value = _kv_value(m.group(1), m, 4)
    return None if value is None else f"{m.group(1)}{m.group(2)}{m.group(3) or ''}{value}"


def _kv_quoted(m: re.Match[str]) -> str | None:
    value = _kv_value(m.group(2), m, 4)
    return None if value is None else f"{m.group(1)}{m.group(2)}{m.group(1)}{m.group(3)}{value}"


def _looks_like_basic(credential: str) -> bool:
    try:
        decoded = base64.b64decode(credential + "=" * (-len(credential) % 4), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return False
    return ":" in decoded and decoded.isprintable()


def _looks_like_bearer(credential: str) -> bool:
    return len(credential) >= 8 and (any(c.isdigit() for c in credential) or any(c.isupper() for c in credential[1:]))


def _scheme(m: re.Match[str]) -> str | None:
    scheme, space, credential = m.group(1), m.group(2), m.group(3)
    found = _looks_like_basic(credential) if scheme.lower() == "basic" else _looks_like_bearer(credential)
    return f"{scheme}{space}{REDACTED}" if found else None


def _shape(m: re.Match[str]) -> str | None:
    return REDACTED


_RULES: tuple[tuple[re.Pattern[str], _Decide], ...] = (
    (_PEM, _pem),
    (_URL_PASSWORD, _url_password),
    (_AWS_SECRET, _aws_secret),
    (_KV_QUOTED, _kv_quoted),
    (_KV_BARE, _kv_bare),
    (_SCHEME, _scheme),
    (_SHAPES, _shape),
)


def _apply(text: str, pattern: re.Pattern[str], decide: _Decide) -> tuple[str, int]:
    count = 0

    def replace(m: re.Match[str]) -> str:
        nonlocal count
        out = decide(m)
        if out is None:
            return m.group(0)
        count += 1
        return out

    return pattern.sub(replace, text), count


def _scan(text: str) -> tuple[str, int]:
    total = 0
    for pattern, decide in _RULES:
        text, found = _apply(text, pattern, decide)
        total += found
    return text, total


def scrub_text(text: str) -> tuple[str, int]:
    """``text`` with credentials found by the value rules replaced by :data:`REDACTED`, and how many."""
    if len(text) <= SCAN_LIMIT:
        return _scan(text)
    head = text[:SCAN_LIMIT]
    space = max(head.rfind(" "), head.rfind("\n"), head.rfind("\t"))
    if space >= SCAN_LIMIT - _CUT_SLACK:
        head = head[:space]
    scanned, found = _scan(head)
    return scanned + UNSCANNED_MARKER, found + 1


# --- documents ---------------------------------------------------------------------------------

_NAME_FIELDS = frozenset({"name", "key", "header"})
_VALUE_FIELDS = frozenset({"value", "values"})


def _names_a_credential(doc: dict[Any, Any]) -> bool:
    """A ``{"name": "DB_PASSWORD", "value": ...}`` pair (Kubernetes env, header lists)."""
    return any(
        isinstance(k, str) and k.lower() in _NAME_FIELDS and isinstance(v, str) and is_credential_key(v)
        for k, v in doc.items()
    )


def _scrub(value: Any, depth: int, hide: bool) -> tuple[Any, int]:
    if isinstance(value, str):
        if hide:
            return (value, 0) if value in ("", REDACTED) else (REDACTED, 1)
        return scrub_text(value)
    if isinstance(value, dict):
        if depth > MAX_DEPTH and value:
            return DEPTH_MARKER, 1
        out: dict[Any, Any] = {}
        total = 0
        paired = _names_a_credential(value)
        for key, item in value.items():
            by_key = isinstance(key, str) and (is_credential_key(key) or (paired and key.lower() in _VALUE_FIELDS))
            out[key], found = _scrub(item, depth + 1, hide or by_key)
            total += found
        return out, total
    if isinstance(value, list | tuple):
        if depth > MAX_DEPTH and value:
            return DEPTH_MARKER, 1
        items = []
        total = 0
        for item in value:
            clean, found = _scrub(item, depth + 1, hide)
            items.append(clean)
            total += found
        return (tuple(items) if isinstance(value, tuple) else items), total
    return value, 0


def scrub_details(details: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """A copy of ``details`` without credentials, and how many values were redacted."""
    clean, found = _scrub(details, 0, False)
    return clean, found
