"""Deleting a client account: disabled at once (sign-in, sessions, tokens, tracking, outbox,
recording), erased after the grace period (recordings crypto-erased, rows gone, nothing left
in the database file or its WAL), cancellable until then; the Privacy page for agency owners
and admins only."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from appliance import accounts
from appliance.admin import AdminError
from appliance.attribution.dni import Dni
from appliance.calls.store import CallStore
from appliance.config import DestinationsConfig
from appliance.conversions.outbox import Outbox
from appliance.db.models import (
    Account,
    AuditEntry,
    Call,
    Delivery,
    Destination,
    DniSite,
    Recording,
    User,
)
from appliance.privacy import account_deletion
from appliance.secrets import SecretBox
from tests.web_world import PASSWORD, Browser

CLIENT_CALLER = "+13125550177"
MARKUP = '<img src=x onerror="alert(1)">'


def request_deletion(world, key: str = "a", now: dt.datetime | None = None):
    with world.sessions.begin() as session:
        return account_deletion.request(session, world.accounts[key], "test", now=now)


def database_bytes(world) -> bytes:
    folder = Path(world.sessions.kw["bind"].url.database).parent
    return b"".join(p.read_bytes() for p in folder.glob("web.db*"))


def test_only_client_accounts_are_deleted_and_the_grace_is_bounded(world):
    with world.sessions.begin() as session:
        with pytest.raises(AdminError, match="agency account cannot be deleted"):
            account_deletion.request(session, world.accounts["agency"], "test")
        with pytest.raises(AdminError, match="no account 999"):
            account_deletion.request(session, 999, "test")
        for days in (0, 366, -1):
            with pytest.raises(AdminError, match="1 to 365 days"):
                account_deletion.request(session, world.accounts["a"], "test", days)
        with pytest.raises(AdminError, match="is not to be deleted"):
            account_deletion.cancel(session, world.accounts["a"], "test")
    request_deletion(world)
    with world.sessions.begin() as session, pytest.raises(AdminError, match="already"):
        account_deletion.request(session, world.accounts["a"], "test")


def test_a_deleted_account_is_disabled_at_once(world):
    with world.sessions.begin() as session:
        site = DniSite(account_id=world.accounts["a"], name="A", key="k" * 32,
                       origins="https://a.example", replace_numbers="+12025550199")  # fmt: skip
        session.add(site)
        destination = Destination(account_id=world.accounts["a"], name="hook", kind="webhook",
                                  url="https://hooks.example/a")  # fmt: skip
        session.add(destination)
        session.flush()
        session.add(Delivery(destination_id=destination.id, event="call.ended", payload="{}"))
    signed_in = accounts.sign_in(world.sessions, "viewer-a", PASSWORD, None)
    assert signed_in is not None
    assert accounts.session_user(world.sessions, signed_in.token) is not None
    assert accounts.token_user(world.sessions, world.tokens["viewer-a"]) is not None
    outbox = Outbox(world.sessions, SecretBox(b"k" * 32), DestinationsConfig())
    assert [s.account_id for s in Dni(world.sessions).read_sites()] == [world.accounts["a"]]

    request_deletion(world)

    assert accounts.sign_in(world.sessions, "viewer-a", PASSWORD, None) is None
    assert accounts.session_user(world.sessions, signed_in.token) is None
    assert accounts.token_user(world.sessions, world.tokens["viewer-a"]) is None
    assert accounts.sign_in(world.sessions, "viewer-b", PASSWORD, None) is not None  # others go on
    assert world.accounts["a"] in CallStore(world.sessions).routing_table().paused_accounts
    assert world.accounts["b"] not in CallStore(world.sessions).routing_table().paused_accounts
    assert Dni(world.sessions).read_sites() == []
    assert outbox.claim(dt.datetime.now(dt.UTC).timestamp() + 60) == []
    with world.sessions() as session:
        assert session.scalar(select(Delivery.state)) == "pending"  # held, not dropped
    with world.sessions() as session:
        refused = session.scalars(
            select(AuditEntry.detail).where(AuditEntry.action == "signin.refused")
        ).all()
    assert "account disabled" in refused


def test_a_cancelled_deletion_enables_the_account_again(world):
    request_deletion(world)
    with world.sessions.begin() as session:
        account_deletion.cancel(session, world.accounts["a"], "test")
    assert accounts.sign_in(world.sessions, "viewer-a", PASSWORD, None) is not None
    assert (
        account_deletion.erase_due(
            world.sessions, world.vault, dt.datetime.now(dt.UTC) + dt.timedelta(days=400)
        )
        == {}
    )


def test_after_the_grace_period_the_account_is_erased_and_nothing_is_left(world):
    call_id = world.add_call("a", caller_name="Erased Caller", caller_number=CLIENT_CALLER,
                             record=True)  # fmt: skip
    with world.sessions() as session:
        wrapped = session.get(Recording, call_id).wrapped_key
        file_name = session.get(Recording, call_id).file_name
    store = world.vault.store_dir
    assert (store / file_name).exists()
    requested = dt.datetime.now(dt.UTC)
    request_deletion(world, now=requested)

    assert account_deletion.erase_due(world.sessions, world.vault, requested) == {}  # not yet
    assert (store / file_name).exists()

    erased = account_deletion.erase_due(
        world.sessions, world.vault, requested + dt.timedelta(days=30, seconds=1)
    )
    assert erased[world.accounts["a"]]["recordings"] == 2
    assert erased[world.accounts["a"]]["calls"] == 2
    assert not (store / file_name).exists()
    with world.sessions() as session:
        assert session.get(Account, world.accounts["a"]) is None
        assert session.scalar(select(func.count()).select_from(Call).where(
            Call.caller_number == CLIENT_CALLER)) == 0  # fmt: skip
        assert session.scalar(select(func.count()).select_from(User).where(
            User.username.in_(("alice", "viewer-a")))) == 0  # fmt: skip
        assert session.get(Call, world.calls["b"]) is not None  # another client's: kept
        assert session.get(Recording, world.calls["b"]) is not None
        (entry,) = session.scalars(select(AuditEntry).where(AuditEntry.action == "account.erase"))
        assert "2 recordings" in (entry.detail or "")
        assert CLIENT_CALLER not in json.dumps([entry.subject, entry.detail])
    raw = database_bytes(world)
    assert CLIENT_CALLER.encode() not in raw
    assert b"Erased Caller" not in raw
    assert wrapped.encode() not in raw and bytes.fromhex(wrapped) not in raw


def test_an_erasure_cut_short_is_finished_by_the_next_run(world, monkeypatch):
    world.add_call("a", record=True)
    requested = dt.datetime.now(dt.UTC) - dt.timedelta(days=31)
    request_deletion(world, now=requested)
    deleted = []
    real = world.vault.delete

    def fails_second(call_id, actor, forget_now=True):
        if deleted:
            raise OSError("power cut")
        deleted.append(call_id)
        real(call_id, actor, forget_now)

    monkeypatch.setattr(world.vault, "delete", fails_second)
    with pytest.raises(OSError):
        account_deletion.erase_due(world.sessions, world.vault)
    with world.sessions() as session:
        assert session.get(Account, world.accounts["a"]) is not None  # not yet
    monkeypatch.setattr(world.vault, "delete", real)
    (counts,) = account_deletion.erase_due(world.sessions, world.vault).values()
    assert counts["recordings"] == 1  # the one left
    with world.sessions() as session:
        assert session.get(Account, world.accounts["a"]) is None
        left = session.scalar(select(func.count()).select_from(Recording).join(Call).where(
            Call.account_id == world.accounts["a"]))  # fmt: skip
        assert left == 0


async def test_the_privacy_page_deletes_and_cancels_for_owners_only(world, client):
    with world.sessions.begin() as session:
        session.get(Account, world.accounts["b"]).name = MARKUP
    browser = Browser(client)
    await browser.sign_in("owner")
    response, page = await browser.get("/privacy")
    assert response.status == 200
    assert "What can leave this box" in page and "Webhooks" in page
    assert MARKUP not in page and "&lt;img src=x" in page
    response, page = await browser.post("/privacy", {"action": "delete",
                                                     "account": world.accounts["a"]})  # fmt: skip
    assert response.status == 400 and "tick the box" in page
    response, page = await browser.post(
        "/privacy", {"action": "delete", "account": world.accounts["a"], "confirm": "yes"}
    )
    assert response.status == 200 and "is disabled and will be erased after" in page
    with world.sessions() as session:
        assert session.get(Account, world.accounts["a"]).erase_after is not None
    response, page = await browser.post("/privacy", {"action": "undelete",
                                                     "account": world.accounts["a"]})  # fmt: skip
    assert response.status == 200 and "cancelled" in page
    with world.sessions() as session:
        assert session.get(Account, world.accounts["a"]).erase_after is None


@pytest.mark.parametrize("who", ["manager", "analyst", "alice", "viewer-a"])
async def test_the_privacy_page_is_refused_to_everyone_else(world, client, who):
    browser = Browser(client)
    await browser.sign_in(who)
    response, _ = await browser.get("/privacy")
    assert response.status == 403
    response, _ = await browser.post(
        "/privacy", {"action": "delete", "account": world.accounts["a"], "confirm": "yes"}
    )
    assert response.status == 403
    with world.sessions() as session:
        assert session.get(Account, world.accounts["a"]).erase_after is None


async def test_forged_deletions_are_refused(world, client):
    browser = Browser(client)
    await browser.sign_in("owner")
    await browser.get("/privacy")
    form = {"action": "delete", "account": world.accounts["a"], "confirm": "yes"}
    response, _ = await browser.post("/privacy", form, csrf=False)
    assert response.status == 403
    for account in ("999", "1 OR 1=1", str(world.accounts["agency"]), ""):
        response, page = await browser.post("/privacy", {**form, "account": account})
        assert response.status in (400, 403), page
    with world.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Account).where(
            Account.erase_after.is_not(None))) == 0  # fmt: skip


def test_the_command_line_deletes_cancels_and_lists_flows(tmp_path, capsys, monkeypatch):
    from appliance import cli

    monkeypatch.delenv("APPLIANCE_CONFIG", raising=False)
    config = tmp_path / "appliance.ini"
    config.write_text(f"[paths]\ndata_dir = {tmp_path / 'data'}\n\n[log]\nlevel = warning\n")

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = cli.main(["--config", str(config), *args])
        out, err = capsys.readouterr()
        return code, out, err

    assert run("init")[0] == 0
    assert run("account", "add", "Client")[0] == 0
    assert run("account", "pending")[1] == "no account is to be deleted\n"
    code, out, _ = run("account", "delete", "2", "--grace-days", "7")
    assert code == 0 and "erased after" in out and "account undelete 2" in out
    code, out, _ = run("account", "pending")
    assert out.startswith("2\tClient\terased after ")
    assert run("account", "delete", "1") == (2, "", "appliance: an agency account cannot be "
                                             "deleted: delete its client accounts\n")  # fmt: skip
    assert run("account", "undelete", "2")[0] == 0
    assert run("account", "undelete", "2")[2] == "appliance: account 2 is not to be deleted\n"
    code, out, _ = run("privacy", "flows")
    assert code == 0 and "off  Webhooks" in out and "off  E-mail" in out


def test_a_legal_hold_stops_the_deletion(world):
    held = world.add_call("a", record=True)
    with world.sessions.begin() as session:
        session.get(Call, held).legal_hold = True
        with pytest.raises(AdminError, match=r"under legal hold \(1 call\(s\) held\)"):
            account_deletion.request(session, world.accounts["a"], "test")
        session.get(Call, held).legal_hold = False
    requested = dt.datetime.now(dt.UTC) - dt.timedelta(days=31)
    request_deletion(world, now=requested)
    with world.sessions.begin() as session:  # a hold placed during the grace period
        session.get(Account, world.accounts["a"]).legal_hold_days = 365
    assert account_deletion.erase_due(world.sessions, world.vault) == {world.accounts["a"]: {}}
    with world.sessions() as session:
        assert session.get(Recording, held) is not None
        assert session.get(Account, world.accounts["a"]) is not None


def test_a_call_going_on_postpones_the_erasure(world):
    requested = dt.datetime.now(dt.UTC) - dt.timedelta(days=31)
    request_deletion(world, now=requested)
    with world.sessions.begin() as session:
        live = Call(account_id=world.accounts["a"], linkedid="1800000000.1", dialled="+12025550123",
                    caller_number=CLIENT_CALLER)  # fmt: skip
        session.add(live)
    assert account_deletion.erase_due(world.sessions, world.vault) == {world.accounts["a"]: {}}
    with world.sessions.begin() as session:
        call = session.scalar(select(Call).where(Call.linkedid == "1800000000.1"))
        call.ended_at, call.disposition = dt.datetime.now(dt.UTC), "answered"
    (counts,) = account_deletion.erase_due(world.sessions, world.vault).values()
    assert counts["calls"] == 2
