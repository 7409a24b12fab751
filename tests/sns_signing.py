"""A stand-in for Amazon SNS's signing: a throwaway RSA key and certificate, made once per run.

Tests sign SNS envelopes with it and point ``cloudwatch.fetch_certificate`` at its certificate,
so signature checks run for real without talking to AWS.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from pdrelay.formats.cloudwatch import string_to_sign

CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-test0000000000000000.pem"


@cache
def _key_and_cert() -> tuple[rsa.RSAPrivateKey, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.test.invalid")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return key, cert.public_bytes(serialization.Encoding.PEM)


def certificate_pem() -> bytes:
    return _key_and_cert()[1]


def fetch(url: str) -> bytes:
    """What ``fetch_certificate`` returns in tests: our certificate, for our URL only."""
    if url != CERT_URL:
        raise AssertionError(f"unexpected certificate URL {url}")
    return certificate_pem()


def sign(doc: dict[str, Any], version: str = "1") -> dict[str, Any]:
    signed = {**doc, "SignatureVersion": version, "SigningCertURL": CERT_URL}
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()  # noqa: S303 - SNS v1 is SHA1withRSA
    signature = _key_and_cert()[0].sign(string_to_sign(signed), padding.PKCS1v15(), algorithm)
    signed["Signature"] = base64.b64encode(signature).decode()
    return signed
