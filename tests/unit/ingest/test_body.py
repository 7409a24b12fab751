"""Request bodies before any format reads them: the raw size limit first, gzip inflated within a
bound, content types that cannot be JSON refused, strings and keys over the limit named by place,
and JSON that is too big, too deep or half an emoji handled: each a clear 4xx, never an exception."""

from __future__ import annotations

import gzip
import json

import pytest

from pdrelay.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from pdrelay.ingest.body import MAX_DEPTH, decode_json, inflate, readable_body
from pdrelay.ingest.request import IncomingRequest
from pdrelay.models import utcnow
from pdrelay.settings import Settings

SETTINGS = Settings.from_env({"PDRELAY_MAX_INFLATED_BYTES": "10000", "PDRELAY_MAX_BODY_BYTES": "5000"})


def request(body: bytes, **headers: str) -> IncomingRequest:
    return IncomingRequest(
        body=body, request_id="r", received_at=utcnow(), headers={k.replace("_", "-"): v for k, v in headers.items()}
    )


def test_the_raw_body_limit_comes_before_anything_else() -> None:
    with pytest.raises(PayloadTooLarge, match="body is 5001 bytes; the limit is 5000 bytes"):
        readable_body(request(b"x" * 5001, content_encoding="gzip"), SETTINGS)


def test_gzip_bodies_are_inflated_and_a_bomb_stops_at_the_bound() -> None:
    doc = {"alerts": ["x" * 50] * 20}
    plain = json.dumps(doc).encode()
    got = readable_body(request(gzip.compress(plain), content_encoding="gzip"), SETTINGS)
    assert json.loads(got.body) == doc
    bomb = gzip.compress(b" " * 50_000_000)  # 49 KB that inflates to 50 MB
    assert len(bomb) < 100_000
    with pytest.raises(PayloadTooLarge, match="inflates past 10000 bytes"):
        inflate(bomb, 10_000)
    with pytest.raises(BadRequest, match="not valid gzip"):
        readable_body(request(b"not gzip at all", content_encoding="gzip"), SETTINGS)
    with pytest.raises(BadRequest, match="not valid gzip"):
        readable_body(request(gzip.compress(plain)[:-12], content_encoding="gzip"), SETTINGS)


@pytest.mark.parametrize(
    ("content_type", "encoding", "refused"),
    [
        ("application/json", "", False),
        ("text/plain; charset=UTF-8", "", False),  # SNS
        ("application/x-www-form-urlencoded", "", False),  # curl without -H
        ("", "", False),
        ("application/vnd.alert+json", "identity", False),
        ("multipart/form-data; boundary=x", "", True),
        ("application/xml", "", True),
        ("application/atom+xml", "", True),
        ("text/html", "", True),
        ("application/json", "br", True),
        ("application/json", "deflate", True),
    ],
)
def test_content_types_that_cannot_be_json_are_a_415(content_type: str, encoding: str, refused: bool) -> None:
    incoming = request(b"{}", content_type=content_type, content_encoding=encoding)
    if refused:
        with pytest.raises(UnsupportedMediaType):
            readable_body(incoming, SETTINGS)
    else:
        assert readable_body(incoming, SETTINGS).body == b"{}"


def test_strings_and_keys_over_the_limit_are_refused_with_their_place() -> None:
    with pytest.raises(BadRequest) as refused:
        decode_json(json.dumps({"alerts": [{"annotations": {"description": "d" * 101}}]}).encode(), 100)
    assert refused.value.message == "a string is too long"
    assert refused.value.problems == ["alerts[0].annotations.description: 101 characters; the limit is 100"]
    with pytest.raises(BadRequest, match="a key is too long"):
        decode_json(json.dumps({"k" * 101: 1}).encode(), 100)
    assert decode_json(json.dumps({"ok": "d" * 100}).encode(), 100) == {"ok": "d" * 100}


def test_an_integer_of_thousands_of_digits_is_a_400() -> None:
    with pytest.raises(BadRequest, match="malformed JSON"):
        decode_json(('{"n": ' + "9" * 5000 + "}").encode())


def test_deep_nesting_is_a_400_before_anything_else() -> None:
    deep = "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)
    with pytest.raises(BadRequest, match="nested too deeply"):
        decode_json(deep.encode())
    with pytest.raises(BadRequest, match="malformed JSON"):
        decode_json(("[" * 100_000).encode())


def test_half_an_emoji_becomes_a_replacement_character() -> None:
    doc = decode_json(b'{"summary": "disk \\ud83d full", "ok": "\\ud83d\\ude00"}')
    assert doc == {"summary": "disk \ufffd full", "ok": "\U0001f600"}


def test_a_gzip_body_of_several_members_is_inflated_whole() -> None:
    plain = json.dumps({"alerts": [{"status": "firing", "labels": {"alertname": "x"}}]}).encode()
    half = len(plain) // 2
    assert inflate(gzip.compress(plain[:half]) + gzip.compress(plain[half:]), 10_000) == plain
