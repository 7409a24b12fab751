"""Caller authentication: a bearer token, basic auth whose password is the token, or (for senders
that can set neither header, such as Sentry, Pingdom or Splunk) a ``token`` query parameter.

SNS sends basic auth only after a 401 that asks for it, so 401 answers carry
``WWW-Authenticate: Basic``. The query parameter is never logged (nothing logs the query string).

Every configured token is compared, in constant time, whatever matched first, so timing says
nothing about which token was close. Nothing here logs a credential.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping

from pdrelay.config import Caller, RelayConfig
from pdrelay.errors import Unauthorized


def presented_token(headers: Mapping[str, str]) -> str | None:
    value = headers.get("authorization", "").strip()
    scheme, _, credential = value.partition(" ")
    scheme = scheme.lower()
    credential = credential.strip()
    if scheme == "bearer" and credential:
        return credential
    if scheme == "basic" and credential:
        try:
            decoded = base64.b64decode(credential, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        _user, sep, password = decoded.partition(":")
        return password if sep and password else None
    return None


def authenticate(config: RelayConfig, headers: Mapping[str, str],
                 query: Mapping[str, str] | None = None) -> Caller:
    token = presented_token(headers) or ((query or {}).get("token") or "").strip() or None
    if token is None:
        raise Unauthorized(
            "missing credentials",
            ["send 'Authorization: Bearer <token>', basic auth with the token as the password, "
             "or (for senders that cannot set headers) ?token=<token> in the URL"],
        )
    given = token.encode()
    match: Caller | None = None
    for caller in config.callers:
        if hmac.compare_digest(given, caller.token.encode()) and match is None:
            match = caller
    if match is None:
        raise Unauthorized("invalid credentials")
    return match
