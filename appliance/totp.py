"""Time-based one-time codes (RFC 6238, as authenticator apps make them) for the second step
of signing in."""

from __future__ import annotations

import datetime as dt
import re

import pyotp

ISSUER = "Call tracking appliance"
SECRET = re.compile(r"[A-Z2-7]{32}")
CODE = re.compile(r"[0-9]{6}")
WINDOW = 1  # a code of the step before or after still counts (clocks drift)


def new_secret() -> str:
    return pyotp.random_base32(32)


def valid_secret(secret: str) -> bool:
    return bool(SECRET.fullmatch(secret))


def setup_uri(secret: str, username: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)


def matching_step(secret: str, code: str, now: dt.datetime) -> int | None:
    """The time step whose code `code` is (within WINDOW of now), or None."""
    code = code.strip().replace(" ", "")
    if not CODE.fullmatch(code):
        return None
    generator = pyotp.TOTP(secret)
    step = int(now.timestamp()) // generator.interval
    for candidate in range(step - WINDOW, step + WINDOW + 1):
        if pyotp.utils.strings_equal(generator.generate_otp(candidate), code):
            return candidate
    return None
