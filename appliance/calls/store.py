"""Call records and routes in the database. Blocking: the event loop calls in via to_thread."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from appliance.attribution.attribute import GRACE, attribute
from appliance.calls.model import (
    CallAnswered,
    CallStarted,
    CallWrite,
    NumberInfo,
    RoutingTable,
)
from appliance.calls.outcome import CallOutcome
from appliance.calls.routing import RoutePlan, Target
from appliance.conversions import call_events
from appliance.conversions.store import CALL_JOB
from appliance.db.models import Account, Call, Campaign, Route, RouteTarget, TrackingNumber
from appliance.jobs import queue as jobs
from appliance.numbers import dialled_to_e164
from appliance.privacy import restricted_lookup
from appliance.vocabulary import RecordingMode, RingStrategy, TargetKind, new_call_id


def _utc(epoch: float | None) -> dt.datetime | None:
    return None if epoch is None else dt.datetime.fromtimestamp(epoch, dt.UTC)


def _e164(dialled: str) -> str:
    """The dialled number as E.164 whenever it is a valid number."""
    return dialled_to_e164(dialled) or dialled


class CallStore:
    def __init__(
        self, sessions: sessionmaker[Session], grace: float = GRACE, only_tracked: bool = False
    ) -> None:
        self.sessions = sessions
        self.grace = grace  # how long after a pool number's hold a call still goes to it
        # Attached to a site's PBX: the outcome of a call whose record nothing started (an
        # internal or outgoing call, a call the site's dialplan did not hand to 'track') is
        # not the appliance's, and is not recorded.
        self.only_tracked = only_tracked

    # routing ---------------------------------------------------------------------------
    def routing_table(self) -> RoutingTable:
        """Everything routing needs, read in one pass."""
        with self.sessions() as session:
            plans: dict[int | None, RoutePlan | None] = {None: None}
            numbers = []
            active = select(TrackingNumber).where(TrackingNumber.released_at.is_(None))
            for number in session.scalars(active.order_by(TrackingNumber.id)):
                if number.route_id not in plans:
                    plans[number.route_id] = _plan(session, number.route)
                info = NumberInfo(number.id, number.account_id, number.e164, plans[number.route_id])
                numbers.append(info)
            route = session.scalar(select(Route).where(Route.is_default).order_by(Route.id))
            # a full store, or an account being deleted: calls go on, unrecorded
            paused = session.scalars(
                select(Account.id).where(
                    Account.recording_paused | Account.delete_requested_at.is_not(None)
                )
            )
            return RoutingTable(
                tuple(numbers),
                _plan(session, route),
                frozenset(paused),
                restricted_lookup.by_account(session),
            )

    # call records ----------------------------------------------------------------------
    def write(self, items: Sequence[CallWrite]) -> list[tuple[str | None, bool]]:
        """Apply call writes in order, in one transaction; per item, (call id, whether this
        write was news: it created the call's record, wrote its answer or finished it; the
        call id is None for an answer to a call with no record). If the batch conflicts with
        another writer, item by item."""
        try:
            with self.sessions.begin() as session:
                return [self._apply(session, item) for item in items]
        except IntegrityError:
            return [self._apply_alone(item) for item in items]

    def _apply_alone(self, item: CallWrite) -> tuple[str | None, bool]:
        try:
            with self.sessions.begin() as session:
                return self._apply(session, item)
        except IntegrityError:  # created concurrently elsewhere: now it exists
            with self.sessions.begin() as session:
                return self._apply(session, item)

    def _apply(self, session: Session, item: CallWrite) -> tuple[str | None, bool]:
        if isinstance(item, CallStarted):
            return self._start(session, item)
        if isinstance(item, CallAnswered):
            return self._answer(session, item)
        return self._finish(session, item)

    def _start(self, session: Session, started: CallStarted) -> tuple[str, bool]:
        """Create the call record once per linkedid (or complete the one an outcome made);
        a new record queues call.started."""
        record = session.scalar(select(Call).where(Call.linkedid == started.linkedid))
        new = record is None
        if record is None:
            record = self._insert(
                session,
                id=started.call_id,
                linkedid=started.linkedid,
                dialled=_e164(started.dialled),
                caller_number=started.caller_number or None,
                caller_name=started.caller_name or None,
                started_at=_utc(started.started),
                via="live",
                tracking_number_id=started.number_id,
            )
        self._place(session, record, started.route_id, started.after_hours)
        record.restricted = record.restricted or started.restricted
        session.flush()
        if new:
            call_events.started(session, record)
        return record.id, new

    def _answer(self, session: Session, answer: CallAnswered) -> tuple[str | None, bool]:
        """The answer of a call in progress, once: a replayed event, or an answer to a call
        already finished or never recorded (joined late: reconciliation writes it), writes
        nothing."""
        record = session.scalar(select(Call).where(Call.linkedid == answer.linkedid))
        if record is None or record.answered_at is not None or record.disposition is not None:
            return (record.id if record else None), False
        record.answered_at = _utc(answer.answered)
        session.flush()
        call_events.answered(session, record)
        return record.id, True

    def _finish(self, session: Session, outcome: CallOutcome) -> tuple[str | None, bool]:
        """A call is finished once: a second outcome for it (a replayed event, the CDR of a
        call the AMI already reported) changes nothing."""
        record = session.scalar(select(Call).where(Call.linkedid == outcome.linkedid))
        if record is not None and record.disposition is not None:
            return record.id, False
        if record is None and self.only_tracked:
            return None, False
        new = record is None
        if record is None:
            record = self._insert(
                session,
                id=new_call_id(),
                linkedid=outcome.linkedid,
                dialled=_e164(outcome.dialled),
                caller_number=outcome.caller_number or None,
                caller_name=outcome.caller_name or None,
                via="reconciled" if outcome.reconciled else "live",
                tracking_number_id=outcome.number_id,
            )
        self._place(session, record, outcome.route_id, outcome.after_hours)
        answer_news = record.answered_at is None and outcome.answered is not None
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
        record.consent_prompt = outcome.consent_prompt
        record.consent_at = _utc(outcome.consent_at)
        number = session.get(TrackingNumber, record.tracking_number_id or 0)
        if number is not None:  # when the visit was written after the call started
            attribute(session, record, number, self.grace)
        session.flush()
        if new:  # recorded at its end only (reconciled from the CDR): its start, then answer
            call_events.started(session, record)
        if answer_news:
            call_events.answered(session, record)
        if record.account_id is not None:  # its conversions and events: with the call, atomically
            jobs.enqueue(session, CALL_JOB, record.id)
        return record.id, True

    def _insert(self, session: Session, **fields: Any) -> Call:
        number_id = fields.pop("tracking_number_id")
        number = session.get(TrackingNumber, number_id) if number_id else None
        if number is None:  # the dialplan did not say (an unknown number, an older CDR)
            dialled = fields["dialled"]
            number = session.scalar(
                select(TrackingNumber).where(
                    TrackingNumber.e164 == dialled, TrackingNumber.released_at.is_(None)
                )
            )
        record = Call(
            **fields,
            tracking_number_id=number.id if number else None,
            account_id=number.account_id if number else None,
        )
        if number is not None:  # the marketing behind the number now, kept with the call
            source = number.source
            campaign = session.get(Campaign, number.campaign_id) if number.campaign_id else None
            record.source_name = source.name if source else None
            record.medium = source.medium if source else None
            record.campaign_name = campaign.name if campaign else None
            if record.started_at is not None:
                attribute(session, record, number, self.grace)
        record.first_time = _first_time(session, record)
        session.add(record)
        return record

    def _place(self, session: Session, record: Call, route_id: int | None, late: bool) -> None:
        """The route the call connected to, whether it came after hours, and whether the
        caller is on the account's restrict list (checked again when the call ends)."""
        route = session.get(Route, route_id) if route_id else None
        if route is not None and record.route_id is None:
            record.route_id, record.route_name = route.id, route.name
            if record.account_id is None:
                record.account_id = route.account_id
        record.after_hours = record.after_hours or late
        record.restricted = record.restricted or restricted_lookup.caller_restricted(
            session, record.account_id, record.caller_number
        )

    def finished_linkedids(self, linkedids: list[str]) -> set[str]:
        with self.sessions() as session:
            rows = session.scalars(
                select(Call.linkedid).where(
                    Call.linkedid.in_(linkedids), Call.disposition.is_not(None)
                )
            )
            return {r for r in rows if r}

    def linkedid_of(self, call_id: str) -> str | None:
        """The linkedid of a call that has not ended yet (None: unknown or over)."""
        with self.sessions() as session:
            return session.scalar(
                select(Call.linkedid).where(Call.id == call_id, Call.disposition.is_(None))
            )


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
        id=route.id,
        name=route.name,
        account_id=route.account_id,
        strategy=RingStrategy(route.strategy),
        ring_timeout=route.ring_timeout,
        recording=RecordingMode(route.recording),
        consent_prompt=route.consent_prompt,
        consent_opt_out=route.consent_opt_out,
        announcement=route.announcement,
        whisper=route.whisper,
        hours=route.hours,
        timezone=route.timezone,
        dynamic=route.dynamic,
        after_hours=_plan(session, after, depth + 1),
        targets=tuple(
            Target(TargetKind(t.kind), t.value, t.trunk.name if t.trunk else None) for t in targets
        ),
    )
