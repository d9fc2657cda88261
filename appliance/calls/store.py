"""Call records in the database. Blocking: callers in the event loop use asyncio.to_thread."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from appliance.calls.routing import RoutePlan, Target
from appliance.db.models import Call, Route, RouteTarget, TrackingNumber


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


class CallStore:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def lookup(self, e164: str | None) -> NumberInfo | None:
        if e164 is None:
            return None
        with self.sessions() as session:
            number = session.scalar(
                select(TrackingNumber)
                .where(TrackingNumber.e164 == e164)
                .options(
                    selectinload(TrackingNumber.route)
                    .selectinload(Route.targets)
                    .selectinload(RouteTarget.trunk)
                )
            )
            if number is None:
                return None
            return NumberInfo(number.id, number.account_id, _plan(number.route))

    def open_call(self, call: InboundCall, info: NumberInfo | None, route_name: str) -> str:
        """Create the call record once per linkedid; a repeated request gets the same id."""
        with self.sessions.begin() as session:
            existing = session.scalar(select(Call.id).where(Call.linkedid == call.linkedid))
            if existing is not None:
                return existing
            record = Call(
                linkedid=call.linkedid,
                dialled=call.dialled,
                caller_number=call.caller_number or None,
                caller_name=call.caller_name or None,
                account_id=info.account_id if info else None,
                tracking_number_id=info.tracking_number_id if info else None,
                route_name=route_name or None,
            )
            session.add(record)
            session.flush()
            return record.id


def _plan(route: Route | None) -> RoutePlan | None:
    if route is None:
        return None
    return RoutePlan(
        name=route.name,
        strategy=route.strategy,
        ring_timeout=route.ring_timeout,
        record=route.record,
        targets=tuple(
            Target(kind=t.kind, value=t.value, trunk=t.trunk.name if t.trunk else None)
            for t in route.targets
        ),
    )
