"""Erasure by person on SQLite and on a real PostgreSQL: the same rows go, the same counts are
reported, an interrupted erasure is finished by the next run, and on PostgreSQL the tables
it touched are vacuumed."""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets

import pytest
from sqlalchemy import select

from appliance import admin
from appliance.db.engine import session_factory
from appliance.db.models import (
    Call,
    DniSite,
    ErasureRequest,
    Lead,
    Transcript,
    TranscriptTurn,
    Visit,
)
from appliance.privacy import erasure
from appliance.privacy.subject import parse
from appliance.recordings import keys
from appliance.recordings.spool_files import raw_name
from appliance.recordings.vault import RecordingVault
from appliance.secrets import SecretBox
from appliance.transcription import service
from appliance.transcription.words import Word
from tests.made_once import migrated

PAT, OTHER = "+13125550111", "+13125550999"


@pytest.fixture
def box(database_url, tmp_path):
    engine = migrated(database_url)
    sessions = session_factory(engine)
    keys.create(tmp_path / "keys")
    vault = RecordingVault(sessions, tmp_path / "store", tmp_path / "keys",
                           spool_owners={os.getuid()})  # fmt: skip
    with sessions.begin() as session:
        agency = admin.default_account(session)
        account = admin.add_account(session, "Client", agency.id).id
    calls = [call(sessions, vault, tmp_path, account, n) for n in (PAT, "13125550111", OTHER)]
    now = dt.datetime.now(dt.UTC)
    with sessions.begin() as session:
        site = DniSite(account_id=account, name="s", key=secrets.token_hex(16),
                       origins="https://a.example", replace_numbers="+12025550123")  # fmt: skip
        session.add(site)
        session.flush()
        session.add(Visit(id="v" * 32, site_id=site.id, account_id=account, visitor="ab" * 16,
                          started_at=now, last_seen_at=now, landing_page="https://a.example/",
                          source_name="direct"))  # fmt: skip
        session.get(Call, calls[0]).visit_id = "v" * 32
        session.get(Call, calls[0]).attribution = "held"
        session.add(Lead(account_id=account, site_id=site.id, form="contact",
                         fields=json.dumps({"phone": "312-555-0111"})))  # fmt: skip
    yield sessions, vault, agency.id, calls
    engine.dispose()


def call(sessions, vault, tmp_path, account: int, number: str) -> str:
    call_id, linkedid = secrets.token_hex(16), f"{secrets.randbelow(10**9)}.1"
    with sessions.begin() as session:
        session.add(Call(id=call_id, linkedid=linkedid, account_id=account, dialled="+12025550123",
                         caller_number=number, disposition="answered",
                         started_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=1),
                         ended_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=1)))  # fmt: skip
    spool = tmp_path / "spool"
    spool.mkdir(exist_ok=True)
    (spool / raw_name(linkedid)).write_bytes(b"\x01\x02" * 4000)
    vault.seal(spool / raw_name(linkedid), linkedid)
    words = [Word(0, i, i + 0.5, 0.9, w) for i, w in enumerate(f"hello caller {number}".split())]
    with sessions.begin() as session:
        service.store(session, call_id, service.Result("test", 3.0, words))
    return call_id


def test_an_interrupted_erasure_is_finished_by_the_next_run(box, monkeypatch, database_url):
    sessions, vault, agency, calls = box
    secret = SecretBox(secrets.token_bytes(32))
    with sessions() as session:
        principal = erasure.scope_of(session, agency, "cli:test")
    request_id = erasure.start(sessions, secret, principal, parse("(312) 555-0111"), "cli:test")
    real, runs = erasure._erase_call, []

    def cut(*args):
        runs.append(args)
        if len(runs) == 2:
            raise RuntimeError("power cut")
        real(*args)

    monkeypatch.setattr(erasure, "_erase_call", cut)
    with pytest.raises(RuntimeError):
        erasure.run(sessions, vault, secret, request_id)
    monkeypatch.setattr(erasure, "_erase_call", real)
    report = erasure.run(sessions, vault, secret, request_id)
    assert report.removed == {"calls": 2, "recordings": 2, "transcripts": 2, "leads": 1,
                              "visits": 1}  # fmt: skip
    assert report.held == {}
    with sessions() as session:
        assert [c for c in calls if session.get(Call, c)] == [calls[2]]
        assert session.scalars(select(Transcript.call_id)).all() == [calls[2]]
        assert {t.call_id for t in session.scalars(select(TranscriptTurn))} == {calls[2]}
        assert session.scalars(select(Lead)).all() == []
        request = session.get(ErasureRequest, request_id)
        assert (request.state, request.subject_sealed) == ("done", None)
    assert erasure.run(sessions, vault, secret, request_id) == report  # done is done
    if database_url.startswith("postgresql"):
        with sessions.kw["bind"].connect() as connection:
            vacuumed = connection.exec_driver_sql(
                "SELECT relname FROM pg_stat_user_tables WHERE last_vacuum IS NOT NULL"
            ).scalars()
            assert {"calls", "recordings", "transcript_turns", "leads"} <= set(vacuumed)
