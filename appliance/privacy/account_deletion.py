"""Deleting a client account: disabled at once, erased after a grace period that an admin can
cancel until it ends.

Disabled means: its users cannot sign in (sessions, API tokens and mailed links stop working),
its websites show their own numbers, its outbox holds, and its calls are still connected but
no longer recorded. Erased means: its recordings crypto-erased one by one, then every row of the
account (calls included) removed in one transaction, the database's free pages and WAL cleared.
An erasure cut short is taken up again by the next run: each step is idempotent."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from appliance import audit
from appliance.admin import AdminError
from appliance.db.forget import forget
from appliance.db.models import Account, Base, Call, Lead, Recording, User, Visit, utcnow
from appliance.recordings.vault import RecordingNotFound, RecordingVault

GRACE_DAYS = 30
MOST_GRACE_DAYS = 365
CALL_LONGEST = dt.timedelta(hours=4)  # a call row without an end older than this is stale

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pending:
    account_id: int
    name: str
    requested_at: dt.datetime
    erase_after: dt.datetime


def request(
    session: Session,
    account_id: int,
    actor: str,
    grace_days: int = GRACE_DAYS,
    now: dt.datetime | None = None,
) -> Pending:
    """Disable the client account now and set it to be erased after `grace_days`."""
    if not 1 <= grace_days <= MOST_GRACE_DAYS:
        raise AdminError(f"the grace period is 1 to {MOST_GRACE_DAYS} days")
    account = _client(session, account_id)
    if account.erase_after is not None:
        raise AdminError(
            f"account {account_id} is already to be erased after {_day(account.erase_after)}"
        )
    if held := _hold(session, account):
        raise AdminError(f"account {account_id} is under legal hold ({held}): release it first")
    moment = now or utcnow()
    account.delete_requested_at = moment
    account.erase_after = moment + dt.timedelta(days=grace_days)
    audit.record(session, actor, "account.delete", str(account_id), account_id=account_id,
                 detail=f"erased after {_day(account.erase_after)}")  # fmt: skip
    return _pending(account)


def cancel(session: Session, account_id: int, actor: str) -> None:
    """Enable the account again: nothing of it was erased yet."""
    account = _client(session, account_id)
    if account.erase_after is None:
        raise AdminError(f"account {account_id} is not to be deleted")
    account.delete_requested_at = account.erase_after = None
    audit.record(session, actor, "account.delete.cancel", str(account_id), account_id=account_id)


def pending(session: Session, account_ids: frozenset[int] | None = None) -> list[Pending]:
    query = select(Account).where(Account.erase_after.is_not(None)).order_by(Account.erase_after)
    if account_ids is not None:
        query = query.where(Account.id.in_(account_ids))
    return [_pending(a) for a in session.scalars(query)]


def due(session: Session, now: dt.datetime) -> list[int]:
    return list(
        session.scalars(
            select(Account.id).where(Account.erase_after.is_not(None), Account.erase_after <= now)
        )
    )


def erase(
    sessions: sessionmaker[Session], vault: RecordingVault, account_id: int
) -> dict[str, int]:
    """Erase everything of the account; how many of each kind went. Nothing while a legal
    hold was placed during the grace period, or while one of its calls is going on (its
    record would be written again as the call ends): the next run tries again."""
    actor = "system:account-deletion"
    with sessions() as session:
        account = session.get(Account, account_id)
        if account is None or account.erase_after is None:
            return {}
        if held := _hold(session, account):
            log.warning("account %d is under legal hold (%s): not erased", account_id, held)
            return {}
        if _calls_going_on(session, account_id):
            log.info("account %d has a call going on: erased at the next run", account_id)
            return {}
        recorded = list(
            session.scalars(
                select(Recording.call_id).join(Call).where(Call.account_id == account_id)
            )
        )
    for call_id in recorded:
        # one gone meanwhile (retention, an erasure) is fine
        with contextlib.suppress(RecordingNotFound):
            vault.delete(call_id, actor, forget_now=False)
    with sessions.begin() as session:
        account = session.get(Account, account_id)
        if account is None or account.erase_after is None:
            return {}
        counts = {
            "recordings": len(recorded),
            "calls": _count(session, Call, account_id),
            "visits": _count(session, Visit, account_id),
            "leads": _count(session, Lead, account_id),
            "users": _count(session, User, account_id),
        }
        # calls outlive a deleted account elsewhere (ON DELETE SET NULL): not these
        session.execute(delete(Call).where(Call.account_id == account_id))
        session.delete(account)
        detail = ", ".join(f"{n} {kind}" for kind, n in counts.items())
        audit.record(session, actor, "account.erase", str(account_id), detail=detail)
    forget(sessions.kw["bind"], Base.metadata.tables)  # every table had the account's rows
    return counts


def erase_due(
    sessions: sessionmaker[Session], vault: RecordingVault, now: dt.datetime | None = None
) -> dict[int, dict[str, int]]:
    """The daily run: every account whose grace period has ended."""
    with sessions() as session:
        accounts = due(session, now or utcnow())
    return {account_id: erase(sessions, vault, account_id) for account_id in accounts}


def _hold(session: Session, account: Account) -> str | None:
    """What legal hold keeps the account's data, if any."""
    if account.legal_hold_days is not None:
        return f"a hold of {account.legal_hold_days} days"
    held = session.scalar(
        select(func.count()).select_from(Call).where(Call.account_id == account.id, Call.legal_hold)
    )
    return f"{held} call(s) held" if held else None


def _calls_going_on(session: Session, account_id: int) -> bool:
    """A call started in the last hours and not ended: its end would write it again."""
    since = utcnow() - CALL_LONGEST
    query = select(Call.id).where(
        Call.account_id == account_id,
        Call.ended_at.is_(None),
        Call.disposition.is_(None),
        Call.started_at > since,
    )
    return session.scalar(query.limit(1)) is not None


def _client(session: Session, account_id: int) -> Account:
    account = session.get(Account, account_id)
    if account is None:
        raise AdminError(f"no account {account_id}")
    if account.parent_id is None:
        raise AdminError("an agency account cannot be deleted: delete its client accounts")
    return account


def _count(session: Session, model: type, account_id: int) -> int:
    query = select(func.count()).select_from(model).where(model.account_id == account_id)  # type: ignore[attr-defined]
    return int(session.scalar(query) or 0)


def _pending(account: Account) -> Pending:
    assert account.delete_requested_at is not None and account.erase_after is not None
    return Pending(account.id, account.name, account.delete_requested_at, account.erase_after)


def _day(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")
