"""The restrict list as admins edit it: add, list, remove (audited). Blocking: the event loop
calls in via to_thread; the call path reads the list through restricted_lookup.

The audit entries (restrict.add, restrict.remove) say who changed which account's list and
when, but not the number: the audit log outlives an erasure, and the list's own row (with its
created_at) is the evidence that the request was honoured from that moment."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from appliance import audit
from appliance.admin import AdminError, get_account
from appliance.db.models import RestrictedNumber
from appliance.privacy import restrict
from appliance.privacy.restricted_lookup import numbers


@dataclass(frozen=True)
class Restricted:
    account_id: int
    e164: str
    created_at: dt.datetime


def add(session: Session, account_id: int, raw: str, actor: str, client: str | None = None) -> str:
    """Put a number on an account's list; its E.164 form. Already listed: refused."""
    account = get_account(session, account_id)
    try:
        e164 = restrict.normalised(raw)
    except restrict.InvalidNumber as exc:
        raise AdminError(str(exc)) from None
    if e164 in numbers(session, account.id):
        raise AdminError(f"{e164} is already restricted for account {account.id}")
    session.add(RestrictedNumber(account_id=account.id, e164=e164))
    audit.record(
        session, actor, "restrict.add", str(account.id), client=client, account_id=account.id
    )
    return e164


def remove(
    session: Session, account_id: int, raw: str, actor: str, client: str | None = None
) -> str:
    account = get_account(session, account_id)
    try:
        e164 = restrict.normalised(raw)
    except restrict.InvalidNumber as exc:
        raise AdminError(str(exc)) from None
    row = session.scalar(
        select(RestrictedNumber).where(
            RestrictedNumber.account_id == account.id, RestrictedNumber.e164 == e164
        )
    )
    if row is None:
        raise AdminError(f"{e164} is not restricted for account {account.id}")
    session.delete(row)
    audit.record(
        session, actor, "restrict.remove", str(account.id), client=client, account_id=account.id
    )
    return e164


def listed(session: Session, account_ids: list[int] | None = None) -> list[Restricted]:
    """The list, by account then number (None: every account's)."""
    query = select(RestrictedNumber).order_by(RestrictedNumber.account_id, RestrictedNumber.e164)
    if account_ids is not None:
        query = query.where(RestrictedNumber.account_id.in_(account_ids))
    return [Restricted(r.account_id, r.e164, r.created_at) for r in session.scalars(query)]
