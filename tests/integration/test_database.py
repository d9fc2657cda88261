"""Schema and migrations, on SQLite and on a real PostgreSQL server."""

import dataclasses
import datetime as dt

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, inspect, select

from appliance import admin
from appliance.calls.model import CallStarted
from appliance.calls.outcome import CallOutcome
from appliance.calls.store import CallStore
from appliance.db.engine import make_engine, session_factory
from appliance.db.migrate import current_revision, head_revision, modelled, upgrade
from appliance.db.models import Base, Call, Job
from appliance.secrets import SecretBox
from appliance.vocabulary import is_call_id

pytestmark = pytest.mark.usefixtures("cheap_passwords")  # users are set-up here


@pytest.fixture
def engine(database_url):
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def test_migrations_build_exactly_the_models(engine):
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"include_name": modelled})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_upgrade_is_idempotent_and_keeps_data(engine):
    upgrade(engine)
    with session_factory(engine).begin() as session:
        admin.add_user(session, "keep-me", "a-long-password", "admin")
    upgrade(engine)
    assert "users" in inspect(engine).get_table_names()
    with session_factory(engine)() as session:
        assert session.scalar(select(Call).limit(1)) is None
        assert admin.default_account(session).name == "Agency"


def test_call_store_routes_and_records_once_per_linkedid(engine):
    upgrade(engine)
    sessions = session_factory(engine)
    with sessions.begin() as session:
        admin.add_trunk(
            session, SecretBox(b"k" * 32), admin.TrunkRequest("carrier", "ip", "127.0.0.1")
        )
        admin.add_route(
            session, admin.RouteRequest("Flyer", forward_to=["+12025550199"], trunk="carrier")
        )
        admin.add_number(session, admin.NumberRequest("+12025550123", route="Flyer"))
    store = CallStore(sessions)
    table = store.routing_table()
    (info,) = table.numbers
    assert info.e164 == "+12025550123"
    assert info.route is not None and info.route.targets[0].trunk == "carrier"
    call_id = "a" * 32
    started = CallStarted(
        linkedid="1700000000.7",
        call_id=call_id,
        dialled="12025550123",
        caller_number="13125550111",
        caller_name="Jane",
        started=1.0,
        number_id=info.id,
        route_id=info.route.id,
        after_hours=False,
    )
    assert store.write([started, started]) == [(call_id, True), (call_id, False)]  # once news
    outcome = CallOutcome(
        linkedid="1700000000.7",
        dialled="12025550123",
        caller_number="13125550111",
        caller_name="Jane",
        started=1.0,
        ended=31.0,
        answered=6.0,
        ring_started=2.0,
        disposition="answered",
        hangup_party="caller",
    )
    assert store.write([outcome, outcome]) == [(call_id, True), (call_id, False)]
    with sessions() as session:
        (row,) = session.scalars(select(Call)).all()
    assert (row.id, row.caller_name, row.route_name, row.first_time, row.via) == (
        call_id,
        "Jane",
        "Flyer",
        True,
        "live",
    )
    assert (row.dialled, row.tracking_number_id, row.account_id) == ("+12025550123", info.id, 1)
    assert (row.talk_seconds, row.ring_seconds, row.disposition) == (25.0, 4.0, "answered")


def test_every_moment_comes_back_in_utc_with_its_zone(engine):
    """SQLite keeps no zone: the column type stores UTC and gives it back aware, as
    PostgreSQL does; a moment written in another zone, or naive (taken as UTC), is the same
    instant read back."""
    upgrade(engine)
    paris = dt.timezone(dt.timedelta(hours=1))
    written = {
        "aware": dt.datetime(2026, 3, 1, 13, 30, tzinfo=paris),
        "naive": dt.datetime(2026, 3, 1, 12, 30),
    }
    with session_factory(engine).begin() as session:
        for key, moment in written.items():
            session.add(Job(kind="k", key=key, run_after=moment))
    with session_factory(engine)() as session:
        read = {key: moment for key, moment in session.execute(select(Job.key, Job.run_after))}
        (newest,) = session.execute(select(func.max(Job.run_after))).scalars()
        before = {
            minute: set(session.scalars(select(Job.key).where(Job.run_after < at(minute))))
            for minute in (29, 31)
        }
    instant = dt.datetime(2026, 3, 1, 12, 30, tzinfo=dt.UTC)
    assert read == {"aware": instant, "naive": instant}
    assert all(m.utcoffset() == dt.timedelta(0) for m in read.values())
    assert newest == instant and newest.tzinfo is not None
    assert before == {29: set(), 31: {"aware", "naive"}}  # compared as instants


