"""Retention settings and legal holds in the admin UI: owners and admins change them for
their own accounts only, every form is checked, and whatever is typed is refused in one line
with nothing changed."""

from __future__ import annotations

import html

import pytest
from sqlalchemy import select

from appliance.db.models import Account, AuditEntry, Call
from appliance.privacy import retention
from tests.hostile import STRINGS
from tests.web_world import Browser


async def signed_in(client, username: str) -> Browser:
    browser = Browser(client)
    await browser.sign_in(username)
    return browser


def account(world, key: str) -> Account:
    with world.sessions() as session:
        return session.get(Account, world.accounts[key])


def other_tenant(world) -> tuple[int, str]:
    """An account of another agency on the same box, with a call."""
    with world.sessions.begin() as session:
        other = Account(name="Other agency")
        session.add(other)
        session.flush()
        call = Call(account_id=other.id, dialled="+12025550199", caller_number="+12025550188")
        session.add(call)
        session.flush()
        return other.id, call.id


async def save(browser: Browser, account_id: int | str, **fields: str):
    await browser.get("/settings")
    form = {"account": str(account_id), "call_expiry": "anonymise", **fields}
    return await browser.post("/settings/retention", form)


async def test_an_owner_sets_a_clients_retention(world, client):
    with world.sessions.begin() as session:
        session.get(Account, world.accounts["a"]).name = "<img src=x onerror=alert(1)>"
    owner = await signed_in(client, "owner")
    _, page = await owner.get("/settings")
    assert page.count('action="/settings/retention"') == len(world.accounts)
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    response, body = await save(
        owner, world.accounts["a"], call_days="400", visit_days="forever", lead_days="",
        delivery_days="45", call_expiry="delete",
    )  # fmt: skip
    assert response.status == 200 and "Retention saved." in body
    saved = account(world, "a")
    assert (saved.call_days, saved.call_expiry, saved.visit_days) == (400, "delete", None)
    assert (saved.lead_days, saved.delivery_days, saved.legal_hold_days) == (None, 45, None)
    with world.sessions() as session:
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "retention.set")
        ).one()
    assert entry.actor == "user:owner" and entry.account_id == world.accounts["a"]
    response, _ = await save(owner, world.accounts["a"], visit_days="120")  # only what is sent
    saved = account(world, "a")
    assert (saved.call_days, saved.visit_days, saved.delivery_days) == (400, 120, 45)


async def test_a_setting_shorter_than_the_hold_is_refused_in_one_line(world, client):
    owner = await signed_in(client, "owner")
    before = retention.of(account(world, "a"))
    response, body = await save(owner, world.accounts["a"], call_days="30", legal_hold_days="90")
    assert response.status == 400
    assert "Retention not changed: calls: 30 days is shorter than the legal hold of 90 days." in (
        html.unescape(body)
    )
    assert retention.of(account(world, "a")) == before


async def test_whatever_is_typed_is_refused_or_taken_as_days(world, client):
    owner = await signed_in(client, "owner")
    for typed in STRINGS:
        before = retention.of(account(world, "b"))
        response, body = await save(owner, world.accounts["b"], visit_days=typed)
        try:
            expected = retention.parse_days(typed)
        except retention.RetentionRefused:
            assert response.status == 400, typed
            assert retention.of(account(world, "b")) == before
            shown = typed[:20]  # the refusal quotes the start of what was typed, escaped
            assert "<" not in shown or shown not in body
        else:
            assert response.status in (200, 400), typed
            if response.status == 200:
                assert account(world, "b").visit_days == expected


@pytest.mark.parametrize("username", ["analyst", "manager", "alice", "viewer-a"])
async def test_only_owners_and_admins_change_retention_or_holds(world, client, username):
    browser = await signed_in(client, username)
    await browser.get(f"/calls/{world.calls['a']}")
    response, _ = await browser.post(
        "/settings/retention", {"account": str(world.accounts["a"]), "call_days": "1"}
    )
    assert response.status == 403 and account(world, "a").call_days != 1
    response, _ = await browser.post(f"/calls/{world.calls['a']}/hold", {"held": "yes"})
    assert response.status == 403
    _, page = await browser.get(f"/calls/{world.calls['a']}")
    assert "Not held" in page and f'action="/calls/{world.calls["a"]}/hold"' not in page


async def test_another_tenants_account_or_call_is_not_found(world, client):
    other, call_id = other_tenant(world)
    owner = await signed_in(client, "owner")
    for forged in (str(other), "99999", "-1", "1e3", "<b>1</b>"):
        response, _ = await save(owner, forged, call_days="1")
        assert response.status == 404, forged
    with world.sessions() as session:
        assert session.get(Account, other).call_days is None
    response, _ = await owner.post(f"/calls/{call_id}/hold", {"held": "yes"})
    assert response.status == 404
    with world.sessions() as session:
        assert session.get(Call, call_id).legal_hold is False


async def test_forms_without_the_token_or_from_another_site_are_refused(world, client):
    owner = await signed_in(client, "owner")
    await owner.get("/settings")
    target = {"account": str(world.accounts["a"]), "call_days": "1", "call_expiry": "delete"}
    response, _ = await owner.post("/settings/retention", target, csrf=False)
    assert response.status == 403
    response, _ = await owner.post(
        "/settings/retention", target, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert response.status == 403
    response, _ = await owner.post(f"/calls/{world.calls['a']}/hold", {"held": "yes"}, csrf=False)
    assert response.status == 403
    assert account(world, "a").call_days != 1
    with world.sessions() as session:
        assert session.get(Call, world.calls["a"]).legal_hold is False


async def test_an_owner_holds_and_releases_a_call(world, client):
    owner = await signed_in(client, "owner")
    call_id = world.calls["b"]
    _, page = await owner.get(f"/calls/{call_id}")
    assert "Hold this call" in page
    response, _ = await owner.post(f"/calls/{call_id}/hold", {"held": "yes"})
    assert response.status == 303 and response.headers["Location"] == f"/calls/{call_id}#hold"
    _, page = await owner.get(f"/calls/{call_id}")
    assert "Release the hold" in page and "Held: this call" in page
    viewer = await signed_in(client, "viewer-b")
    assert "Held: this call" in (await viewer.get(f"/calls/{call_id}"))[1]
    response, _ = await owner.post(f"/calls/{call_id}/hold", {"held": "maybe"})
    assert response.status == 400
    response, _ = await owner.post(f"/calls/{call_id}/hold", {"held": "no"})
    assert response.status == 303
    with world.sessions() as session:
        assert session.get(Call, call_id).legal_hold is False
        actions = list(
            session.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.subject == call_id)
                .order_by(AuditEntry.id)
            )
        )
    assert actions[-2:] == ["hold.call", "hold.call.release"]
