"""The restrict list page over the real application: owners and admins of the agency list,
add and remove restricted callers; nobody else can, no other site can make them, no account
but their own is touched, and hostile numbers get one clear line. The consent evidence and
the restriction show on the call's page, in the API and in the CSV export."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest
from sqlalchemy import select

from appliance.db.models import Account, AuditEntry, Call, RestrictedNumber
from appliance.transcription import service
from tests.hostile import STRINGS
from tests.web_world import Browser

PAGE = "/privacy/restricted"
ERROR = re.compile(r'<p class="card error" role="alert">([^<]*)</p>')


async def signed_in(client, who: str) -> Browser:
    browser = Browser(client)
    await browser.sign_in(who)
    return browser


def listed(world) -> list[tuple[int, str]]:
    with world.sessions() as session:
        rows = session.scalars(select(RestrictedNumber).order_by(RestrictedNumber.id))
        return [(r.account_id, r.e164) for r in rows]


async def test_an_owner_restricts_a_caller_and_lifts_it(world, client):
    owner = await signed_in(client, "owner")
    response, body = await owner.get(PAGE)
    assert response.status == 200 and "No restricted callers." in body
    form = {"action": "add", "account": str(world.accounts["a"]), "number": "(312) 555-0111"}
    response, body = await owner.post(PAGE, form)
    assert response.status == 200, body
    assert "+13125550111 is restricted" in body and "<td>+13125550111</td>" in body
    assert listed(world) == [(world.accounts["a"], "+13125550111")]
    response, body = await owner.post(PAGE, form)
    assert response.status == 400 and "already restricted" in body
    response, body = await owner.post(PAGE, form | {"action": "remove"})
    assert response.status == 200 and "no longer restricted" in body
    assert listed(world) == []
    with world.sessions() as session:
        actions = session.scalars(
            select(AuditEntry.action).where(AuditEntry.actor == "user:owner")
        ).all()
    assert [a for a in actions if a.startswith("restrict.")] == ["restrict.add", "restrict.remove"]


@pytest.mark.parametrize("who", ["manager", "analyst", "alice", "viewer-a"])
async def test_only_owners_and_admins_of_the_agency_see_or_change_the_list(world, client, who):
    person = await signed_in(client, who)
    response, _ = await person.get(PAGE)
    assert response.status == 403
    await person.get("/calls")  # a page they may open, for its CSRF token
    form = {"action": "add", "account": str(world.accounts["a"]), "number": "+13125550111"}
    response, _ = await person.post(PAGE, form)
    assert response.status == 403
    assert listed(world) == []


async def test_another_tenants_account_is_refused(world, client):
    with world.sessions.begin() as session:
        other = Account(name="Another agency", timezone="UTC")
        session.add(other)
        session.flush()
        other_id = other.id
    owner = await signed_in(client, "owner")
    await owner.get(PAGE)
    for account in (str(other_id), "999999", "-1", "1 OR 1=1", ""):
        form = {"action": "add", "account": account, "number": "+13125550111"}
        response, body = await owner.post(PAGE, form)
        assert response.status == 403, account
        assert "that account is not yours" in body
    assert listed(world) == []


async def test_a_forged_form_changes_nothing(world, client):
    owner = await signed_in(client, "owner")
    await owner.get(PAGE)
    form = {"action": "add", "account": str(world.accounts["a"]), "number": "+13125550111"}
    response, _ = await owner.post(PAGE, form, csrf=False)
    assert response.status == 403
    response, _ = await owner.post(PAGE, form | {"csrf": "0" * 64}, csrf=False)
    assert response.status == 403
    response, _ = await owner.post(PAGE, form, headers={"Sec-Fetch-Site": "cross-site"})
    assert response.status == 403
    assert listed(world) == []


async def test_hostile_numbers_get_one_clear_line_and_markup_stays_text(world, client):
    owner = await signed_in(client, "owner")
    await owner.get(PAGE)
    for raw in STRINGS:
        form = {"action": "add", "account": str(world.accounts["a"]), "number": raw}
        response, body = await owner.post(PAGE, form)
        if response.status == 200:  # a few are numbers after all ("tel:+1...", "0012...")
            assert re.search(r"\+[0-9]{8,15} is restricted", body), raw
            continue
        assert response.status == 400, raw
        (line,) = ERROR.findall(body)
        assert "\n" not in line and len(line) < 200
        assert "<svg" not in body and "<iframe" not in body
    assert all(re.fullmatch(r"\+[0-9]{8,15}", e164) for _, e164 in listed(world))


async def test_the_call_shows_its_consent_evidence_and_restriction(world, client):
    call_id = world.calls["a"]
    heard = dt.datetime(2026, 3, 1, 12, 0, 5, tzinfo=dt.UTC)
    with world.sessions.begin() as session:
        call = session.get(Call, call_id)
        call.consent_announced, call.consent_prompt, call.consent_at = True, "custom/notice", heard
        call.restricted = True
    owner = await signed_in(client, "owner")
    response, body = await owner.get(f"/calls/{call_id}")
    assert response.status == 200
    assert "<code>custom/notice</code>" in body
    assert "never recorded, transcribed, analysed or sent to an ad platform" in html.unescape(body)
    headers = {"Authorization": f"Bearer {world.tokens['owner']}"}
    response = await client.get(f"/api/v1/calls/{call_id}", headers=headers)
    found = await response.json()
    assert (found["consent_prompt"], found["restricted"]) == ("custom/notice", True)
    assert dt.datetime.fromisoformat(found["consent_at"]) == heard
    response, text = await owner.get("/calls.csv")
    header, *rows = text.splitlines()
    assert {"consent_prompt", "consent_at", "restricted"} <= set(header.split(","))
    assert any("custom/notice" in row for row in rows)


async def test_a_restricted_calls_recording_is_never_transcribed(world):
    restricted, other = world.calls["a"], world.calls["b"]
    with world.sessions.begin() as session:
        session.get(Call, restricted).restricted = True
    with world.sessions.begin() as session:
        with pytest.raises(LookupError, match="restricted"):
            service.queue_recordings(session, [restricted])
        assert service.queue_recordings(session, []) == 2  # b's and the one of no account
        assert service.queue_recordings(session, [other]) == 1
