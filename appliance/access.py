"""Who may see and do what: the one place every page, API route and export asks.

A user belongs to one account. A user of the agency (an account without a parent) sees the
agency and all its client accounts; a user of a client account sees that account only. The
role says what the user may do there, and an API token's scopes narrow it further.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from appliance.db.models import Account, User
from appliance.vocabulary import Role


class Permission(StrEnum):
    CALLS_READ = "calls:read"
    RECORDINGS_READ = "recordings:read"
    RECORDINGS_CONTROL = "recordings:control"
    CONFIG_READ = "config:read"
    CONFIG_WRITE = "config:write"
    USERS_MANAGE = "users:manage"
    AUDIT_READ = "audit:read"
    METRICS_READ = "metrics:read"  # the whole box's numbers: owners and admins of the agency


P = Permission
READ = frozenset({P.CALLS_READ, P.RECORDINGS_READ})
ROLE_PERMISSIONS: dict[str, frozenset[Permission]] = {
    Role.OWNER: frozenset(Permission),
    Role.ADMIN: frozenset(Permission),
    Role.MANAGER: READ | {P.RECORDINGS_CONTROL, P.CONFIG_READ},
    Role.ANALYST: READ | {P.CONFIG_READ},
    Role.CLIENT_VIEWER: READ,
}
# roles that run the appliance itself: only an agency's users may hold them
AGENCY_ROLES = frozenset({Role.OWNER, Role.ADMIN, Role.MANAGER})
SCOPES = tuple(p.value for p in Permission)
DEFAULT_SCOPES = (P.CALLS_READ.value, P.RECORDINGS_READ.value)


class Denied(Exception):
    """The principal may not do this; the message says what was missing."""


@dataclass(frozen=True)
class Principal:
    """A signed-in user, or an API token acting for one."""

    user_id: int
    username: str
    role: str
    account_id: int
    accounts: frozenset[int]
    agency: bool
    permissions: frozenset[Permission]

    @property
    def actor(self) -> str:
        return f"user:{self.username}"

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions

    def require(self, permission: Permission) -> None:
        if permission not in self.permissions:
            raise Denied(f"needs the {permission.value} permission")

    def sees(self, account_id: int | None) -> bool:
        """Calls on no account (numbers nobody owns) belong to the agency."""
        return self.agency if account_id is None else account_id in self.accounts

    def where(self, column: Any) -> ColumnElement[bool]:
        """The SQL condition that keeps a query to this principal's accounts."""
        condition: ColumnElement[bool] = column.in_(sorted(self.accounts))
        return or_(condition, column.is_(None)) if self.agency else condition


def principal_for(session: Session, user: User, scopes: Iterable[str] | None = None) -> Principal:
    account = session.get(Account, user.account_id)
    agency = account is not None and account.parent_id is None
    accounts = {user.account_id}
    if agency:
        accounts.update(
            session.scalars(select(Account.id).where(Account.parent_id == user.account_id))
        )
    permissions = ROLE_PERMISSIONS.get(user.role, frozenset())
    if not agency:
        permissions = permissions & READ
    if scopes is not None:
        permissions = permissions & {Permission(s) for s in scopes if s in SCOPES}
    return Principal(
        user_id=user.id,
        username=user.username,
        role=user.role,
        account_id=user.account_id,
        accounts=frozenset(accounts),
        agency=agency,
        permissions=frozenset(permissions),
    )


def parse_scopes(text: str) -> tuple[str, ...]:
    """Scopes as typed by an admin ('calls:read recordings:read'), checked."""
    scopes = tuple(dict.fromkeys(text.replace(",", " ").split()))
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise ValueError(f"unknown scope {unknown[0][:40]!r}; scopes are {', '.join(SCOPES)}")
    return scopes


def the_box(session: Session, actor: str) -> Principal:
    """An admin at the box's command line: every account, every permission."""
    accounts = frozenset(session.scalars(select(Account.id)))
    agency = session.scalar(select(Account.id).where(Account.parent_id.is_(None)).limit(1))
    return Principal(
        user_id=0,
        username=actor,
        role=Role.OWNER,
        account_id=agency or 0,
        accounts=accounts,
        agency=True,
        permissions=frozenset(Permission),
    )


def may_manage(principal: Principal, account_id: int, *roles: str) -> None:
    """Whether the principal may add, change or remove a user of `account_id` who has (or is
    given) `roles`: users:manage in that account; only owners touch owners."""
    principal.require(Permission.USERS_MANAGE)
    if account_id not in principal.accounts:
        raise Denied("that account is not yours")
    if Role.OWNER in roles and principal.role != Role.OWNER:
        raise Denied("only owners may make or change owners")


def account_names(session: Session, principal: Principal) -> list[tuple[int, str]]:
    """The principal's accounts as (id, name), the agency first."""
    rows = session.execute(
        select(Account.id, Account.name)
        .where(Account.id.in_(sorted(principal.accounts)))
        .order_by(Account.parent_id.is_not(None), Account.name)
    ).all()
    return [(i, n) for i, n in rows]
