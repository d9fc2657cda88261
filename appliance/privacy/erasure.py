"""Erasure by person, as a job that survives being interrupted.

`start` writes an erasure request holding the subject sealed under the box's secret key (and
queues the job); `run` finds what is left about the subject and erases it step by step, each
step in its own transaction and harmless to repeat, so a run that stops half-way is finished by
the next (`appliance person erase --resume`, or the controller's job runner). Recordings go by
crypto-erasure; calls take their transcripts, analyses and conversions with them; then leads,
visits (with their pages and holds) and the outbox payloads that mention the person. What is
under legal hold is kept (person.py says what that is): held calls, the visits tied to them,
leads within their account's hold and the payloads naming a held call or lead. An erasure is
refused while one of the person's calls is in progress or has just ended: the call writer and
the reconciler with Asterisk's CDRs would write it back. At the end the database's files are
rid of old copies (db.forget), the subject is dropped from the request, and one audit entry
keeps the counts, nothing personal."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from appliance import audit
from appliance.access import Permission, Principal
from appliance.admin import AdminError
from appliance.db.forget import forget
from appliance.db.models import (
    Account,
    Call,
    CallAnalysis,
    Conversion,
    Delivery,
    ErasureRequest,
    Lead,
    Transcript,
    Visit,
)
from appliance.jobs import queue
from appliance.jobs.runner import Slow
from appliance.privacy.person import Found, find
from appliance.privacy.subject import Kind, Subject
from appliance.recordings.vault import RecordingNotFound, RecordingVault
from appliance.secrets import SecretBox
from appliance.transcription import search
from appliance.vocabulary import Role

JOB = "person.erase"
WHAT = {Kind.NUMBER: "number", Kind.EMAIL: "e-mail address", Kind.VISITOR: "visitor"}
HELD = "kept_under_hold"
HELD_KINDS = {"held": "calls", "held_visits": "visits", "held_leads": "leads",
              "held_deliveries": "deliveries"}  # fmt: skip
ONE = {"calls": "call", "visits": "visit", "leads": "lead", "deliveries": "delivery"}
QUIET = dt.timedelta(minutes=2)  # the reconciler reads Asterisk's CDRs every minute
LIVE = dt.timedelta(hours=6)  # a call unfinished for longer is a stale row, not a live call
TOUCHED = (  # tables whose deleted rows must leave no copy behind
    "calls", "recordings", "transcripts", "transcript_turns", "call_analyses", "conversions",
    "leads", "visits", "visit_pages", "number_holds", "deliveries", "erasure_requests",
)  # fmt: skip


@dataclass(frozen=True)
class Report:
    request_id: int
    removed: dict[str, int]  # per kind of data
    held: dict[str, int]  # per kind of data: kept under legal hold

    def __str__(self) -> str:
        parts = [f"{n} {kind}" for kind, n in self.removed.items() if n] or ["nothing"]
        kept = f"; {_kinds(self.held)} kept under legal hold" if any(self.held.values()) else ""
        return f"erased {', '.join(parts)}{kept}"


def scope_of(session: Session, account_id: int, actor: str) -> Principal:
    """Whom an erasure covers: an agency's account with its clients (and calls on no
    account), or one client account."""
    account = session.get(Account, account_id)
    if account is None:
        raise AdminError(f"there is no account {account_id}")
    agency = account.parent_id is None
    accounts = {account_id}
    if agency:
        accounts.update(session.scalars(select(Account.id).where(Account.parent_id == account_id)))
    return Principal(0, actor, Role.OWNER, account_id, frozenset(accounts), agency,
                     frozenset(Permission))  # fmt: skip


def start(
    sessions: sessionmaker[Session],
    box: SecretBox,
    principal: Principal,
    subject: Subject,
    actor: str,
) -> int:
    """Record the request (nothing erased yet); its id. A subject with no data, only data
    under legal hold, or a call in progress or just ended, is refused and nothing is
    written."""
    with sessions.begin() as session:
        found = find(session, principal, subject)
        if found.empty():
            raise AdminError(f"nothing is stored about that {_what(subject)} in your accounts")
        if _only_held(found):
            raise AdminError(f"all {_kinds(_held(found))} found are under legal hold: "
                             "nothing to erase")  # fmt: skip
        _refuse_if_busy(session, found)
        request = ErasureRequest(
            account_id=principal.account_id,
            subject_sealed=box.seal(json.dumps([subject.kind, subject.value, subject.region])),
            actor=actor[:64],
            state="pending",
        )
        session.add(request)
        session.flush()
        queue.enqueue(session, JOB, str(request.id))
        return request.id


def run(
    sessions: sessionmaker[Session], vault: RecordingVault, box: SecretBox, request_id: int
) -> Report:
    """Carry out (or finish) one erasure request; what it removed in all its runs."""
    with sessions() as session:
        request = session.get(ErasureRequest, request_id)
        if request is None:
            raise AdminError(f"there is no erasure request {request_id}")
        if request.state == "done" or request.subject_sealed is None:
            return _report(request)
        kind, value, region = json.loads(box.open(request.subject_sealed))
        principal = scope_of(session, request.account_id or 0, request.actor)
        subject = Subject(Kind(kind), value, region)
        found = find(session, principal, subject)
    _erase(sessions, vault, request_id, found, request.actor, subject.kind)
    with sessions.begin() as session:
        search.compact(session)  # the erased turns' words leave the index's file
    forget(sessions.kw["bind"], TOUCHED)
    return _finish(sessions, request_id, _held(found))


def pending(sessions: sessionmaker[Session]) -> list[int]:
    with sessions() as session:
        query = select(ErasureRequest.id).where(ErasureRequest.state == "pending")
        return list(session.scalars(query.order_by(ErasureRequest.id)))


def handlers(vault: RecordingVault, box: SecretBox) -> dict[str, Slow]:
    """The job for the controller's runner: an erasure left unfinished is finished there."""
    sessions = vault.sessions
    return {JOB: Slow(lambda key: run(sessions, vault, box, int(key)), lambda *_: None)}


