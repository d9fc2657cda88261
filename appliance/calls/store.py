"""Call records and routes in the database. Blocking: the event loop calls in via to_thread."""

from __future__ import annotations

import datetime as dt
import logging
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import phonenumbers
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from appliance.calls.outcome import CallOutcome
from appliance.calls.routing import (
    InvalidRoute,
    RoutePlan,
    Target,
    fallback_dial,
    fallback_recording,
)
from appliance.db.models import Account, Call, Route, RouteTarget, TrackingNumber
from appliance.numbers import dialled_to_e164

log = logging.getLogger(__name__)
FALLBACK_FAMILY = "appliance_fallback"
FALLBACK_RECORD_FAMILY = "appliance_fallback_record"
_CALL_NAMESPACE = uuid.UUID("6f1c1f4e-4b43-4c3e-9a57-0c7a3c2f6d11")


@dataclass(frozen=True)
class NumberInfo:
    tracking_number_id: int
    account_id: int
    plan: RoutePlan | None
    recording_paused: bool = False


@dataclass(frozen=True)
class RoutingTable:
    """A snapshot of the routing configuration; `fallback` is AstDB key -> static dial string
    (each number under its E.164 digits and national digits, the default route as 'default')."""

    numbers: dict[str, NumberInfo] = field(default_factory=dict)
    default: RoutePlan | None = None
    fallback: dict[str, str] = field(default_factory=dict)
    fallback_record: dict[str, str] = field(default_factory=dict)  # key -> notice or '-'

    @property
    def astdb(self) -> dict[str, dict[str, str]]:
        """The AstDB families the dialplan reads when the controller is away."""
        return {FALLBACK_FAMILY: self.fallback, FALLBACK_RECORD_FAMILY: self.fallback_record}


@dataclass(frozen=True)
class InboundCall:
    linkedid: str
    dialled: str
    caller_number: str
    caller_name: str


@dataclass(frozen=True)
class CallOpened:
    """What the inbound AGI handler decided for a call, to be written after it answered."""

    call: InboundCall
    call_id: str
    info: NumberInfo | None
    route_name: str
    after_hours: bool
    routed: bool


CallWrite = CallOpened | CallOutcome


CALL_ID = re.compile(r"[0-9a-f]{32}")


def is_call_id(text: str) -> bool:
    """Call ids are 32 lowercase hex digits: safe in file names and dialplan variables."""
    return CALL_ID.fullmatch(text) is not None


def call_id_for(linkedid: str) -> str:
    """The appliance call id: derived from the linkedid, so every writer agrees on it."""
    return uuid.uuid5(_CALL_NAMESPACE, linkedid).hex


def _utc(epoch: float | None) -> dt.datetime | None:
    return None if epoch is None else dt.datetime.fromtimestamp(epoch, dt.UTC)


