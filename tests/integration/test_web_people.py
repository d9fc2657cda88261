"""The people page: only owners and admins, only within their own accounts, every form
CSRF-checked, every stored name escaped, an erasure confirmed before it happens."""

from __future__ import annotations

import datetime as dt
import io
import json
import tempfile
import urllib.parse
import zipfile

import pytest
from sqlalchemy import select

from appliance import admin
from appliance.db.models import Account, AuditEntry, Call, Recording
from appliance.privacy import export
from tests.hostile import STRINGS
from tests.web_world import PASSWORD, Browser

MARKUP = '<img src=x onerror="alert(1)">'
PAT = "+13125550111"


def page_of(subject: str, account: int | str = "") -> str:
    return "/privacy/people?" + urllib.parse.urlencode({"subject": subject, "account": account})


async def owner(client) -> Browser:
    browser = Browser(client)
    await browser.sign_in("owner")
    return browser


@pytest.fixture
def pat(world) -> list[str]:
    """Pat called client A twice (once recorded, with markup for a name) and client B once,
    yesterday."""
    day = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    return [
        world.add_call(
            "a", caller_name=MARKUP, caller_number="13125550111", record=True, started=day
        ),
        world.add_call("a", caller_name="Pat", caller_number=PAT, started=day),
        world.add_call("b", caller_name="Pat", caller_number="(312) 555-0111", started=day),
    ]


def calls_left(world, ids) -> list[str]:
    with world.sessions() as session:
        return [i for i in ids if session.get(Call, i) is not None]


async def test_the_owner_finds_a_person_and_names_are_escaped(world, client, pat):
    browser = await owner(client)
    response, page = await browser.get(page_of("(312) 555-0111"))
    assert response.status == 200
    assert "<th>calls</th><td>3</td>" in page and "<th>recordings</th><td>1</td>" in page
    assert MARKUP not in page and "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in page
    response, page = await browser.get(page_of(PAT, world.accounts["b"]))
    assert "<th>calls</th><td>1</td>" in page


@pytest.mark.parametrize("username", ["manager", "analyst", "alice", "viewer-a"])
async def test_who_may_not_manage_people_is_refused(world, client, pat, username):
    browser = Browser(client)
    await browser.sign_in(username)
    response, _ = await browser.get(page_of(PAT))
    assert response.status == 403
    await browser.get("/calls")  # a page with a form token
    for action in ("erase", "export", "correct"):
        form = {"subject": PAT, "confirm": "yes", "name": "X"}
        response, _ = await browser.post(f"/privacy/people/{action}", form)
        assert response.status == 403
    assert calls_left(world, pat) == pat


async def test_a_forged_erasure_is_refused(world, client, pat):
    browser = await owner(client)
    await browser.get(page_of(PAT))
    form = {"subject": PAT, "confirm": "yes"}
    response, _ = await browser.post("/privacy/people/erase", form, csrf=False)
    assert response.status == 403
    response, _ = await browser.post("/privacy/people/erase", form,
                                     headers={"Sec-Fetch-Site": "cross-site"})  # fmt: skip
    assert response.status == 403
    assert calls_left(world, pat) == pat


async def test_another_tenant_neither_finds_nor_erases(world, client, pat):
    with world.sessions.begin() as session:
        other = Account(name="Other agency")  # a second agency: another tenant altogether
        session.add(other)
        session.flush()
        stranger = admin.add_user(session, "stranger", PASSWORD, "owner", other.id)
        stranger.must_change_password = False
    browser = Browser(client)
    await browser.sign_in("stranger")
    response, page = await browser.get(page_of(PAT))
    assert response.status == 200 and "Nothing is stored about +13125550111" in page
    response, _ = await browser.get(page_of(PAT, world.accounts["a"]))
    assert response.status == 403
    for account in ("", world.accounts["a"]):
        form = {"subject": PAT, "account": account, "confirm": "yes"}
        response, page = await browser.post("/privacy/people/erase", form)
        assert response.status in (400, 403)
        response, _ = await browser.post("/privacy/people/export", form)
        assert response.status in (400, 403)
        response, _ = await browser.post("/privacy/people/correct", form | {"name": "Mallory"})
        assert response.status in (400, 403)
    assert calls_left(world, pat) == pat
    with world.sessions() as session:
        assert {session.get(Call, i).caller_name for i in pat} == {MARKUP, "Pat"}


