"""Full-text search over what was said, kept to the accounts a principal may see: SQLite FTS5
(migration 0015) or PostgreSQL full text ('simple': no stemming, any language). Each hit is
one turn of a dialogue: the call, who spoke, when in the recording, and the words around
the match."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, TextClause, literal_column, select, text
from sqlalchemy.orm import Session

from appliance.access import Principal
from appliance.db.models import Call, TranscriptTurn
from appliance.transcription.analysis import normalise

MAX_QUERY = 200  # characters
MAX_TERMS = 12
AROUND = 8  # words of context on each side of the first match


class BadQuery(ValueError):
    """A search that cannot be run; the message says why."""


@dataclass(frozen=True)
class Hit:
    call_id: str
    account_id: int | None
    started_at: dt.datetime
    caller_number: str | None
    speaker: int
    start: float  # seconds into the recording
    snippet: tuple[tuple[str, bool], ...]  # (text, is it a match), to be shown escaped


def terms(query: str) -> list[str]:
    if len(query) > MAX_QUERY:
        raise BadQuery(f"at most {MAX_QUERY} characters")
    found = list(dict.fromkeys(normalise(query)))
    if not found:
        raise BadQuery("type a word to search for")
    if len(found) > MAX_TERMS:
        raise BadQuery(f"at most {MAX_TERMS} words")
    return found


def _fts5(words: list[str]) -> str:
    """Every word, as a quoted FTS5 string (nothing the user typed is FTS5 syntax)."""
    return " ".join('"' + w.replace('"', '""') + '"' for w in words)


def _matches(session: Session, words: list[str]) -> ColumnElement[bool] | TextClause:
    """The condition on transcript_turns that it says every word."""
    if session.get_bind().dialect.name == "postgresql":
        return text(
            "to_tsvector('simple', transcript_turns.text) @@ plainto_tsquery('simple', :q)"
        ).bindparams(q=" ".join(words))
    found: Select[Any] = (
        select(literal_column("rowid"))
        .select_from(text("transcript_search"))
        .where(text("transcript_search MATCH :q").bindparams(q=_fts5(words)))
    )
    return TranscriptTurn.id.in_(found)


def snippet(turn_text: str, words: list[str]) -> tuple[tuple[str, bool], ...]:
    """The turn's words around the first match, each marked whether it matches."""
    tokens = turn_text.split()
    marks = [bool(set(normalise(t)) & set(words)) for t in tokens]
    first = marks.index(True) if True in marks else 0
    lo, hi = max(0, first - AROUND), min(len(tokens), first + AROUND + 1)
    parts: list[tuple[str, bool]] = [("… ", False)] if lo else []
    for token, mark in zip(tokens[lo:hi], marks[lo:hi], strict=True):
        parts.append((token, mark))
        parts.append((" ", False))
    if hi < len(tokens):
        parts.append(("…", False))
    return tuple(parts)


def search(session: Session, principal: Principal, query: str, limit: int = 50) -> list[Hit]:
    """The newest turns that say every word of `query`, in calls this principal may see."""
    words = terms(query)
    rows = session.execute(
        select(TranscriptTurn, Call.account_id, Call.started_at, Call.caller_number)
        .join(Call, Call.id == TranscriptTurn.call_id)
        .where(_matches(session, words), principal.where(Call.account_id))
        .order_by(Call.started_at.desc(), TranscriptTurn.start)
        .limit(limit)
    ).all()
    return [
        Hit(
            turn.call_id,
            account,
            started,
            number,
            turn.speaker,
            turn.start,
            snippet(turn.text, words),
        )
        for turn, account, started, number in rows
    ]


def compact(session: Session) -> None:
    """Merge SQLite's full-text index into one segment: the words of erased transcripts, only
    marked deleted until then, are gone from the file (secure_delete overwrites the freed
    pages). PostgreSQL's index needs nothing (VACUUM)."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(
            text("INSERT INTO transcript_search(transcript_search) VALUES ('optimize')")
        )
