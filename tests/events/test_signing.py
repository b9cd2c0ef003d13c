from __future__ import annotations

import time

import pytest

from sheen_pipeline.events.signing import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureError,
    signature,
    signed_headers,
    verify_webhook,
)

SECRET = "whsec-test-secret"
BODY = b'{"type": "build_completed"}'


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    expected = hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert signature(SECRET, 1700000000, BODY) == f"sha256={expected}"


def test_signed_request_verifies() -> None:
    verify_webhook(BODY, signed_headers(SECRET, BODY), SECRET)
    lowered = {k.lower(): v for k, v in signed_headers(SECRET, BODY).items()}
    verify_webhook(BODY, lowered, SECRET)  # header names are case-insensitive


def test_tampered_body_is_rejected() -> None:
    headers = signed_headers(SECRET, BODY)
    with pytest.raises(SignatureError, match="signature does not match"):
        verify_webhook(BODY.replace(b"completed", b"failed"), headers, SECRET)


def test_wrong_secret_is_rejected() -> None:
    with pytest.raises(SignatureError, match="signature does not match"):
        verify_webhook(BODY, signed_headers("other", BODY), SECRET)


@pytest.mark.parametrize("age_s", [301, -301, 86_400])
def test_replayed_or_future_timestamps_are_rejected(age_s: int) -> None:
    headers = signed_headers(SECRET, BODY, now=time.time() - age_s)
    with pytest.raises(SignatureError, match="outside the tolerance window"):
        verify_webhook(BODY, headers, SECRET)


def test_within_tolerance_is_accepted() -> None:
    verify_webhook(BODY, signed_headers(SECRET, BODY, now=time.time() - 290), SECRET)
    old = signed_headers(SECRET, BODY, now=time.time() - 1000)
    verify_webhook(BODY, old, SECRET, tolerance_s=2000)


@pytest.mark.parametrize("missing", [SIGNATURE_HEADER, TIMESTAMP_HEADER])
def test_missing_headers_are_rejected(missing: str) -> None:
    headers = signed_headers(SECRET, BODY)
    del headers[missing]
    with pytest.raises(SignatureError, match="missing"):
        verify_webhook(BODY, headers, SECRET)


def test_non_numeric_timestamp_is_rejected() -> None:
    headers = signed_headers(SECRET, BODY) | {TIMESTAMP_HEADER: "yesterday"}
    with pytest.raises(SignatureError, match="whole number"):
        verify_webhook(BODY, headers, SECRET)