def at(minute: int) -> dt.datetime:
    """12:MM UTC on 1 March 2026, written as 13:MM in Paris."""
    return dt.datetime(2026, 3, 1, 13, minute, tzinfo=dt.timezone(dt.timedelta(hours=1)))


def test_a_call_learnt_from_the_cdrs_gets_a_random_id_and_its_number(engine):
    upgrade(engine)
    sessions = session_factory(engine)
    with sessions.begin() as session:
        admin.add_number(session, admin.NumberRequest("+12025550123"))
    outcome = CallOutcome(
        linkedid="1700000000.9",
        dialled="12025550123",
        caller_number="1",
        caller_name="",
        started=1.0,
        ended=2.0,
        answered=None,
        ring_started=None,
        disposition="abandoned",
        reconciled=True,
    )
    ((call_id, finished),) = CallStore(sessions).write([outcome])
    assert finished and is_call_id(call_id)
    with sessions() as session:
        call = session.get(Call, call_id)
        assert (call.via, call.dialled, call.account_id) == ("reconciled", "+12025550123", 1)
        assert call.tracking_number_id is not None


def test_a_released_number_takes_no_calls_and_keeps_its_calls(engine):
    upgrade(engine)
    sessions = session_factory(engine)
    with sessions.begin() as session:
        admin.add_number(session, admin.NumberRequest("+12025550123", source="Flyer"))
    store = CallStore(sessions)
    (info,) = store.routing_table().numbers
    before = CallOutcome(
        linkedid="1700000000.1",
        dialled="12025550123",
        caller_number="13125550111",
        caller_name="Jane",
        started=1.0,
        ended=3.0,
        answered=None,
        ring_started=None,
        disposition="no_answer",
        hangup_party="caller",
    )
    store.write([before])
    with sessions.begin() as session:
        admin.release_number(session, "+12025550123", "test")
    assert store.routing_table().numbers == ()
    after = dataclasses.replace(before, linkedid="1700000000.2", started=5.0, ended=6.0)
    store.write([after])
    with sessions() as session:
        calls = {c.linkedid: c for c in session.scalars(select(Call))}
    assert calls["1700000000.1"].tracking_number_id == info.id  # the attribution stays
    assert calls["1700000000.2"].tracking_number_id is None  # a released number is nobody's


