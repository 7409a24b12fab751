"""Callers, credentials and requests for the tests of the edge (who gets in, how often, with what):
shared by the unit tests of ``pdrelay.ingest`` and the integration tests over the ingest handler.

Two configurations: ``local_doc`` (one route, one caller with an inline token) and ``signers_doc``
(two routes; 'local' may send anywhere, 'a' signs and may send only to 'ops', 'b' must sign and may
send only to 'db'). ``call`` sends a request through an ingest handler as API Gateway would.
"""

from __future__ import annotations

import base64
import copy
import json
import time
from collections.abc import Callable
from typing import Any

from pdrelay.ingest.auth import sign
from pdrelay.local.apigw import api_gateway_event
from tests.conftest import load_event, unique

KEY = "EDGER0UT1NGKEY000000000000000001"
OTHER_KEY = "EDGER0UT1NGKEY000000000000000002"
INLINE = "inline-token-for-local-use-0001"
HMAC_A = "hmac-key-of-signer-a-for-edge-tests-00001"
HMAC_B = "hmac-key-of-signer-b-for-edge-tests-00002"
SM_TOKEN = "token-kept-in-secrets-manager-01"
ROTATED_OLD, ROTATED_NEW = "secret-token-from-sm-old-000001", "secret-token-from-sm-new-000002"
HMAC_KEY = "hmac-key-kept-in-secrets-manager-000000001"
LATIN1_JUNK = "\u00e9\u00ff\u00b2"  # what a UTF-8 or Latin-1 byte in a header decodes to


def local_doc(**extra: Any) -> dict[str, Any]:
    """One route, 'ops'; one caller, 'local', with an inline token."""
    return {
        "default_route": "ops",
        "routes": {"ops": {"routing_key": KEY}},
        "callers": [{"name": "local", "token": INLINE}],
        **extra,
    }


def signers_doc(**extra: Any) -> dict[str, Any]:
    """Two routes; 'local' may send anywhere, 'a' (signs) only to 'ops', 'b' (signs) only to 'db'."""
    return {
        "default_route": "ops",
        "routes": {"ops": {"routing_key": KEY}, "db": {"routing_key": OTHER_KEY}},
        "callers": [
            {"name": "local", "token": INLINE},
            {"name": "a", "hmac_keys": [HMAC_A], "routes": ["ops"]},
            {"name": "b", "hmac_keys": [HMAC_B], "routes": ["db"], "require_signature": True},
        ],
        **extra,
    }


def call(
    ingest: Callable[[dict[str, Any]], dict[str, Any]],
    body: bytes,
    headers: dict[str, str],
    path: str = "/v1/alerts/alertmanager",
    method: str = "POST",
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Status, JSON answer and headers of one request through the ingest handler."""
    answer = ingest(api_gateway_event(method, path, {"content-type": "application/json", **headers}, body))
    return answer["statusCode"], json.loads(answer["body"]), answer.get("headers") or {}


def firing(fingerprint: str | None = None) -> bytes:
    """The Alertmanager firing sample, with a fingerprint of its own unless one is given."""
    body = copy.deepcopy(load_event("formats/alertmanager/firing.json"))
    body["alerts"][0]["fingerprint"] = fingerprint or unique("fp")
    return json.dumps(body).encode()


def signed(body: bytes, key: str, stamp: int | None = None) -> dict[str, str]:
    """pdrelay's signature headers for ``body``, signed with ``key`` now (or at ``stamp``)."""
    stamp = int(time.time()) if stamp is None else stamp
    return {"x-pdrelay-timestamp": str(stamp), "x-pdrelay-signature": sign(key, stamp, body)}


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def basic(userinfo: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(userinfo.encode()).decode()}
