"""What integrators add to a call: tags, a lead score adjustment and notes (AGI scripts `tag`,
`score` and `note`, plugins). Pure checks first, then the writes; blocking (off the event loop).

Every value comes from outside (a dialplan, a plugin), so each is checked and bounded here,
once, for every way in: a clear ValueError names what is wrong, and nothing is written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from appliance.db.models import Call, CallNote, CallTag

TAG = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
MAX_TAGS = 50  # per call
MAX_NOTES = 50  # per call
NOTE_CHARS = 1000
MAX_ADJUSTMENT = 100  # the adjustment stays within -100..100 in total
ORIGIN = re.compile(r"(agi|plugin:[A-Za-z0-9_.-]{1,50}|api)")


class AnnotationError(ValueError):
    """A tag, score or note that cannot be taken; the message says why."""


def clean_tags(text: str | Iterable[str]) -> list[str]:
    """Tags from 'a,b c' or a list: lower case letters, digits, '-' and '_', 1 to 40 each."""
    words = re.split(r"[,\s]+", text) if isinstance(text, str) else list(text)
    tags = []
    for word in words:
        tag = str(word).strip().lower()
        if not tag:
            continue
        if not TAG.fullmatch(tag):
            raise AnnotationError(
                "a tag is 1 to 40 of a-z, 0-9, '-' and '_', starting with a letter or digit"
            )
        if tag not in tags:
            tags.append(tag)
    if not tags:
        raise AnnotationError("no tag given")
    if len(tags) > MAX_TAGS:
        raise AnnotationError(f"at most {MAX_TAGS} tags")
    return tags


def clean_points(text: str | int) -> int:
    """A score adjustment: a whole number from -100 to 100 ('+5', '-10', 7)."""
    raw = str(text).strip()
    if not re.fullmatch(r"[+-]?\d{1,3}", raw):
        raise AnnotationError("score: a whole number from -100 to 100")
    points = int(raw)
    if abs(points) > MAX_ADJUSTMENT:
        raise AnnotationError("score: a whole number from -100 to 100")
    return points


def clean_note(text: str) -> str:
    """A note: printable text (line breaks become spaces), 1 to 1000 characters."""
    note = " ".join("".join(ch if ch.isprintable() else " " for ch in str(text)).split())
    if not note:
        raise AnnotationError("an empty note")
    if len(note) > NOTE_CHARS:
        raise AnnotationError(f"a note is at most {NOTE_CHARS} characters")
    return note


def clean_origin(origin: str) -> str:
    if not ORIGIN.fullmatch(origin):
        raise ValueError(f"bad annotation origin {origin[:60]!r}")
    return origin


def effective_score(analysed: int | None, adjustment: int) -> int | None:
    """The lead score shown: the analysis's plus the integrators' points, within 0..100.
    None while neither says anything."""
    if analysed is None and not adjustment:
        return None
    return max(0, min(100, (analysed or 0) + adjustment))


# writes --------------------------------------------------------------------------------------
def add_tags(session: Session, call_id: str, tags: Iterable[str], origin: str) -> list[str]:
    """Tag a call; return the tags it has now (its integrator tags)."""
    wanted = clean_tags(list(tags))
    origin = clean_origin(origin)
    _call(session, call_id)
    have = set(session.scalars(select(CallTag.tag).where(CallTag.call_id == call_id)))
    new = [t for t in wanted if t not in have]
    if len(have) + len(new) > MAX_TAGS:
        raise AnnotationError(f"a call has at most {MAX_TAGS} tags")
    session.add_all(CallTag(call_id=call_id, tag=t, origin=origin) for t in new)
    session.flush()
    return sorted(have | set(new))


def remove_tags(session: Session, call_id: str, tags: Iterable[str]) -> None:
    session.execute(
        delete(CallTag).where(CallTag.call_id == call_id, CallTag.tag.in_(clean_tags(list(tags))))
    )


def adjust_score(session: Session, call_id: str, points: int | str) -> int:
    """Add points to the call's adjustment (kept within -100..100); return the adjustment."""
    call = _call(session, call_id)
    total = (call.score_adjustment or 0) + clean_points(points)
    call.score_adjustment = max(-MAX_ADJUSTMENT, min(MAX_ADJUSTMENT, total))
    session.flush()
    return call.score_adjustment


def add_note(session: Session, call_id: str, text: str, origin: str) -> int:
    """Attach a note; return its id."""
    note = clean_note(text)
    origin = clean_origin(origin)
    _call(session, call_id)
    count = session.scalar(select(func.count()).where(CallNote.call_id == call_id)) or 0
    if count >= MAX_NOTES:
        raise AnnotationError(f"a call has at most {MAX_NOTES} notes")
    row = CallNote(call_id=call_id, text=note, origin=origin)
    session.add(row)
    session.flush()
    return row.id


@dataclass(frozen=True)
class Annotations:
    tags: tuple[str, ...]
    notes: tuple[tuple[str, str], ...]  # (origin, text), oldest first
    score_adjustment: int


def of_call(session: Session, call_id: str) -> Annotations:
    call = session.get(Call, call_id)
    tags = session.scalars(select(CallTag.tag).where(CallTag.call_id == call_id).order_by("tag"))
    notes = session.execute(
        select(CallNote.origin, CallNote.text)
        .where(CallNote.call_id == call_id)
        .order_by(CallNote.id)
    )
    return Annotations(
        tuple(tags),
        tuple((o, t) for o, t in notes),
        call.score_adjustment if call is not None else 0,
    )


def _call(session: Session, call_id: str) -> Call:
    call = session.get(Call, call_id)
    if call is None:
        raise AnnotationError("no such call")
    return call