def test_the_dashboard_counts_the_same_on_both_databases(engine):
    """Days are the same days on SQLite (UTC text) and PostgreSQL (timestamptz) alike."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    from appliance.access import principal_for
    from appliance.calls import dashboard
    from appliance.db.models import Campaign, User

    upgrade(engine)
    sessions = session_factory(engine)
    with sessions.begin() as session:
        owner = admin.add_user(session, "owner-x", "a-long-password", "owner")
        number = admin.add_number(session, admin.NumberRequest("+12025550123", source="Radio"))
        campaign = Campaign(source_id=number.source_id, name="Spring")
        session.add(campaign)
        session.flush()
        number.campaign_id = campaign.id
        for hour, disposition in ((23, "answered"), (25, "no_answer"), (26, "answered")):
            session.add(
                Call(
                    dialled="+12025550123",
                    tracking_number_id=number.id,
                    account_id=number.account_id,
                    started_at=dt.datetime(2026, 3, 1, tzinfo=dt.UTC) + dt.timedelta(hours=hour),
                    disposition=disposition,
                    first_time=hour == 23,
                    source_name="Radio",  # as the call store keeps it
                    campaign_name="Spring",
                )
            )
        number.source_id = None  # a later change to the number does not rewrite history
        session.add(Call(dialled="+12025550000", started_at=dt.datetime(2026, 3, 2, tzinfo=dt.UTC)))
    with sessions() as session:
        who = principal_for(session, session.get(User, owner.id))
        board = dashboard.build(session, who, dt.date(2026, 3, 1), dt.date(2026, 3, 2))
    assert (board.calls, board.answered, board.first_time) == (4, 2, 1)
    assert board.per_day == {
        "Radio": {"2026-03-01": 1, "2026-03-02": 2},
        dashboard.NO_SOURCE: {"2026-03-02": 1},
    }
    assert [(r.name, r.calls, r.answered) for r in board.campaigns] == [("Spring", 3, 2)]
    with sessions() as session:  # 23:00 and 01:00 UTC are the evening before in New York
        who = principal_for(session, session.get(User, owner.id))
        zone = ZoneInfo("America/New_York")
        local = dashboard.build(session, who, dt.date(2026, 3, 1), dt.date(2026, 3, 2), None, zone)
    assert local.per_day == {
        "Radio": {"2026-03-01": 3},
        dashboard.NO_SOURCE: {"2026-03-01": 1},
    }


def test_a_call_keeps_the_marketing_it_came_in_under(engine):
    from appliance.access import the_box
    from appliance.calls import log as call_log
    from appliance.db.models import Campaign, Source

    upgrade(engine)
    sessions = session_factory(engine)
    with sessions.begin() as session:
        number = admin.add_number(session, admin.NumberRequest("+12025550123", source="Radio"))
        session.get(Source, number.source_id).medium = "broadcast"
        campaign = Campaign(source_id=number.source_id, name="Spring")
        session.add(campaign)
        session.flush()
        number.campaign_id = campaign.id
    store = CallStore(sessions)
    (info,) = store.routing_table().numbers
    started = CallStarted(
        linkedid="1700000000.9", call_id="b" * 32, dialled="12025550123",
        caller_number="13125550111", caller_name="Jane", started=1.0, number_id=info.id,
        route_id=None, after_hours=False,
    )  # fmt: skip
    store.write([started])
    with sessions.begin() as session:  # later the number is given to another source
        admin.edit_number(session, "+12025550123", "test", source="Billboard")
    with sessions() as session:
        (row,), _ = call_log.page(session, the_box(session, "test"), call_log.CallFilter())
        by_source = call_log.page(
            session, the_box(session, "test"), call_log.CallFilter(source="Radio")
        )[0]
    assert (row.source, row.medium, row.campaign) == ("Radio", "broadcast", "Spring")
    assert [r.id for r in by_source] == ["b" * 32]


def test_a_second_sqlite_engine_keeps_the_first_ones_locks(tmp_path):
    """Creating an engine never opens and closes an existing database file: that would drop
    the process's POSIX locks on it, another process would then take itself for the last
    user, remove the WAL under the first engine, and its next read fails."""
    import sqlite3
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path}/t.db"
    first = make_engine(url)
    count = "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute('SELECT count(*) FROM t').fetchone()[0])"  # noqa: E501

    def rows_seen_by_another_process() -> int:
        out = subprocess.run(
            [sys.executable, "-c", count, str(tmp_path / "t.db")],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        return int(out.stdout)

    try:
        with first.connect() as held:  # this process has the database open
            held.exec_driver_sql("CREATE TABLE t (x INTEGER)")
            held.exec_driver_sql("INSERT INTO t VALUES (1)")
            held.commit()
            make_engine(url).dispose()
            assert rows_seen_by_another_process() == 1
            held.exec_driver_sql("INSERT INTO t VALUES (2)")
            held.commit()
            assert rows_seen_by_another_process() == 2
    finally:
        first.dispose()
    with sqlite3.connect(tmp_path / "t.db") as db:
        assert db.execute("SELECT count(*) FROM t").fetchone() == (2,)


def test_schema_0017_renames_call_finished_to_call_ended_and_back(engine):
    """Webhooks subscribed to `call.finished` keep getting the call's end, as `call.ended`."""
    from alembic import command
    from sqlalchemy import text

    from appliance.db.migrate import alembic_config

    upgrade(engine, "0016")
    with session_factory(engine).begin() as session:
        agency = admin.default_account(session).id
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO destinations (account_id, name, kind, events, settings, active,"
                " created_at) VALUES (:agency, 'crm', 'webhook', :events, '{}', :on, :now)"
            ),
            {
                "agency": agency,
                "events": "lead.created call.finished",
                "on": True,
                "now": "2026-11-30 00:00:00",
            },
        )
    upgrade(engine)
    with engine.connect() as connection:
        events = connection.scalar(text("SELECT events FROM destinations"))
    assert events == "lead.created call.ended"
    command.downgrade(alembic_config(engine), "0016")
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT events FROM destinations")) == events.replace(
            "call.ended", "call.finished"
        )


