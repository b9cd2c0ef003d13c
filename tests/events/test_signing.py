"""Standard Webhooks signatures: ours verify with the `standardwebhooks` library unchanged, and
ours verify what the library signs."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook

from sheen_pipeline.events.signing import (
    ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureError,
    signed_headers,
    verify_webhook,
)

SECRET = "whsec_" + base64.b64encode(b"a test key of 24 bytes!!").decode()
PLAIN = "a-plain-shared-secret"
BODY = b'{"type": "build_completed"}'


@pytest.mark.parametrize(("secret", "key"), [(SECRET, SECRET), (PLAIN, PLAIN.encode())])
def test_the_standardwebhooks_library_verifies_our_signatures(
    secret: str, key: str | bytes
) -> None:
    headers = signed_headers(secret, "msg_1", BODY)
    assert Webhook(key).verify(BODY, headers) == json.loads(BODY)


def test_we_verify_what_the_library_signs() -> None:
    now = datetime.now(UTC)
    library_signature = Webhook(SECRET).sign("msg_2", now, BODY.decode())
    headers = {
        ID_HEADER: "msg_2",
        TIMESTAMP_HEADER: str(int(now.timestamp())),
        SIGNATURE_HEADER: f"v1,bm90IHRoaXMgb25l {library_signature}",  # any one may match
    }
    assert verify_webhook(BODY, headers, SECRET) == "msg_2"
    upper = {k.upper(): v for k, v in headers.items()}
    assert verify_webhook(BODY, upper, SECRET) == "msg_2"  # header names are case-insensitive


def test_tampered_body_id_or_secret_is_refused() -> None:
    headers = signed_headers(SECRET, "msg_3", BODY)
    with pytest.raises(SignatureError, match="signature does not match"):
        verify_webhook(BODY.replace(b"completed", b"failed"), headers, SECRET)
    with pytest.raises(SignatureError, match="signature does not match"):
        verify_webhook(BODY, headers | {ID_HEADER: "msg_4"}, SECRET)
    with pytest.raises(SignatureError, match="signature does not match"):
        verify_webhook(BODY, signed_headers(PLAIN, "msg_3", BODY), SECRET)


@pytest.mark.parametrize("age_s", [301, -301])
def test_stale_or_future_timestamps_are_refused(age_s: int) -> None:
    headers = signed_headers(SECRET, "msg_5", BODY, now=time.time() - age_s)
    with pytest.raises(SignatureError, match="outside the tolerance window"):
        verify_webhook(BODY, headers, SECRET)


def test_tolerance_is_configurable() -> None:
    assert verify_webhook(BODY, signed_headers(SECRET, "m", BODY, now=time.time() - 290), SECRET)
    old = signed_headers(SECRET, "m", BODY, now=time.time() - 1000)
    assert verify_webhook(BODY, old, SECRET, tolerance_s=2000) == "m"


@pytest.mark.parametrize("missing", [ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER])
def test_missing_headers_are_refused(missing: str) -> None:
    headers = signed_headers(SECRET, "msg_6", BODY)
    del headers[missing]
    with pytest.raises(SignatureError, match="missing"):
        verify_webhook(BODY, headers, SECRET)


def test_garbage_timestamp_is_refused() -> None:
    headers = signed_headers(SECRET, "msg_7", BODY) | {TIMESTAMP_HEADER: "yesterday"}
    with pytest.raises(SignatureError, match="whole number"):
        verify_webhook(BODY, headers, SECRET)