async def test_an_erasure_is_confirmed_then_done_within_the_account_chosen(world, client, pat):
    browser = await owner(client)
    await browser.get(page_of(PAT))
    form = {"subject": PAT, "account": str(world.accounts["a"])}
    response, page = await browser.post("/privacy/people/erase", form)
    assert response.status == 200 and 'name="confirm" value="yes"' in page
    assert calls_left(world, pat) == pat
    response, page = await browser.post("/privacy/people/erase", form | {"confirm": "yes"})
    assert response.status == 200
    assert "Erased 2 calls" in page and "1 recordings" in page
    assert calls_left(world, pat) == [pat[2]]  # client B's call was not asked about
    with world.sessions() as session:
        assert session.get(Recording, pat[0]) is None
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "person.erase"))
        entry = entry.one()
        assert entry.actor == "user:owner" and "3125550111" not in (entry.detail or "")
    response, page = await browser.post("/privacy/people/erase", form | {"confirm": "yes"})
    assert response.status == 400 and "nothing is stored about that number" in page


async def test_export_and_correct(world, client, pat, tmp_path, monkeypatch):
    """The archive is streamed from a private file, gone once sent or refused."""
    private = tmp_path / "private-tmp"
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    real, written = export.to_file, []

    def to_file(path, *args):
        written.append((path.parent.stat().st_mode & 0o777, path))
        counts = real(path, *args)
        written.append((path.stat().st_mode & 0o777, path))
        return counts

    monkeypatch.setattr(export, "to_file", to_file)
    browser = await owner(client)
    await browser.get(page_of(PAT))
    response = await client.post(
        "/privacy/people/export",
        data={"subject": PAT, "csrf": browser.csrf},
        headers=browser._headers(),
    )
    assert response.status == 200 and response.content_type == "application/zip"
    with zipfile.ZipFile(io.BytesIO(await response.read())) as archive:
        document = json.loads(archive.read("person.json"))
        assert f"recordings/{pat[0]}.wav" in archive.namelist()
    assert len(document["calls"]) == 3
    assert [mode for mode, _ in written] == [0o700, 0o600]
    assert written[0][1].is_relative_to(private) and list(private.iterdir()) == []
    with world.sessions() as session:
        entries = session.scalars(select(AuditEntry.action)).all()
    assert entries.count("person.export") == 1 and entries.count("recording.export") == 1
    response, page = await browser.post("/privacy/people/export", {"subject": "+13125550000"})
    assert response.status == 400 and "nothing is stored" in page
    assert list(private.iterdir()) == []
    response, page = await browser.post("/privacy/people/correct",
                                        {"subject": PAT, "name": "Pat Right"})  # fmt: skip
    assert response.status == 200 and "Corrected 3 call(s)" in page
    response, page = await browser.post("/privacy/people/correct", {"subject": PAT, "name": ""})
    assert response.status == 400 and "say what to correct" in page
    with world.sessions() as session:
        assert {session.get(Call, i).caller_name for i in pat} == {"Pat Right"}


async def test_an_erasure_waits_for_a_call_just_ended(world, client, pat):
    with world.sessions.begin() as session:
        session.get(Call, pat[1]).ended_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=10)
    browser = await owner(client)
    await browser.get(page_of(PAT))
    form = {"subject": PAT, "account": str(world.accounts["a"]), "confirm": "yes"}
    response, page = await browser.post("/privacy/people/erase", form)
    assert response.status == 400
    assert "in progress or ended less than 2 minutes ago; erase again after" in page
    assert calls_left(world, pat) == pat


async def test_hostile_subjects_are_refused_or_inert(world, client, pat):
    browser = await owner(client)
    for text in STRINGS:
        response, page = await browser.get(page_of(text))
        assert response.status in (200, 400), text
        if "<" in text and len(text) < 254:
            assert text not in page, text
