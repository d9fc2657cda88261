"""The audit log: who did what, to what, from where. Entries are only ever added."""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping

from sqlalchemy.orm import Session

from appliance.db.models import AuditEntry

DETAIL_MAX = 500


def record(
    session: Session,
    actor: str,
    action: str,
    subject: str | None = None,
    *,
    client: str | None = None,
    detail: str | None = None,
    account_id: int | None = None,
) -> None:
    session.add(
        AuditEntry(
            actor=actor[:200],
            action=action[:40],
            subject=subject[:64] if subject else None,
            client=client[:64] if client else None,
            detail=detail[:DETAIL_MAX] if detail else None,
            account_id=account_id,
        )
    )


def change(before: Mapping[str, object], after: Mapping[str, object]) -> str:
    """An admin change as 'field: old -> new' for each field that changed."""
    return "; ".join(
        f"{key}: {before.get(key)!r} -> {after.get(key)!r}"
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    )


def cli_actor() -> str:
    """The person at the box: the login behind sudo when there is one, else this user."""
    name = os.environ.get("SUDO_USER") or _login()
    return f"cli:{name}"


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid{os.getuid()}"
