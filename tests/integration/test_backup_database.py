"""The backup's database dump is the same whatever the backend: a dump of SQLite loads into a
real PostgreSQL and a dump of PostgreSQL into SQLite, every row of every table unchanged, the
full-text search working, tables that refer to themselves in order, and new rows taking new
ids after the restored ones."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from sqlalchemy import select

from appliance.access import the_box
from appliance.backup import dump, rows
from appliance.db.engine import make_engine, session_factory
from appliance.db.migrate import head_revision, upgrade
from appliance.db.models import Account, Call, Recording, Route
from appliance.transcription import search, service
from appliance.transcription.words import Word
from tests.hostile import STRINGS
from tests.integration.conftest import _empty

WHEN = dt.datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=dt.UTC)


@pytest.fixture
def other_url(database_url, tmp_path, request):
    """An empty database of the other kind."""
    if database_url.startswith("sqlite"):
        url = request.getfixturevalue("postgres_url")
        _empty(url)
    else:
        url = f"sqlite:///{tmp_path}/other.db"
    yield url
    _empty(url)


def fill(sessions) -> None:
    with sessions.begin() as session:
        # a child whose id is lower than its parent's: dumped in id order, loaded parents first
        session.add(Account(id=10, name="Agency", created_at=WHEN, brand_logo=b"\x89PNG\x00\xff"))
        session.add(Account(id=5, parent_id=10, name=STRINGS[0][:200], recording_paused=True))
        session.flush()
        session.add(Route(id=7, account_id=10, name="after hours"))
        session.flush()
        session.add(Route(id=3, account_id=10, name="day", after_hours_route_id=7))
        for n, text in enumerate(STRINGS[:20]):
            call_id = f"{n:032x}"
            session.add(Call(id=call_id, account_id=5, dialled="+12025550123",
                             caller_number="+13125550111", caller_name=text[:128],
                             started_at=WHEN, talk_seconds=12.345678901234))  # fmt: skip
            session.add(Recording(call_id=call_id, file_name=f"2026/03/{call_id}.rec",
                                  file_id="0" * 32, key_id="0" * 16, wrapped_key="00",
                                  audio_format="slin8-stereo", plaintext_bytes=n,
                                  seconds=1.5))  # fmt: skip
            session.flush()
            words = [Word(0, i * 0.5, i * 0.5 + 0.4, 0.9, w) for i, w in
                     enumerate(f"please book an appointment number{n}".split())]  # fmt: skip
            service.store(session, call_id, service.Result("test", 10.0, words))


def everything(engine) -> dict[str, list[list]]:
    with engine.connect() as connection:
        return {
            table.name: [
                [rows.encode(v) for v in row]
                for row in connection.execute(select(table).order_by(*table.primary_key.columns))
            ]
            for table in dump.tables(connection)
        }


def test_a_dump_restores_onto_the_other_backend_unchanged(database_url, other_url):
    source = make_engine(database_url)
    upgrade(source)
    fill(session_factory(source))
    out = io.BytesIO()
    with source.connect() as connection, connection.begin():
        dumped = dump.dump(connection, out)
    assert dumped.revision == head_revision() and dumped.counts["calls"] == 20
    assert len(dumped.recordings) == 20

    target = make_engine(other_url)
    upgrade(target, dumped.revision)
    with target.begin() as connection:
        loaded = dump.load(connection, io.BytesIO(out.getvalue()), dumped.revision)
    assert loaded.counts == dumped.counts
    assert loaded.file_names == {name for name, _ in dumped.recordings}
    assert everything(target) == everything(source)

    sessions = session_factory(target)
    with sessions() as session:
        hits = search.search(session, the_box(session, "test"), "appointment number7")
        assert [h.call_id for h in hits] == [f"{7:032x}"]
        assert session.get(Account, 10).brand_logo == b"\x89PNG\x00\xff"
        assert session.get(Call, f"{0:032x}").started_at.replace(tzinfo=dt.UTC) == WHEN
    with sessions.begin() as session:  # ids go on after the restored ones
        session.add(Account(name="New client", parent_id=10))
        session.add(Route(account_id=10, name="new"))
    with sessions() as session:
        assert max(session.scalars(select(Account.id))) == 11
        assert max(session.scalars(select(Route.id))) == 8
    source.dispose()
    target.dispose()
