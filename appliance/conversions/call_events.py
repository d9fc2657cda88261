"""A call's lifecycle as webhook events, each queued in the transaction that writes its fact:
call.started with the call's first record, call.answered with its answer, call.ended with
its conversions (the conversions job), recording.ready with the sealed recording's key,
transcript.ready with the first transcript.

Each fact is written once (a replayed AMI event, a second spool file, a redone transcription
find it written already), and its event is queued only then: the same fact never queues twice.
An event's `id` names the fact (`call-<id>-answered`), the same on every delivery of it, so a
receiver that takes a delivery twice (an answer lost on the way is retried) drops it by `id`.
Restricted callers: webhooks, the admin's own integration, still get the events with
`restricted: true`; ad platforms take conversion.created only, and never a restricted
caller's."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from appliance.conversions.deliveries import enqueue
from appliance.db.models import Call


def iso(moment: dt.datetime | None) -> str | None:
    """A database time as ISO 8601 with its zone (the database hands it back in UTC)."""
    return None if moment is None else moment.isoformat()


def call_data(call: Call) -> dict[str, Any]:
    """What every call event says of the call: who called which number, and its marketing."""
    return {
        "call_id": call.id,
        "dialled": call.dialled,
        "caller_number": call.caller_number,
        "caller_name": call.caller_name,
        "first_time": call.first_time,
        "source": call.source_name,
        "medium": call.medium,
        "campaign": call.campaign_name,
        "visit_id": call.visit_id,
        "attribution": call.attribution,
        "restricted": call.restricted,
    }


def _queue(
    session: Session, call: Call, name: str, fact: str, moment: dt.datetime | None, **more: Any
) -> int:
    if call.account_id is None:  # a call to no tracking number of any account
        return 0
    event = {
        "event": name,
        "id": f"call-{call.id}{fact}",
        "occurred_at": iso(moment),
        "data": call_data(call) | more,
    }
    return enqueue(session, call.account_id, name, event, ads=not call.restricted)


def started(session: Session, call: Call) -> int:
    """The call's record was first written (it has its call id)."""
    return _queue(session, call, "call.started", "-started", call.started_at)


def answered(session: Session, call: Call) -> int:
    """A destination answered the call."""
    return _queue(session, call, "call.answered", "-answered", call.answered_at)


def ended(session: Session, call: Call) -> int:
    """The call's record is complete. Its id is `call-<id>`, as before the other events."""
    return _queue(
        session,
        call,
        "call.ended",
        "",
        call.started_at,
        disposition=call.disposition,
        talk_seconds=call.talk_seconds,
    )


def recording_ready(session: Session, call_id: str, seconds: float, audio_format: str) -> int:
    """The call's recording is sealed (its length and audio format; never a key or a file)."""
    call = session.get(Call, call_id)
    if call is None:
        return 0
    now = dt.datetime.now(dt.UTC)
    return _queue(
        session, call, "recording.ready", "-recording", now, seconds=seconds, format=audio_format
    )


def transcript_ready(session: Session, call_id: str, model: str, seconds: float) -> int:
    """The call's first transcript is stored (the model and the seconds of audio it covers;
    the text itself is read through the API)."""
    call = session.get(Call, call_id)
    if call is None:
        return 0
    now = dt.datetime.now(dt.UTC)
    return _queue(
        session, call, "transcript.ready", "-transcript", now, model=model, seconds=seconds
    )
