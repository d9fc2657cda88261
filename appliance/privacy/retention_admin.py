"""Changing retention and legal holds, for the command line and the web alike: checked,
audited (counts and settings only, never a caller's data), and refused in one line."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sqlalchemy.orm import Session

from appliance import audit
from appliance.admin import AdminError, get_account
from appliance.db.models import Account, Call
from appliance.privacy import retention


def policy(session: Session, account_id: int | None) -> tuple[Account, retention.Policy]:
    account = get_account(session, account_id)
    return account, retention.of(account)


def set_retention(
    session: Session, account_id: int | None, actor: str, **settings: Any
) -> retention.Policy:
    """Change some of an account's settings (the others stay): days or None per kind,
    call_expiry, legal_hold_days."""
    account, before = policy(session, account_id)
    try:
        after = retention.change(before, **settings)
    except retention.RetentionRefused as exc:
        raise AdminError(str(exc)) from None
    for name, value in asdict(after).items():
        setattr(account, name, value)
    detail = audit.change(asdict(before), asdict(after))
    if detail:
        audit.record(
            session, actor, "retention.set", str(account.id), detail=detail, account_id=account.id
        )
    return after


def hold_account(
    session: Session, account_id: int | None, days: int | None, actor: str
) -> retention.Policy:
    """Keep everything of the account younger than `days` (None releases the hold)."""
    return set_retention(session, account_id, actor, legal_hold_days=days)


def hold_call(session: Session, call: Call | None, held: bool, actor: str) -> Call:
    """Keep a call, its recording, transcript, analysis and conversions whatever the
    settings, until released."""
    if call is None:
        raise AdminError("no such call")
    if call.legal_hold != held:
        call.legal_hold = held
        audit.record(
            session,
            actor,
            "hold.call" if held else "hold.call.release",
            call.id,
            account_id=call.account_id,
        )
    return call


def summary(found: retention.Policy) -> list[tuple[str, str]]:
    """The settings as (what, how long) for people."""
    rows = [
        (label, retention.describe(getattr(found, name)))
        for name, label in retention.LABELS.items()
    ]
    rows.append(("expired calls", "anonymised" if found.call_expiry == "anonymise" else "deleted"))
    hold = found.legal_hold_days
    rows.append(("legal hold", "none" if hold is None else f"{hold} days"))
    return rows
