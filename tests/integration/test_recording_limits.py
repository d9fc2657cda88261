"""Storage limits per account, applied to real sealed recordings in a real database."""

import datetime as dt
import logging
import os

import pytest
from sqlalchemy import select

from appliance import admin
from appliance.calls.dialplan import Settings, compile_routes
from appliance.calls.store import CallStore
from appliance.db.engine import session_factory
from appliance.db.models import Account, Call, Recording
from appliance.recordings import keys
from appliance.recordings.limits import RetentionJob
from appliance.recordings.vault import RecordingVault
from appliance.vocabulary import new_call_id
from tests.made_once import migrated_sqlite

SECOND = 32_000  # bytes of 8 kHz 16-bit stereo audio


@pytest.fixture
def world(tmp_path):
    engine = migrated_sqlite(tmp_path / "t.db")
    sessions = session_factory(engine)
    keys.create(tmp_path / "keys")
    vault = RecordingVault(
        sessions, tmp_path / "store", tmp_path / "keys", spool_owners={os.getuid()}
    )
    with sessions.begin() as session:
        account_id = admin.default_account(session).id
    yield sessions, vault, account_id, tmp_path
    engine.dispose()


def record_call(sessions, vault, account_id, tmp_path, n: int, seconds: int) -> str:
    linkedid, call_id = f"1700000000.{n}", new_call_id()
    with sessions.begin() as session:
        session.add(
            Call(id=call_id, linkedid=linkedid, dialled="+12025550123", account_id=account_id)
        )
    spool = tmp_path / f"L{linkedid}.raw"
    spool.write_bytes(bytes(SECOND * seconds))
    vault.seal(spool, linkedid)
    return call_id


def stored(sessions) -> list[str]:
    with sessions() as session:
        return sorted(session.scalars(select(Recording.call_id)))


def test_quota_erases_the_oldest_and_warns(world, caplog):
    sessions, vault, account_id, tmp_path = world
    ids = [record_call(sessions, vault, account_id, tmp_path, n, 10) for n in range(4)]
    with sessions.begin() as session:
        admin.set_recording_limits(session, account_id, 1, None, "delete_oldest", "test")  # 1 MB
    with caplog.at_level(logging.WARNING):
        verdicts = RetentionJob(sessions, vault).apply()
    assert verdicts[account_id].delete == (ids[0],)  # 4 x 320 kB > 1 MB: the oldest goes
    assert stored(sessions) == sorted(ids[1:])
    assert not list((tmp_path / "store").rglob(f"{ids[0]}.rec"))
    assert "ALERT account 1: recordings use 1.0 MB" in caplog.text  # 960 kB: over 90 %


def test_full_account_with_pause_stops_recording_new_calls(world, caplog):
    sessions, vault, account_id, tmp_path = world
    for n in range(2):
        record_call(sessions, vault, account_id, tmp_path, n, 20)
    with sessions.begin() as session:
        admin.set_recording_limits(session, account_id, 1, None, "pause", "test")
    with caplog.at_level(logging.WARNING):
        RetentionJob(sessions, vault).apply()
    assert len(stored(sessions)) == 2
    assert "recording paused: storage full" in caplog.text and "ALERT account" in caplog.text
    with sessions() as session:
        assert session.get(Account, account_id).recording_paused
    with sessions.begin() as session:
        admin.add_route(session, admin.RouteRequest("R", endpoints=["desk"], recording="always"))
        admin.add_number(session, admin.NumberRequest("+12025550123", route="R"))
    table = CallStore(sessions).routing_table()
    assert table.paused_accounts == {account_id}
    compiled = compile_routes(table, Settings("appliance-inbound", "agi://127.0.0.1:573"))
    assert "appliance-record" not in compiled.text  # calls connect, unrecorded, until there is room


def test_age_limit(world):
    sessions, vault, account_id, tmp_path = world
    call_id = record_call(sessions, vault, account_id, tmp_path, 1, 1)
    with sessions.begin() as session:
        admin.set_recording_limits(session, account_id, None, 30, "delete_oldest", "test")
    job = RetentionJob(sessions, vault)
    job.apply()
    assert stored(sessions) == [call_id]
    job.apply(now=dt.datetime.now(dt.UTC) + dt.timedelta(days=31))
    assert stored(sessions) == []
