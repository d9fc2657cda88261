"""Webhook signatures, pure: HMAC-SHA256 over the timestamp and the body, so a receiver can
tell the request came from this appliance, unchanged, and recently (refuse old timestamps to
stop replays).

    X-Appliance-Timestamp: 1764435600
    X-Appliance-Signature: sha256=<hex of HMAC-SHA256(secret, "1764435600." + body)>
"""

from __future__ import annotations

import hashlib
import hmac

TOLERANCE = 300  # seconds a receiver should accept a timestamp either side of its clock


def signature(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signed: str, now: float) -> bool:
    """What a receiver does (and what the tests do)."""
    if not timestamp.isascii() or not timestamp.isdigit():
        return False
    if abs(now - int(timestamp)) > TOLERANCE or not signed.isascii():
        return False  # compare_digest takes str of ASCII only
    return hmac.compare_digest(signature(secret, int(timestamp), body), signed)
