"""The plain data plugins get about a call (spec.py lists the keys): a copy of the record's
fields, never the ORM object. Blocking reads: off the event loop."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from appliance.conversions.call_events import iso
from appliance.db.models import Call, Lead


def call_data(call: Call) -> dict[str, Any]:
    return {
        "call_id": call.id,
        "linkedid": call.linkedid,
        "account_id": call.account_id,
        "caller_number": call.caller_number,
        "caller_name": call.caller_name,
        "dialled": call.dialled,
        "number_id": call.tracking_number_id,
        "route_id": call.route_id,
        "route_name": call.route_name,
        "source": call.source_name,
        "medium": call.medium,
        "campaign": call.campaign_name,
        "after_hours": bool(call.after_hours),
        "restricted": bool(call.restricted),
        "started_at": iso(call.started_at),
        "answered_at": iso(call.answered_at),
        "ended_at": iso(call.ended_at),
        "disposition": call.disposition,
        "talk_seconds": call.talk_seconds,
        "ring_seconds": call.ring_seconds,
    }


def read_call(sessions: sessionmaker[Session], call_id: str) -> dict[str, Any] | None:
    with sessions() as session:
        call = session.get(Call, call_id)
        return call_data(call) if call is not None else None


def lead_data(lead: Lead) -> dict[str, Any]:
    return {
        "lead_id": lead.id,
        "account_id": lead.account_id,
        "form": lead.form,
        "fields": json.loads(lead.fields),
        "page": lead.page,
        "source": lead.source_name,
        "medium": lead.medium,
        "campaign": lead.campaign_name,
        "created_at": iso(lead.created_at),
    }
