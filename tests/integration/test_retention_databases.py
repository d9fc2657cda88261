"""The retention job's queries on SQLite and on a real PostgreSQL server: the same rows go,
the same stay."""

from __future__ import annotations

import datetime as dt
import os

from sqlalchemy import func, select

from appliance import admin
from appliance.db.engine import session_factory
from appliance.db.models import AuditEntry, Call, Delivery, Destination, DniSite, Lead, Visit
from appliance.privacy.retention_job import PrivacyRetention
from appliance.recordings.vault import RecordingVault
from tests.made_once import migrated

NOW = dt.datetime.now(dt.UTC)


def ago(days: int) -> dt.datetime:
    return NOW - dt.timedelta(days=days)


def test_each_kind_expires_alike_on_both_databases(database_url, tmp_path):
    engine = migrated(database_url)
    sessions = session_factory(engine)
    with sessions.begin() as session:
        account = admin.add_account(session, "Client", None)  # calls 730, visits 90, ...
        site = DniSite(
            account_id=account.id, name="s", key="k" * 32, origins="", replace_numbers=""
        )
        hook = Destination(account_id=account.id, name="hook", kind="webhook")
        session.add_all([site, hook])
        session.flush()
        for days, held in ((800, False), (800, True), (10, False)):
            session.add(
                Call(account_id=account.id, dialled="+12025550100", caller_number="+13125550987",
                     started_at=ago(days), legal_hold=held)
            )  # fmt: skip
        for days in (100, 10):
            session.add(
                Visit(id=f"v{days}", site_id=site.id, account_id=account.id, visitor="x",
                      started_at=ago(days), last_seen_at=ago(days), landing_page="/",
                      source_name="s")
            )  # fmt: skip
            session.add(Lead(account_id=account.id, site_id=site.id, created_at=ago(days * 4),
                             form="f", fields="{}"))  # fmt: skip
            session.add(Delivery(destination_id=hook.id, event="e", payload="{}",
                                 state="delivered", created_at=ago(days // 2)))  # fmt: skip
        session.add(AuditEntry(at=ago(800), actor="t", action="old"))
        account_id = account.id
    vault = RecordingVault(
        sessions, tmp_path / "store", tmp_path / "keys", spool_owners={os.getuid()}
    )
    job = PrivacyRetention(sessions, vault, audit_days=730)

    assert (
        job.apply(NOW, dry_run=True).removed
        == job.apply(NOW).removed
        == {
            account_id: {"calls anonymised": 1, "visits": 1, "leads": 1, "deliveries": 1},
            None: {"audit entries": 1},
        }
    )
    with sessions() as session:
        numbers = session.scalars(select(Call.caller_number).order_by(Call.started_at)).all()
        assert sorted(numbers, key=str) == ["+13125550987", "+13125550987", None]
        assert session.scalar(select(func.count()).select_from(Visit)) == 1
        assert session.scalar(select(func.count()).select_from(Lead)) == 1
        assert session.scalar(select(func.count()).select_from(Delivery)) == 1
    assert job.apply(NOW).removed == {}
    engine.dispose()
