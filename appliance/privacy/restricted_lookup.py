"""The restrict list as the call path reads it: the routing table's lists and whether a call's
caller is on its account's list. Blocking; imports nothing of the admin side, so the call
store can use it."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from appliance.db.models import RestrictedNumber
from appliance.privacy import restrict


def numbers(session: Session, account_id: int) -> set[str]:
    rows = select(RestrictedNumber.e164).where(RestrictedNumber.account_id == account_id)
    return set(session.scalars(rows))


def by_account(session: Session) -> dict[int, tuple[str, ...]]:
    """Every account's list, for the routing table."""
    rows = session.execute(
        select(RestrictedNumber.account_id, RestrictedNumber.e164).order_by(
            RestrictedNumber.account_id, RestrictedNumber.e164
        )
    )
    found: dict[int, list[str]] = {}
    for account_id, e164 in rows:
        found.setdefault(account_id, []).append(e164)
    return {account: tuple(e164s) for account, e164s in found.items()}


def caller_restricted(session: Session, account_id: int | None, caller: str | None) -> bool:
    """Whether this caller ID is on the account's list (the call's record is marked)."""
    if account_id is None or not caller:
        return False
    return restrict.is_restricted(caller, numbers(session, account_id))
