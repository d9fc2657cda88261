"""The call log and the dashboard at scale: 1,000,000 synthetic calls over a year across 50
client accounts, on SQLite and on a real PostgreSQL side by side, read as the pages read them
(appliance/calls/log.py, appliance/calls/dashboard.py).

Figures are p50/p95 in milliseconds over repeated reads. The baseline beside the keyset page
deep in the list is the same page read with OFFSET, as a naive call log would.

    python -m bench.call_log [--calls 1000000] [--repeat 30]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import secrets
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, insert, select

from appliance import admin
from appliance.access import Principal, principal_for
from appliance.calls import dashboard
from appliance.calls import log as call_log
from appliance.db.engine import make_engine, session_factory
from appliance.db.migrate import upgrade
from appliance.db.models import Call, Campaign, User
from bench.harness import percentile
from tests.postgres_server import temporary_server

ACCOUNTS = 50
SOURCES = ("Google Ads", "Facebook", "Billboard", "Yellow pages", "Radio")
DISPOSITIONS = ("answered",) * 6 + ("no_answer", "busy", "abandoned", "failed")
NOW = dt.datetime(2026, 11, 29, 12, tzinfo=dt.UTC)


def populate(engine: Engine, calls: int, seed: int = 7) -> dict[str, int]:
    """The accounts, their numbers (a source and campaign each) and `calls` calls."""
    upgrade(engine)
    sessions = session_factory(engine)
    rng = random.Random(seed)
    numbers: list[tuple[int, int, str, str]] = []  # (number id, account id, source, campaign)
    with sessions.begin() as session:
        agency = admin.default_account(session)
        admin.add_user(session, "owner-bench", "a long bench password", "owner", agency.id)
        for a in range(ACCOUNTS):
            account = admin.add_account(session, f"Client {a}", agency.id)
            if a == 0:
                admin.add_user(session, "client-bench", "a long bench password", "client_viewer",
                               account.id)  # fmt: skip
            for n, source in enumerate(SOURCES):
                number = admin.add_number(
                    session,
                    admin.NumberRequest(f"+1202555{1000 + a * 5 + n:04d}", source=source),
                    account.id,
                )
                campaign = Campaign(source_id=number.source_id, name=f"{source} {a % 7}")
                session.add(campaign)
                session.flush()
                number.campaign_id = campaign.id
                numbers.append((number.id, account.id, source, campaign.name))
    batch: list[dict[str, object]] = []
    with engine.begin() as connection:
        for i in range(calls):
            number_id, account_id, source, campaign_name = rng.choice(numbers)
            started = NOW - dt.timedelta(seconds=rng.randrange(365 * 86400))
            disposition = rng.choice(DISPOSITIONS)
            batch.append(
                {
                    "id": secrets.token_hex(16),
                    "account_id": account_id,
                    "tracking_number_id": number_id,
                    "source_name": source,
                    "campaign_name": campaign_name,
                    "linkedid": f"{1_700_000_000 + i}.{i % 97}",
                    "dialled": "+12025550123",
                    "caller_number": f"+1312{rng.randrange(10**7):07d}",
                    "caller_name": rng.choice(("Jane", "Pat", None, "Alex Doe")),
                    "route_name": "Front desk",
                    "started_at": started,
                    "disposition": disposition,
                    "talk_seconds": rng.uniform(5, 600) if disposition == "answered" else None,
                    "ring_seconds": rng.uniform(1, 30),
                    "first_time": rng.random() < 0.4,
                    "after_hours": rng.random() < 0.2,
                    "via": "live",
                }
            )
            if len(batch) == 20_000:
                connection.execute(insert(Call), batch)
                batch.clear()
        if batch:
            connection.execute(insert(Call), batch)
    if engine.dialect.name == "sqlite":
        with engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE")
    else:
        with engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                "VACUUM ANALYZE"
            )
    return {"numbers": len(numbers)}


def principals(engine: Engine) -> tuple[Principal, Principal]:
    with session_factory(engine)() as session:
        owner = session.scalar(select(User).where(User.username == "owner-bench"))
        client = session.scalar(select(User).where(User.username == "client-bench"))
        assert owner is not None and client is not None
        return principal_for(session, owner), principal_for(session, client)


def timed(run: Callable[[], object], repeat: int) -> list[float]:
    run()  # warm the caches once, as a page in use is
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def measure(engine: Engine, repeat: int) -> dict[str, list[float]]:
    sessions = session_factory(engine)
    owner, client = principals(engine)
    filtered = call_log.CallFilter(disposition="answered", source="Google Ads")
    with sessions() as session:
        # a cursor 80 % of the way down the client's filtered list
        rows = list(call_log.every(session, client, filtered))
        deep = int(len(rows) * 0.8)
        cursor = call_log.encode_cursor(rows[deep - 1])
    since = (NOW - dt.timedelta(days=89)).date()

    def page(who: Principal, wanted: call_log.CallFilter, after: str | None) -> None:
        with sessions() as session:
            call_log.page(session, who, wanted, after, 50)

    def offset_page() -> None:
        with sessions() as session:
            query = (
                call_log._query(client, filtered)
                .order_by(Call.started_at.desc(), Call.id.desc())
                .offset(deep)
                .limit(51)
            )
            session.execute(query).all()

    def board(who: Principal, zone: str = "UTC") -> None:
        with sessions() as session:
            dashboard.build(session, who, since, NOW.date(), None, ZoneInfo(zone))

    return {
        "log page 1 (agency)": timed(lambda: page(owner, call_log.CallFilter(), None), repeat),
        "log page 1 (client)": timed(lambda: page(client, call_log.CallFilter(), None), repeat),
        "deep filtered, OFFSET": timed(offset_page, repeat),
        "deep filtered, keyset": timed(lambda: page(client, filtered, cursor), repeat),
        "dashboard 90 d (agency)": timed(lambda: board(owner), max(5, repeat // 3)),
        "dashboard 90 d (agency, NY)": timed(
            lambda: board(owner, "America/New_York"), max(5, repeat // 3)
        ),
        "dashboard 90 d (client)": timed(lambda: board(client), repeat),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as folder, temporary_server() as pg_url:
        for name, url in (
            ("SQLite", f"sqlite:///{Path(folder) / 'bench.db'}"),
            ("PostgreSQL", pg_url),
        ):
            engine = make_engine(url)
            start = time.perf_counter()
            populate(engine, args.calls)
            print(f"{name}: {args.calls} calls written in {time.perf_counter() - start:.0f} s")
            results[name] = measure(engine, args.repeat)
            engine.dispose()
    print(f"\ncall log and dashboard, {args.calls} calls, {ACCOUNTS} client accounts (ms)")
    print(f"{'case':<30}{'SQLite p50/p95':>18}{'PostgreSQL p50/p95':>22}{'PG/SQLite p95':>16}")
    for case in results["SQLite"]:
        lite, pg = results["SQLite"][case], results["PostgreSQL"][case]
        print(
            f"{case:<30}{percentile(lite, 50):>9.1f}/{percentile(lite, 95):<8.1f}"
            f"{percentile(pg, 50):>12.1f}/{percentile(pg, 95):<9.1f}"
            f"{percentile(pg, 95) / percentile(lite, 95):>10.2f}"
        )
    print("targets on SQLite: call log pages < 50 ms, dashboard < 300 ms (p95)")


if __name__ == "__main__":
    main()
