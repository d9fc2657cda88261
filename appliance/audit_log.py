"""Reading the audit log: newest first, filtered, a page at a time, and only the entries of
the accounts the reader may see (the agency's readers also see entries of no account)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from appliance.access import Principal
from appliance.db.models import AuditEntry
from appliance.forms import BadFilter, day, text

__all__ = ["AuditFilter", "BadFilter", "every", "page", "parse_filter"]

PAGE = 100


@dataclass(frozen=True)
class AuditFilter:
    actor: str | None = None
    action: str | None = None  # an action or its start, e.g. "recording."
    subject: str | None = None
    since: dt.date | None = None
    until: dt.date | None = None


def parse_filter(fields: Any) -> AuditFilter:
    return AuditFilter(
        text(fields, "actor"),
        text(fields, "action"),
        text(fields, "subject"),
        day(fields, "from"),
        day(fields, "to"),
    )


def _query(principal: Principal, wanted: AuditFilter) -> Select[Any]:
    query = select(AuditEntry).where(principal.where(AuditEntry.account_id))
    if wanted.actor:
        query = query.where(AuditEntry.actor == wanted.actor)
    if wanted.action:
        query = query.where(AuditEntry.action.startswith(wanted.action, autoescape=True))
    if wanted.subject:
        query = query.where(AuditEntry.subject == wanted.subject)
    if wanted.since:
        query = query.where(AuditEntry.at >= dt.datetime.combine(wanted.since, dt.time(), dt.UTC))
    if wanted.until:
        end = dt.datetime.combine(wanted.until + dt.timedelta(days=1), dt.time(), dt.UTC)
        query = query.where(AuditEntry.at < end)
    return query


def page(
    session: Session, principal: Principal, wanted: AuditFilter, before: int | None = None
) -> tuple[list[AuditEntry], int | None]:
    """A page of entries and the id to pass as `before` for the next (None on the last)."""
    query = _query(principal, wanted)
    if before is not None:
        query = query.where(AuditEntry.id < before)
    rows = list(session.scalars(query.order_by(AuditEntry.id.desc()).limit(PAGE + 1)))
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    return rows, rows[-1].id if more and rows else None


def every(session: Session, principal: Principal, wanted: AuditFilter) -> Iterator[AuditEntry]:
    query = _query(principal, wanted).order_by(AuditEntry.id.desc())
    yield from session.scalars(query.execution_options(yield_per=500))