class CallStore:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    # routing ---------------------------------------------------------------------------
    def routing_table(self) -> RoutingTable:
        """Everything routing needs, read in one pass, so that calls never wait on the database."""
        with self.sessions() as session:
            plans: dict[int | None, RoutePlan | None] = {None: None}
            paused_accounts = {
                account_id: paused
                for account_id, paused in session.execute(
                    select(Account.id, Account.recording_paused)
                )
            }
            numbers = {}
            for number in session.scalars(select(TrackingNumber)):
                if number.route_id not in plans:
                    plans[number.route_id] = _plan(session, number.route)
                paused = paused_accounts.get(number.account_id, False)
                info = NumberInfo(number.id, number.account_id, plans[number.route_id], paused)
                numbers[number.e164] = info
            route = session.scalar(select(Route).where(Route.is_default).order_by(Route.id))
            default = _plan(session, route)
        fallback: dict[str, str] = {}
        record: dict[str, str] = {}
        targets = [(_number_keys(e164), info.plan) for e164, info in numbers.items()]
        for keys, plan in [*targets, ({"default"}, default)]:
            dial = _safe_fallback(plan)
            if dial and plan is not None:
                fallback.update(dict.fromkeys(keys, dial))
                notice = _safe_fallback_recording(plan)
                if notice:
                    record.update(dict.fromkeys(keys, notice))
        return RoutingTable(numbers, default, fallback, record)

    # call records ----------------------------------------------------------------------
    def write(self, items: Sequence[CallWrite]) -> list[tuple[str, bool]]:
        """Apply call writes in order, in one transaction; per item, (call id, whether this
        write finished the call). If the batch conflicts with another writer, item by item."""
        try:
            with self.sessions.begin() as session:
                return [self._apply(session, item) for item in items]
        except IntegrityError:
            return [self._apply_alone(item) for item in items]

    def _apply_alone(self, item: CallWrite) -> tuple[str, bool]:
        try:
            with self.sessions.begin() as session:
                return self._apply(session, item)
        except IntegrityError:  # created concurrently elsewhere: now it exists
            with self.sessions.begin() as session:
                return self._apply(session, item)

    def _apply(self, session: Session, item: CallWrite) -> tuple[str, bool]:
        if isinstance(item, CallOpened):
            return self._open(session, item), False
        return self._finish(session, item)

    def _open(self, session: Session, opened: CallOpened) -> str:
        """Create the call record once per linkedid (or complete the one an early hangup made)."""
        call, info = opened.call, opened.info
        record = session.scalar(select(Call).where(Call.linkedid == call.linkedid))
        if record is None:
            record = _insert_call(
                session,
                id=opened.call_id,
                linkedid=call.linkedid,
                dialled=call.dialled,
                caller_number=call.caller_number or None,
                caller_name=call.caller_name or None,
                account_id=info.account_id if info else None,
                tracking_number_id=info.tracking_number_id if info else None,
                via="controller" if opened.routed else "fallback",
            )
        record.route_name = record.route_name or opened.route_name or None
        record.after_hours = record.after_hours or opened.after_hours
        session.flush()
        return record.id

    def _finish(self, session: Session, outcome: CallOutcome) -> tuple[str, bool]:
        """A call is finished once: a second outcome for it (a replayed event, the CDR of a
        call the AMI already reported) changes nothing."""
        record = session.scalar(select(Call).where(Call.linkedid == outcome.linkedid))
        if record is not None and record.disposition is not None:
            return record.id, False
        if record is None:
            record = self._new_record(session, outcome)
        record.started_at = _utc(outcome.started) or record.started_at
        record.answered_at = _utc(outcome.answered)
        record.ended_at = _utc(outcome.ended)
        record.ring_seconds = round(outcome.ring_seconds, 3)
        record.talk_seconds = round(outcome.talk_seconds, 3)
        record.disposition = outcome.disposition
        record.hangup_cause = outcome.hangup_cause
        record.hangup_party = outcome.hangup_party
        record.answered_by = outcome.answered_by
        record.consent_announced = outcome.consent_announced
        record.recording_opted_out = outcome.recording_opted_out
        session.flush()
        return record.id, True

    def _new_record(self, session: Session, outcome: CallOutcome) -> Call:
        """A call the controller never routed: Asterisk took the static fallback."""
        number = session.scalar(
            select(TrackingNumber).where(TrackingNumber.e164 == dialled_to_e164(outcome.dialled))
        )
        return _insert_call(
            session,
            id=outcome.call_id or call_id_for(outcome.linkedid),
            linkedid=outcome.linkedid,
            dialled=outcome.dialled,
            caller_number=outcome.caller_number or None,
            caller_name=outcome.caller_name or None,
            account_id=number.account_id if number else None,
            tracking_number_id=number.id if number else None,
            via="fallback",
        )

    def finished_linkedids(self, linkedids: list[str]) -> set[str]:
        with self.sessions() as session:
            rows = session.scalars(
                select(Call.linkedid).where(
                    Call.linkedid.in_(linkedids), Call.disposition.is_not(None)
                )
            )
            return {r for r in rows if r}


def _insert_call(session: Session, **fields: Any) -> Call:
    record = Call(**fields)
    record.first_time = _first_time(session, record)
    session.add(record)
    return record


def _first_time(session: Session, record: Call) -> bool | None:
    if not record.caller_number:
        return None
    earlier = select(Call.id).where(
        Call.caller_number == record.caller_number,
        Call.linkedid != record.linkedid,
        Call.account_id == record.account_id
        if record.account_id is not None
        else Call.account_id.is_(None),
    )
    return session.scalar(earlier.limit(1)) is None


def _number_keys(e164: str) -> set[str]:
    parsed = phonenumbers.parse(e164)
    return {e164.lstrip("+"), str(parsed.national_number)}


def _safe_fallback_recording(plan: RoutePlan) -> str | None:
    try:
        return fallback_recording(plan)
    except InvalidRoute:
        return None


def _safe_fallback(plan: RoutePlan | None) -> str:
    if plan is None or not plan.targets:
        return ""
    try:
        return fallback_dial(plan)
    except InvalidRoute as exc:
        log.error("route %r has no usable fallback: %s", plan.name, exc)
        return ""


def _plan(session: Session, route: Route | None, depth: int = 0) -> RoutePlan | None:
    if route is None or depth > 3:
        return None
    targets = session.scalars(
        select(RouteTarget)
        .where(RouteTarget.route_id == route.id)
        .options(selectinload(RouteTarget.trunk))
        .order_by(RouteTarget.position)
    )
    after = session.get(Route, route.after_hours_route_id) if route.after_hours_route_id else None
    return RoutePlan(
        name=route.name,
        strategy=route.strategy,
        ring_timeout=route.ring_timeout,
        recording=route.recording,
        consent_prompt=route.consent_prompt,
        consent_opt_out=route.consent_opt_out,
        announcement=route.announcement,
        whisper=route.whisper,
        hours=route.hours,
        timezone=route.timezone,
        after_hours=_plan(session, after, depth + 1),
        targets=tuple(
            Target(kind=t.kind, value=t.value, trunk=t.trunk.name if t.trunk else None)
            for t in targets
        ),
    )