def test_schema_0018_moves_sign_in_locks_to_networks_and_back_keeping_the_users(engine):
    """Users and their sessions outlive the column that goes (a table copy would have dropped
    `users` and, with it, every row that cascades from it)."""
    from alembic import command
    from sqlalchemy import text

    from appliance.db.migrate import alembic_config

    upgrade(engine, "0017")
    with session_factory(engine).begin() as session:
        agency = admin.default_account(session).id
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO users (account_id, username, password_hash, role,"
                " must_change_password, created_at, locked_until)"
                " VALUES (:agency, 'keep-me', 'x', 'admin', :no, :now, :now)"
            ),
            {"agency": agency, "no": False, "now": "2026-12-01 00:00:00"},
        )
        connection.execute(
            text(
                "INSERT INTO web_sessions (token_hash, user_id, created_at, last_seen_at)"
                " SELECT 'h', id, :now, :now FROM users WHERE username = 'keep-me'"
            ),
            {"now": "2026-12-01 00:00:00"},
        )
    upgrade(engine)
    columns = {c["name"] for c in inspect(engine).get_columns("users")}
    assert "failed_at" in columns and "locked_until" not in columns
    assert "signin_failures" in inspect(engine).get_table_names()
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT count(*) FROM web_sessions")) == 1
    command.downgrade(alembic_config(engine), "0017")
    columns = {c["name"] for c in inspect(engine).get_columns("users")}
    assert "locked_until" in columns and "failed_at" not in columns
    assert "signin_failures" not in inspect(engine).get_table_names()
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT count(*) FROM web_sessions")) == 1
        assert connection.scalar(text("SELECT username FROM users")) == "keep-me"


def test_schema_0019_keeps_a_short_reason_of_each_failed_delivery(engine):
    """Errors stored before 0019 quoted what answered (a banner) and the whole address: each
    becomes the fixed reason the outbox keeps now; fixed phrases stay as they were."""
    from sqlalchemy import text

    upgrade(engine, "0018")
    with session_factory(engine).begin() as session:
        agency = admin.default_account(session).id
    stored = {
        "ClientResponseError: 400, message=\"Bad status line:\\n  b'Asterisk Call Manager/11.0.0'"
        "\", url='http://127.0.0.1:5038/hooks/T0-secret'": "the answer is not HTTP",
        "ClientResponseError: 400, message=\"Bad status line: b'220 mail.example ESMTP'\"": (
            "the answer is not HTTP"
        ),
        "ClientConnectorError: Cannot connect to host 10.0.0.1:443 ssl:default": (
            "could not connect"
        ),
        "ClientConnectorDNSError: Cannot connect to host crm.example:443": (
            "the name does not resolve"
        ),
        "ServerDisconnectedError: Server disconnected": "closed without an answer",
        "TimeoutError: ": "no answer in time",
        "SomethingNew: what it said": "the connection failed",
        "Google Ads refused it: The imported gclid could not be decoded.": (
            "Google Ads refused it (partial failure)"
        ),
        "answered 500": "answered 500",
        "not sent: no Google click id (gclid, gbraid or wbraid)": (
            "not sent: no Google click id (gclid, gbraid or wbraid)"
        ),
        "its secrets cannot be opened: add the destination again": (
            "its secrets cannot be opened: add the destination again"
        ),
        "KeyError": "KeyError",
    }
    with engine.begin() as connection:
        destination = connection.execute(
            text(
                "INSERT INTO destinations (account_id, name, kind, events, settings, active,"
                " created_at) VALUES (:agency, 'crm', 'webhook', 'call.ended', '{}', :on, :now)"
                " RETURNING id"
            ),
            {"agency": agency, "on": True, "now": "2026-12-01 00:00:00"},
        ).scalar_one()
        for error in [*stored, None]:
            connection.execute(
                text(
                    "INSERT INTO deliveries (destination_id, event, payload, state, attempts,"
                    " next_attempt_at, last_error, created_at) VALUES (:d, 'call.ended', '{}',"
                    " 'parked', 10, :now, :error, :now)"
                ),
                {"d": destination, "error": error, "now": "2026-12-01 00:00:00"},
            )
    upgrade(engine)
    with engine.connect() as connection:
        kept = connection.execute(text("SELECT last_error FROM deliveries ORDER BY id")).scalars()
        assert list(kept) == [*stored.values(), None]
