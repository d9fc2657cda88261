"""What the AGI scripts read from and write to the database. Blocking: the scripts call in
via asyncio.to_thread, inside the FastAGI request's time budget."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from appliance.calls import annotations as annotated
from appliance.db.models import Call, CallAnalysis, Lead, Visit

Sessions = sessionmaker[Session]
EMAIL_FIELD = re.compile(r"e-?mail", re.I)
NAME_FIELD = re.compile(r"^(your[-_ ]?|full[-_ ]?|contact[-_ ]?)?name$", re.I)


@dataclass(frozen=True)
class Tracked:
    """A call's record as `track` and `lookup` tell the dialplan."""

    call_id: str
    number_id: int | None
    dialled: str
    source: str | None
    medium: str | None
    campaign: str | None
    attribution: str | None
    visit_id: str | None
    first_time: bool | None


@dataclass(frozen=True)
class Details:
    """What `lookup` adds: the visit's details, the call's tags and score, the visit's lead."""

    keyword: str | None = None
    click_id_type: str | None = None
    landing_page: str | None = None
    tags: tuple[str, ...] = ()
    score: int | None = None
    lead_form: str | None = None
    lead_email: str | None = None
    lead_name: str | None = None


def call_of(sessions: Sessions, linkedid: str) -> str | None:
    """The id of the call with this linkedid, once its record is written."""
    with sessions() as session:
        return session.scalar(select(Call.id).where(Call.linkedid == linkedid))


def exists(sessions: Sessions, call_id: str) -> bool:
    with sessions() as session:
        return session.get(Call, call_id) is not None


def tracked(sessions: Sessions, call_id: str) -> Tracked | None:
    with sessions() as session:
        call = session.get(Call, call_id)
        return None if call is None else _tracked(call)


def _tracked(call: Call) -> Tracked:
    return Tracked(
        call_id=call.id,
        number_id=call.tracking_number_id,
        dialled=call.dialled,
        source=call.source_name,
        medium=call.medium,
        campaign=call.campaign_name,
        attribution=call.attribution,
        visit_id=call.visit_id,
        first_time=call.first_time,
    )


def lookup(sessions: Sessions, call_id: str) -> tuple[Tracked, Details] | None:
    with sessions() as session:
        call = session.get(Call, call_id)
        if call is None:
            return None
        notes = annotated.of_call(session, call_id)
        analysed = session.scalar(select(CallAnalysis.score).where(CallAnalysis.call_id == call_id))
        score = annotated.effective_score(analysed, notes.score_adjustment)
        visit = session.get(Visit, call.visit_id) if call.visit_id else None
        lead = _latest_lead(session, call.visit_id)
        fields = _fields(lead.fields) if lead is not None else {}
        details = Details(
            keyword=visit.keyword if visit else None,
            click_id_type=visit.click_id_type if visit else None,
            landing_page=visit.landing_page if visit else None,
            tags=notes.tags,
            score=score,
            lead_form=lead.form if lead else None,
            lead_email=_field(fields, EMAIL_FIELD),
            lead_name=_field(fields, NAME_FIELD),
        )
        return _tracked(call), details


def _latest_lead(session: Session, visit_id: str | None) -> Lead | None:
    if visit_id is None:
        return None
    return session.scalar(
        select(Lead)
        .where(Lead.visit_id == visit_id)
        .order_by(Lead.created_at.desc(), Lead.id.desc())
        .limit(1)
    )


def _fields(text: str) -> dict[str, str]:
    try:
        found = json.loads(text)
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


def _field(fields: dict[str, str], name: re.Pattern[str]) -> str | None:
    return next((value for key, value in fields.items() if name.search(key)), None)


# writes (annotations.py checks every value) ----------------------------------------------------
def tag(sessions: Sessions, call_id: str, text: str) -> list[str]:
    """Tag the call with the tags in `text` (',' or spaces between); return all its tags."""
    with sessions.begin() as session:
        return annotated.add_tags(session, call_id, annotated.clean_tags(text), "agi")


def score(sessions: Sessions, call_id: str, points: str) -> int | None:
    """Adjust the call's score; return its lead score now (analysis plus adjustment)."""
    with sessions.begin() as session:
        adjustment = annotated.adjust_score(session, call_id, points)
        analysed = session.scalar(select(CallAnalysis.score).where(CallAnalysis.call_id == call_id))
        return annotated.effective_score(analysed, adjustment)


def note(sessions: Sessions, call_id: str, text: str) -> int:
    with sessions.begin() as session:
        return annotated.add_note(session, call_id, text, "agi")
