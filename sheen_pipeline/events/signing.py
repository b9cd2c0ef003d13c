"""HMAC-SHA256 signatures over "<timestamp>.<raw body>", for webhooks and signed ingress."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

EVENT_ID_HEADER = "X-Sheen-Event-Id"
TIMESTAMP_HEADER = "X-Sheen-Timestamp"
SIGNATURE_HEADER = "X-Sheen-Signature"


class SignatureError(ValueError):
    """A signed request (a webhook we sent, or a request to our ingress) whose signature or
    timestamp cannot be trusted."""


def signature(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def signed_headers(secret: str, body: bytes, now: float | None = None) -> dict[str, str]:
    timestamp = int(time.time() if now is None else now)
    return {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, body),
        "Content-Type": "application/json",
    }


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), None)


def verify_webhook(
    body: bytes,
    headers: Mapping[str, str],
    secret: str,
    tolerance_s: int = 300,
    now: float | None = None,
) -> None:
    """Raise SignatureError unless body and headers were signed with secret within
    tolerance_s of now (either way: a replayed old request and a future one are refused)."""
    raw_timestamp = _header(headers, TIMESTAMP_HEADER)
    sent = _header(headers, SIGNATURE_HEADER)
    if raw_timestamp is None or sent is None:
        raise SignatureError("missing signature or timestamp header")
    try:
        timestamp = int(raw_timestamp)
    except ValueError:
        raise SignatureError("timestamp is not a whole number of seconds") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        raise SignatureError("timestamp outside the tolerance window")
    if not hmac.compare_digest(signature(secret, timestamp, body), sent):
        raise SignatureError("signature does not match")
