"""Storage limits per account, applied to real sealed recordings in a real database."""

import datetime as dt
import logging

import pytest
from sqlalchemy import select

from appliance import admin
from appliance.calls.routing import RoutePlan, Target
from appliance.calls.store import CallOpened, CallStore, InboundCall, NumberInfo, call_id_for
from appliance.db.engine import make_engine, session_factory
from appliance.db.migrate import upgrade
from appliance.db.models import Account, Recording
from appliance.recordings import keys
from appliance.recordings.limits import RetentionJob
from appliance.recordings.vault import RecordingVault

pytestmark = pytest.mark.integration
SECOND = 32_000  # bytes of 8 kHz 16-bit stereo audio


@pytest.fixture
def world(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/t.db")
    upgrade(engine)
    sessions = session_factory(engine)
    keys.create(tmp_path / "keys")
    vault = RecordingVault(sessions, tmp_path / "store", tmp_path / "keys")
    with sessions.begin() as session:
        account_id = admin.default_account(session).id
    yield sessions, vault, account_id, tmp_path
    engine.dispose()


def record_call(sessions, vault, account_id, tmp_path, n: int, seconds: int) -> str:
    linkedid = f"1700000000.{n}"
    call_id = call_id_for(linkedid)
    info = NumberInfo(1, account_id, None)
    call = InboundCall(linkedid, "12025550123", f"1312555{n:04d}", "")
    CallStore(sessions).write([CallOpened(call, call_id, None, "r", False, True)])
    with sessions.begin() as session:
        from appliance.db.models import Call

        session.get(Call, call_id).account_id = info.account_id
    spool = tmp_path / f"{call_id}.raw"
    spool.write_bytes(bytes(SECOND * seconds))
    vault.seal(spool, call_id)
    return call_id


def stored(sessions) -> list[str]:
    with sessions() as session:
        return sorted(session.scalars(select(Recording.call_id)))


def test_quota_erases_the_oldest_and_warns(world, caplog):
    sessions, vault, account_id, tmp_path = world
    ids = [record_call(sessions, vault, account_id, tmp_path, n, 10) for n in range(4)]
    with sessions.begin() as session:
        admin.set_recording_limits(session, account_id, 1, None, "delete_oldest")  # 1 MB
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
        admin.set_recording_limits(session, account_id, 1, None, "pause")
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
    assert table.numbers["+12025550123"].recording_paused


def test_age_limit(world):
    sessions, vault, account_id, tmp_path = world
    call_id = record_call(sessions, vault, account_id, tmp_path, 1, 1)
    with sessions.begin() as session:
        admin.set_recording_limits(session, account_id, None, 30, "delete_oldest")
    job = RetentionJob(sessions, vault)
    job.apply()
    assert stored(sessions) == [call_id]
    job.apply(now=dt.datetime.now(dt.UTC) + dt.timedelta(days=31))
    assert stored(sessions) == []


def test_recording_is_skipped_while_the_account_is_paused():
    import asyncio

    from appliance.asterisk.agi_protocol import build_request
    from appliance.calls.inbound import InboundHandler
    from appliance.calls.store import RoutingTable

    plan = RoutePlan(name="R", targets=(Target("endpoint", "desk"),), recording="always")
    submitted = []

    class Writer:
        def submit(self, item):
            submitted.append(item)

    def table(paused: bool) -> RoutingTable:
        return RoutingTable(numbers={"+12025550123": NumberInfo(1, 1, plan, paused)})

    request = build_request(
        {"agi_network_script": "inbound", "agi_arg_1": "12025550123", "agi_arg_2": "1700000000.5"}
    )
    recorded = asyncio.run(InboundHandler(Writer(), lambda: table(False))(request))
    skipped = asyncio.run(InboundHandler(Writer(), lambda: table(True))(request))
    assert recorded["APPLIANCE_RECORD"] == "yes"
    assert "APPLIANCE_RECORD" not in skipped and skipped["APPLIANCE_DIAL"] == "PJSIP/desk"
