"""A correction request: a person's name or number set right on their calls and leads. The
audit entry says what kind of value changed on how many records, never the values."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from appliance import audit
from appliance.access import Principal
from appliance.admin import AdminError
from appliance.db.models import Call, Lead
from appliance.numbers import InvalidNumber, to_e164
from appliance.privacy.person import find
from appliance.privacy.subject import Kind, Subject

NAME_MAX = 128  # calls.caller_name
NAME_FIELDS = {"name", "fullname", "yourname", "contactname"}  # lower case, no '-', '_', ' '
NUMBER_FIELDS = ("phone", "tel", "mobile", "number")


@dataclass(frozen=True)
class Correction:
    name: str | None = None
    number: str | None = None  # E.164


def checked(name: str | None, number: str | None, region: str = "US") -> Correction:
    """The new values as typed, checked: one line for what is wrong."""
    if name is None and number is None:
        raise AdminError("say what to correct: a new name, a new number or both")
    if name is not None:
        name = name.strip()
        if not name or len(name) > NAME_MAX or not name.isprintable():
            raise AdminError(f"a name is 1 to {NAME_MAX} printable characters")
    try:
        e164 = to_e164(number, region) if number is not None else None
    except InvalidNumber as exc:
        raise AdminError(str(exc)) from None
    return Correction(name, e164)


def correct(
    session: Session, principal: Principal, subject: Subject, change: Correction, actor: str
) -> dict[str, int]:
    """Apply a correction to everything found about the subject; how many calls and leads
    changed."""
    found = find(session, principal, subject)
    if not found.calls and not found.leads:
        raise AdminError("no calls or leads are stored about that subject in your accounts")
    calls = list(session.scalars(select(Call).where(Call.id.in_(found.calls))))
    for call in calls:
        call.caller_name = change.name if change.name is not None else call.caller_name
        call.caller_number = change.number or call.caller_number
    leads = list(session.scalars(select(Lead).where(Lead.id.in_(found.leads))))
    changed = sum(_correct_lead(lead, subject, change) for lead in leads)
    counts = {"calls": len(calls), "leads": changed}
    what = " and ".join(k for k in ("name", "number") if getattr(change, k) is not None)
    audit.record(session, actor, "person.correct",
                 detail=f"{what} on {len(calls)} call(s), {changed} lead(s)",
                 account_id=principal.account_id)  # fmt: skip
    return counts


def _correct_lead(lead: Lead, subject: Subject, change: Correction) -> bool:
    try:
        fields = json.loads(lead.fields)
    except ValueError:
        return False
    if not isinstance(fields, dict):
        return False
    new = {key: _field(key, value, subject, change) for key, value in fields.items()}
    if new == fields:
        return False
    lead.fields = json.dumps(new, ensure_ascii=False)
    return True


def _field(key: str, value: object, subject: Subject, change: Correction) -> object:
    name = "".join(ch for ch in key.lower() if ch not in "-_ ")
    if change.name is not None and name in NAME_FIELDS:
        return change.name
    if change.number is not None and isinstance(value, str):
        if subject.kind is Kind.NUMBER and subject.matches(value):
            return change.number
        if subject.kind is not Kind.NUMBER and any(word in name for word in NUMBER_FIELDS):
            return change.number
    return value
