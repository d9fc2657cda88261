"""Call records and routes in the database. Blocking: the event loop calls in via to_thread."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import phonenumbers
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from appliance.calls.outcome import CallOutcome
from appliance.calls.routing import InvalidRoute, RoutePlan, Target, fallback_dial
from appliance.db.models import Call, Route, RouteTarget, TrackingNumber
from appliance.numbers import dialled_to_e164

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NumberInfo:
    tracking_number_id: int
    account_id: int
    plan: RoutePlan | None


@dataclass(frozen=True)
class InboundCall:
    linkedid: str
    dialled: str
    caller_number: str
    caller_name: str


def _utc(epoch: float | None) -> dt.datetime | None:
    return None if epoch is None else dt.datetime.fromtimestamp(epoch, dt.UTC)


class CallStore:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    # routing ---------------------------------------------------------------------------
    def lookup(self, e164: str | None) -> NumberInfo | None:
        if e164 is None:
            return None
        with self.sessions() as session:
            number = session.scalar(select(TrackingNumber).where(TrackingNumber.e164 == e164))
            if number is None:
                return None
            return NumberInfo(number.id, number.account_id, _plan(session, number.route))

    def default_plan(self) -> RoutePlan | None:
        with self.sessions() as session:
            route = session.scalar(select(Route).where(Route.is_default).order_by(Route.id))
            return _plan(session, route)

    def fallback_routes(self) -> dict[str, str]:
        """AstDB key -> static dial string: each number under its E.164 digits and its
        national digits, and the default route under 'default'."""
        routes: dict[str, str] = {}
        with self.sessions() as session:
            numbers = session.scalars(
                select(TrackingNumber).where(TrackingNumber.route_id.is_not(None))
            )
            for number in numbers:
                dial = _safe_fallback(_plan(session, number.route))
                if dial:
                    for key in _number_keys(number.e164):
                        routes[key] = dial
            default = session.scalar(select(Route).where(Route.is_default).order_by(Route.id))
            dial = _safe_fallback(_plan(session, default))
            if dial:
                routes["default"] = dial
        return routes

    # call records ----------------------------------------------------------------------
    def open_call(
        self, call: InboundCall, info: NumberInfo | None, route_name: str, after_hours: bool
    ) -> str:
        """Create the call record once per linkedid; a repeated request gets the same id."""
        try:
            return self._open_call(call, info, route_name, after_hours)
        except IntegrityError:  # created concurrently (AMI outcome or a retried AGI)
            return self._open_call(call, info, route_name, after_hours)

    def _open_call(
        self, call: InboundCall, info: NumberInfo | None, route_name: str, after_hours: bool
    ) -> str:
        with self.sessions.begin() as session:
            existing = session.scalar(select(Call).where(Call.linkedid == call.linkedid))
            if existing is not None:
                return existing.id
            record = Call(
                linkedid=call.linkedid,
                dialled=call.dialled,
                caller_number=call.caller_number or None,
                caller_name=call.caller_name or None,
                account_id=info.account_id if info else None,
                tracking_number_id=info.tracking_number_id if info else None,
                route_name=route_name or None,
                after_hours=after_hours,
            )
            record.first_time = _first_time(session, record)
            session.add(record)
            session.flush()
            return record.id

    def record_outcome(self, outcome: CallOutcome) -> tuple[str, bool]:
        """Write a finished call; return (call id, whether this write finished it).

        A call is finished once: a second outcome for it (a replayed event, the CDR of a call
        the AMI already reported) changes nothing.
        """
        try:
            return self._record_outcome(outcome)
        except IntegrityError:
            return self._record_outcome(outcome)

    def _record_outcome(self, outcome: CallOutcome) -> tuple[str, bool]:
        with self.sessions.begin() as session:
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
            if outcome.via == "fallback":
                record.via = "fallback"
            session.flush()
            return record.id, True

    def _new_record(self, session: Session, outcome: CallOutcome) -> Call:
        number = session.scalar(
            select(TrackingNumber).where(TrackingNumber.e164 == dialled_to_e164(outcome.dialled))
        )
        record = Call(
            linkedid=outcome.linkedid,
            dialled=outcome.dialled,
            caller_number=outcome.caller_number or None,
            caller_name=outcome.caller_name or None,
            account_id=number.account_id if number else None,
            tracking_number_id=number.id if number else None,
            via=outcome.via,
        )
        if outcome.call_id:
            record.id = outcome.call_id
        record.first_time = _first_time(session, record)
        session.add(record)
        return record

    def finished_linkedids(self, linkedids: list[str]) -> set[str]:
        with self.sessions() as session:
            rows = session.scalars(
                select(Call.linkedid).where(
                    Call.linkedid.in_(linkedids), Call.disposition.is_not(None)
                )
            )
            return {r for r in rows if r}


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
        record=route.record,
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
