"""Words the code, the database and the Asterisk templates share: one owner for each.

A test checks that the database constraints, the CLI choices and the rendered dialplan use
exactly these values.
"""

from __future__ import annotations

import re
import secrets
from enum import StrEnum

CALL_ID = re.compile(r"[0-9a-f]{32}")


def new_call_id() -> str:
    """Call ids are random (128 bits): knowing one call's id tells nothing about another's."""
    return secrets.token_hex(16)


def is_call_id(text: str) -> bool:
    """Call ids are 32 lowercase hex digits: safe in URLs, file names and logs."""
    return CALL_ID.fullmatch(text) is not None


class Role(StrEnum):
    """What a user may do (appliance/access.py holds what each role is allowed).

    Owners and admins run the appliance, managers handle calls, analysts read everything of
    their account, client viewers read the calls of their client account."""

    OWNER = "owner"
    ADMIN = "admin"
    MANAGER = "manager"
    ANALYST = "analyst"
    CLIENT_VIEWER = "client_viewer"


class RecordingMode(StrEnum):
    """Whether a route's calls are recorded: from the start, never, or when asked (API)."""

    ALWAYS = "always"
    NEVER = "never"
    ON_DEMAND = "on_demand"


class RingStrategy(StrEnum):
    """How a route rings its targets: all at once, or one after another."""

    SIMULTANEOUS = "simultaneous"
    SEQUENTIAL = "sequential"


class TargetKind(StrEnum):
    """A route target: an E.164 number reached over a trunk, or a SIP endpoint by name."""

    NUMBER = "number"
    ENDPOINT = "endpoint"


def values(enum: type[StrEnum]) -> tuple[str, ...]:
    return tuple(member.value for member in enum)