def _erase(
    sessions: sessionmaker[Session],
    vault: RecordingVault,
    request_id: int,
    found: Found,
    actor: str,
    kind: Kind,
) -> None:
    """Payloads first (found through everything else), then what was found through another
    row before that row: a run cut short anywhere finds the rest again."""
    outbox = delete(Delivery).where(Delivery.id.in_(_not_held(found, "deliveries")))
    _step(sessions, request_id, "deliveries", outbox)
    steps = [_erase_visits, _erase_leads, _erase_calls]
    for step in reversed(steps) if kind is Kind.VISITOR else steps:
        step(sessions, vault, request_id, found, actor)


def _erase_calls(
    sessions: sessionmaker[Session],
    vault: RecordingVault,
    request_id: int,
    found: Found,
    actor: str,
) -> None:
    held = set(found.held)
    for call_id in found.calls:
        if call_id in held:
            continue
        if call_id in found.recordings:
            _erase_recording(sessions, vault, request_id, call_id, actor)
        _erase_call(sessions, request_id, call_id)


def _erase_leads(
    sessions: sessionmaker[Session], _vault: object, request_id: int, found: Found, _actor: str
) -> None:
    leads = _not_held(found, "leads")
    with sessions() as session:
        conversions = _conversions_of_leads(session, leads)
    _step(sessions, request_id, "leads", delete(Lead).where(Lead.id.in_(leads)),
          Counter(conversions=conversions))  # fmt: skip


def _erase_visits(
    sessions: sessionmaker[Session], _vault: object, request_id: int, found: Found, _actor: str
) -> None:
    visits = _not_held(found, "visits")
    _step(sessions, request_id, "visits", delete(Visit).where(Visit.id.in_(visits)))


def _erase_recording(
    sessions: sessionmaker[Session],
    vault: RecordingVault,
    request_id: int,
    call_id: str,
    actor: str,
) -> None:
    """Crypto-erasure; the transcript and its analysis go with the recording."""
    with sessions() as session:
        counted = Counter(
            recordings=1,
            transcripts=_how_many(session, Transcript.call_id, call_id),
            analyses=_how_many(session, CallAnalysis.call_id, call_id),
        )
    try:
        vault.delete(call_id, actor, forget_now=False)
    except RecordingNotFound:
        return  # erased by an earlier run
    _count(sessions, request_id, counted)


def _erase_call(sessions: sessionmaker[Session], request_id: int, call_id: str) -> None:
    with sessions.begin() as session:
        counted = Counter(conversions=_how_many(session, Conversion.call_id, call_id))
        gone = session.execute(delete(Call).where(Call.id == call_id))
        if gone.rowcount:  # type: ignore[attr-defined]
            _add(session, request_id, counted + Counter(calls=1))


