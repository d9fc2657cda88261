"""An access request answered: one zip archive holding `person.json` (every row found about
the person, as it is stored, without the box's own secrets such as wrapped keys) and each of
their recordings as `recordings/CALL.wav`, decrypted through the vault (each read audited)."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import os
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from appliance import audit
from appliance.access import Principal
from appliance.admin import AdminError
from appliance.db.models import (
    Base,
    Call,
    CallAnalysis,
    CallNote,
    CallTag,
    Conversion,
    Delivery,
    Lead,
    NumberHold,
    Recording,
    Transcript,
    TranscriptTurn,
    Visit,
    VisitPage,
)
from appliance.privacy.person import Found, find
from appliance.privacy.subject import Subject
from appliance.recordings.vault import RecordingNotFound, RecordingVault

HIDDEN = {"wrapped_key", "key_id", "file_id", "file_name", "words"}  # secrets; words: as turns
FORMAT = 1


def to_file(
    path: Path,
    sessions: sessionmaker[Session],
    vault: RecordingVault,
    principal: Principal,
    subject: Subject,
    actor: str,
) -> dict[str, int]:
    """Write the archive to a new file, readable by this user only; an existing file (or a
    symbolic link) is never written through."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        raise AdminError(f"{path} exists: choose a new file name") from None
    try:
        with os.fdopen(fd, "wb") as out:
            return write(out, sessions, vault, principal, subject, actor)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def write(
    out: BinaryIO,
    sessions: sessionmaker[Session],
    vault: RecordingVault,
    principal: Principal,
    subject: Subject,
    actor: str,
) -> dict[str, int]:
    """The archive about `subject` into `out`; the counts of what it holds. Nothing found is
    a refusal: there is nothing to export."""
    with sessions() as session:
        found = find(session, principal, subject)
        if found.empty():
            raise AdminError(f"nothing is stored about {subject.kind.value} in your accounts")
        document = _document(session, found, subject)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("person.json", json.dumps(document, indent=2, default=_plain))
        for call_id in found.recordings:
            wav = io.BytesIO()
            try:
                vault.export_wav(call_id, wav, actor)
            except RecordingNotFound:  # erased meanwhile
                continue
            archive.writestr(f"recordings/{call_id}.wav", wav.getvalue(), zipfile.ZIP_STORED)
    counts = found.counts()
    with sessions.begin() as session:
        audit.record(session, actor, "person.export", detail=_counted(counts),
                     account_id=principal.account_id)  # fmt: skip
    return counts


def _document(session: Session, found: Found, subject: Subject) -> dict[str, Any]:
    calls = found.calls
    return {
        "format": FORMAT,
        "subject": str(subject),
        "exported_at": dt.datetime.now(dt.UTC),
        "counts": found.counts(),
        "calls": _rows(session, Call, Call.id, calls),
        "recordings": _rows(session, Recording, Recording.call_id, calls),
        "transcripts": _transcripts(session, calls),
        "analyses": _rows(session, CallAnalysis, CallAnalysis.call_id, calls),
        "call_tags": _rows(session, CallTag, CallTag.call_id, calls),
        "call_notes": _rows(session, CallNote, CallNote.call_id, calls),
        "conversions": _rows(session, Conversion, Conversion.id, found.conversions),
        "visits": _rows(session, Visit, Visit.id, found.visits),
        "visit_pages": _rows(session, VisitPage, VisitPage.visit_id, found.visits),
        "number_holds": _rows(session, NumberHold, NumberHold.visit_id, found.visits),
        "leads": _rows(session, Lead, Lead.id, found.leads),
        "deliveries": _rows(session, Delivery, Delivery.id, found.deliveries),
    }


def _transcripts(session: Session, calls: list[str]) -> list[dict[str, Any]]:
    rows = _rows(session, Transcript, Transcript.call_id, calls)
    for row in rows:
        row["turns"] = _rows(session, TranscriptTurn, TranscriptTurn.call_id, [row["call_id"]])
    return rows


def _rows(
    session: Session, model: type[Base], key: Any, among: Iterable[object]
) -> list[dict[str, Any]]:
    wanted = sorted(set(among), key=str)
    if not wanted:
        return []
    columns = [c for c in model.__table__.columns if c.name not in HIDDEN]
    query = select(*columns).where(key.in_(wanted)).order_by(*model.__table__.primary_key)
    return [_decoded(dict(row)) for row in session.execute(query).mappings()]


def _decoded(row: dict[str, Any]) -> dict[str, Any]:
    """JSON held in text columns (form fields, payloads, tags) is shown as JSON."""
    for name in ("fields", "payload", "tags", "details"):
        if isinstance(row.get(name), str):
            with contextlib.suppress(ValueError):
                row[name] = json.loads(row[name])
    return row


def _plain(value: object) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return str(value)


def _counted(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in counts.items() if n)
