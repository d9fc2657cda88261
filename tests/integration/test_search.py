"""Full-text search over transcripts on SQLite (FTS5) and on a real PostgreSQL: every word must
be said in one turn, results are kept to the accounts a principal sees, nothing a user types is
query syntax, and an erased recording leaves the index with its transcript."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select, text

from appliance import admin
from appliance.access import principal_for
from appliance.db.engine import session_factory
from appliance.db.models import Call, Recording, User
from appliance.transcription import search, service
from appliance.transcription.words import Word
from tests.hostile import STRINGS
from tests.made_once import migrated, migrated_sqlite

pytestmark = pytest.mark.usefixtures("cheap_passwords")  # users are set-up here


def said(speaker: int, start: float, sentence: str) -> list[Word]:
    return [
        Word(speaker, start + i * 0.5, start + i * 0.5 + 0.4, 0.9, w)
        for i, w in enumerate(sentence.split())
    ]


@pytest.fixture
def world(database_url):
    engine = migrated(database_url)
    sessions = session_factory(engine)
    with sessions.begin() as session:
        agency = admin.default_account(session)
        a = admin.add_account(session, "Client A", agency.id)
        b = admin.add_account(session, "Client B", agency.id)
        users = {}
        for name, account in (("boss", agency.id), ("alice", a.id), ("bob", b.id)):
            users[name] = admin.add_user(session, name, "a-long-password", "analyst", account).id
        for call_id, account, words in (
            ("call-a", a.id, said(0, 0.0, "I would like to book an appointment on Tuesday")
             + said(1, 5.0, "Of course, the clinic opens at nine")),
            ("call-b", b.id, said(0, 0.0, "How much does a cleaning cost")
             + said(1, 4.0, "It costs eighty dollars and includes an appointment")),
            ("call-ko", a.id, said(0, 0.0, "안녕하세요 예약 문의") + said(1, 3.0, "병원 확인 네")),
        ):  # fmt: skip
            session.add(Call(id=call_id, account_id=account, dialled="+12025550123",
                             caller_number="+12025550100"))  # fmt: skip
            session.add(Recording(call_id=call_id, file_name=f"{call_id}.rec", file_id="0" * 32,
                                  key_id="0" * 16, wrapped_key="00", audio_format="slin8-stereo",
                                  plaintext_bytes=0, seconds=10.0))  # fmt: skip
            session.flush()
            service.store(session, call_id, service.Result("test", 10.0, words))
    yield sessions, users
    engine.dispose()


def find(sessions, users, who: str, query: str) -> list[search.Hit]:
    with sessions() as session:
        principal = principal_for(session, session.get(User, users[who]))
        return search.search(session, principal, query)


def test_every_word_in_one_turn_with_its_time_and_a_marked_snippet(world):
    sessions, users = world
    (hit,) = find(sessions, users, "boss", "book Appointment")
    assert (hit.call_id, hit.speaker, hit.start) == ("call-a", 0, 0.0)
    assert [t for t, mark in hit.snippet if mark] == ["book", "appointment"]
    assert "".join(t for t, _ in hit.snippet).strip() == (
        "I would like to book an appointment on Tuesday"
    )
    assert [h.call_id for h in find(sessions, users, "boss", "appointment")] == [
        "call-a",
        "call-b",
    ] or {h.call_id for h in find(sessions, users, "boss", "appointment")} == {"call-a", "call-b"}
    (clinic,) = find(sessions, users, "boss", "clinic nine")
    assert (clinic.speaker, clinic.start) == (1, 5.0)
    assert find(sessions, users, "boss", "appointment clinic") == []  # never in one turn
    (korean,) = find(sessions, users, "boss", "예약")
    assert korean.call_id == "call-ko"


def test_results_are_kept_to_the_accounts_one_may_see(world):
    sessions, users = world
    assert {h.call_id for h in find(sessions, users, "alice", "appointment")} == {"call-a"}
    assert {h.call_id for h in find(sessions, users, "bob", "appointment")} == {"call-b"}
    assert find(sessions, users, "bob", "clinic") == []


SYNTAX = ['"', 'appointment"', "appointment*", "NEAR(book appointment)", "book OR cost",
          "-appointment", "text:appointment", "^book", "(book", "{book}", "a AND", "*"]  # fmt: skip


def test_nothing_typed_is_query_syntax_and_hostile_queries_answer_or_say_why(world):
    sessions, users = world
    for query in SYNTAX + STRINGS:
        try:
            hits = find(sessions, users, "boss", query)
        except search.BadQuery as exc:
            assert str(exc), query
            continue
        words = search.terms(query)
        for hit in hits:  # each hit says every word typed, as words
            said_words = set(search.normalise("".join(t for t, _ in hit.snippet)))
            assert set(words) <= said_words, (query, hit)
    assert {h.call_id for h in find(sessions, users, "boss", "book OR cost")} == set()
    assert [h.call_id for h in find(sessions, users, "boss", "appointment*")] != []


def test_an_erased_recording_leaves_the_index(world):
    sessions, users = world
    with sessions.begin() as session:
        session.execute(delete(Recording).where(Recording.call_id == "call-a"))
    assert find(sessions, users, "boss", "tuesday") == []
    with sessions() as session:
        if session.get_bind().dialect.name == "sqlite":
            left = session.scalar(
                text("SELECT count(*) FROM transcript_search WHERE transcript_search MATCH :q"),
                {"q": '"tuesday"'},
            )
            assert left == 0
            assert session.scalar(text("SELECT count(*) FROM transcript_search")) == 4
        assert session.scalars(select(Call.id).order_by(Call.id)).all() == [
            "call-a", "call-b", "call-ko"
        ]  # fmt: skip


def test_compaction_leaves_no_trace_of_an_erased_transcript_in_the_file(tmp_path):
    engine = migrated_sqlite(tmp_path / "t.db")
    sessions = session_factory(engine)
    secret = "zanzibarquokka"
    with sessions.begin() as session:
        for call_id, sentence in (("gone", f"my secret word is {secret}"), ("kept", "hello")):
            session.add(Call(id=call_id, dialled="+12025550123"))
            session.add(Recording(call_id=call_id, file_name=f"{call_id}.rec", file_id="0" * 32,
                                  key_id="0" * 16, wrapped_key="00", audio_format="slin8-stereo",
                                  plaintext_bytes=0, seconds=10.0))  # fmt: skip
            session.flush()
            service.store(session, call_id, service.Result("test", 10.0, said(0, 0.0, sentence)))
    with sessions.begin() as session:
        session.execute(delete(Recording).where(Recording.call_id == "gone"))
    with sessions.begin() as session:
        search.compact(session)
    with sessions.begin() as session:
        session.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    engine.dispose()
    for path in tmp_path.glob("t.db*"):
        assert secret.encode() not in path.read_bytes(), path