def _step(
    sessions: sessionmaker[Session],
    request_id: int,
    kind: str,
    statement: object,
    more: Counter[str] | None = None,
) -> None:
    with sessions.begin() as session:
        removed = session.execute(statement).rowcount  # type: ignore[call-overload]
        if removed:
            _add(session, request_id, Counter({kind: removed}) + (more or Counter()))


def _count(sessions: sessionmaker[Session], request_id: int, counted: Counter[str]) -> None:
    with sessions.begin() as session:
        _add(session, request_id, counted)


def _add(session: Session, request_id: int, counted: Counter[str]) -> None:
    request = session.get(ErasureRequest, request_id, with_for_update=True)
    assert request is not None
    removed = Counter(json.loads(request.removed or "{}"))
    removed.update(counted)
    request.removed = json.dumps({k: n for k, n in sorted(removed.items()) if n})


def _finish(sessions: sessionmaker[Session], request_id: int, held: dict[str, int]) -> Report:
    with sessions.begin() as session:
        request = session.get(ErasureRequest, request_id, with_for_update=True)
        assert request is not None
        if request.state != "done":
            removed = json.loads(request.removed or "{}") | {HELD: held}
            request.removed = json.dumps(removed)
            request.state, request.subject_sealed = "done", None
            request.finished_at = dt.datetime.now(dt.UTC)
            audit.record(session, request.actor, "person.erase", f"erasure:{request_id}",
                         detail=request.removed, account_id=request.account_id)  # fmt: skip
        report = _report(request)
    forget(sessions.kw["bind"], ["erasure_requests"])  # the sealed subject's old copies
    return report


def _report(request: ErasureRequest) -> Report:
    removed = json.loads(request.removed or "{}")
    held = removed.pop(HELD, {})
    if isinstance(held, int):  # an erasure done before visits, leads and payloads were held
        held = {"calls": held}
    return Report(request.id, {k: int(v) for k, v in removed.items()},
                  {k: int(v) for k, v in held.items() if v})  # fmt: skip


def _how_many(session: Session, column: Any, call_id: str) -> int:
    return session.scalar(select(func.count()).where(column == call_id)) or 0


def _conversions_of_leads(session: Session, leads: list[int]) -> int:
    query = select(func.count()).where(Conversion.lead_id.in_(leads))
    return session.scalar(query) or 0


def _held(found: Found) -> dict[str, int]:
    return {kind: len(getattr(found, name)) for name, kind in HELD_KINDS.items()
            if getattr(found, name)}  # fmt: skip


def _not_held(found: Found, kind: str) -> list[Any]:
    held = set(getattr(found, f"held_{kind}"))
    return [i for i in getattr(found, kind) if i not in held]


def _only_held(found: Found) -> bool:
    rest = _not_held(found, "visits") or _not_held(found, "leads")
    rest = rest or _not_held(found, "deliveries")
    return len(found.held) == len(found.calls) and not rest


def _refuse_if_busy(session: Session, found: Found) -> None:
    """Refused while a call to be erased is in progress (it started lately and has not
    ended) or ended less than QUIET ago: it would be written back when it ends, or from
    Asterisk's CDR file."""
    now = dt.datetime.now(dt.UTC)
    held = set(found.held)
    query = select(Call.started_at, Call.ended_at).where(
        Call.id.in_([c for c in found.calls if c not in held])
    )
    live, ends = False, []
    for started, ended in session.execute(query):
        if ended is None:
            live = live or started > now - LIVE
        elif ended > now - QUIET:
            ends.append(ended)
    if not live and not ends:
        return
    minutes = int(QUIET.total_seconds() // 60)
    if live:
        after = f"{minutes} minutes after it ends"
    else:
        after = f"after {(max(ends) + QUIET).strftime('%H:%M:%S')} UTC"
    raise AdminError(f"a call of this person is in progress or ended less than {minutes} "
                     f"minutes ago; erase again {after}")  # fmt: skip


def _kinds(counts: dict[str, int]) -> str:
    """'2 call(s), 1 delivery(s)'."""
    return ", ".join(f"{n} {ONE.get(kind, kind)}(s)" for kind, n in counts.items() if n)


def _what(subject: Subject) -> str:
    return WHAT[subject.kind]
