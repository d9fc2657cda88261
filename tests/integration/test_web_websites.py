"""The website pages over the real application: sites with their pool, rules and snippet
(changed only by those who may, seen only by their accounts), the visit and its timeline on
a call's page, the sources and campaigns report, and the leads list and export, with markup
from visitors and admins shown as text."""

from __future__ import annotations

import datetime as dt
import html
import json

import pytest
from sqlalchemy import select

from appliance.admin import NumberRequest, add_number
from appliance.attribution import sites
from appliance.db.models import AuditEntry, Call, DniSite, Lead, Visit, VisitPage
from tests.web_world import Browser

MARKUP = '<img src=x onerror="document.title=1">'


async def signed_in(client, who: str) -> Browser:
    browser = Browser(client)
    await browser.sign_in(who)
    return browser


def visit_and_lead(world, account: str = "a") -> tuple[str, str]:
    """A site of `account` with a visit (hostile landing page), a lead and a call from it."""
    now = dt.datetime.now(dt.UTC)
    with world.sessions.begin() as session:
        site = sites.add_site(
            session,
            sites.SiteRequest(f"Shop {account}", ("https://shop.example",), ("+12025550100",)),
            world.accounts[account],
            "test",
        )
        visit_id = f"{account:0>32}"
        session.add(
            Visit(
                id=visit_id,
                site_id=site.id,
                account_id=world.accounts[account],
                visitor="f" * 32,
                started_at=now - dt.timedelta(minutes=5),
                last_seen_at=now,
                landing_page=f"https://shop.example/?utm_campaign={MARKUP}",
                referrer=None,
                source_name="google",
                medium="cpc",
                campaign_name=MARKUP,
                keyword="roof repair",
                click_id_type="gclid",
                click_id="Cj0test",
            )
        )
        session.flush()
        session.add(VisitPage(visit_id=visit_id, at=now, url="https://shop.example/prices"))
        session.add(
            Lead(
                account_id=world.accounts[account],
                site_id=site.id,
                visit_id=visit_id,
                form="contact",
                fields=json.dumps({"name": MARKUP, "note": '=HYPERLINK("http://x")'}),
                page="https://shop.example/contact",
                source_name="google",
                medium="cpc",
                campaign_name=MARKUP,
            )
        )
    call_id = world.add_call(account, caller_name="Web caller")
    with world.sessions.begin() as session:
        call = session.get(Call, call_id)
        call.visit_id, call.attribution = visit_id, "held"
        call.source_name, call.medium, call.campaign_name = "google", "cpc", MARKUP
    return call_id, visit_id


async def test_an_owner_adds_a_site_with_its_pool_and_rules_and_markup_stays_text(world, client):
    owner = await signed_in(client, "owner")
    with world.sessions.begin() as session:
        for number in ("+12025550130", "+12025550131", "+12025550140"):
            add_number(session, NumberRequest(number), world.accounts["a"])
    await owner.get("/sites")
    response, body = await owner.post(
        "/sites",
        {
            "action": "add",
            "name": MARKUP,
            "origins": "https://shop.example https://www.shop.example:8443",
            "replace": "(202) 555-0100",
            "hold": "20",
            "forms": "contact",
            "account": str(world.accounts["a"]),
        },
    )
    assert response.status == 200, body
    assert MARKUP not in body and "&lt;img src=x onerror=" in body
    with world.sessions() as session:
        site = session.scalars(select(DniSite)).one()
    assert site.origins == "https://shop.example https://www.shop.example:8443"
    assert site.replace_numbers == "+12025550100" and site.hold_minutes == 20
    assert f'data-site="{site.key}"' in html.unescape(body)
    form = {"action": "pool", "site": str(site.id)}
    response = await owner.client.post(
        "/sites",
        data=[*form.items(), ("pool", "+12025550130"), ("pool", "+12025550131"),
              ("csrf", owner.csrf)],
        headers=owner._headers(),
    )  # fmt: skip
    assert response.status == 200
    response, body = await owner.post(
        "/sites",
        {"action": "rule", "site": str(site.id), "field": "source", "value": "newsletter",
         "number": "+12025550140"},
    )  # fmt: skip
    assert response.status == 200, body
    assert "source contains “newsletter” &rarr; +12025550140" in body
    assert "0 of 2" in body  # the pool, none in use
    with world.sessions() as session:
        actions = session.scalars(select(AuditEntry.action).where(AuditEntry.actor == "user:owner"))
        assert {"site.add", "site.pool", "site.rule"} <= set(actions)


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"origins": "javascript:alert(1)"}, "is not a web origin"),
        ({"origins": "https://x.example/path"}, "is not a web origin"),
        ({"replace": "not a number"}, ""),
        ({"hold": "1"}, "held 2 to 1440 minutes"),
        ({"hold": "²"}, "hold: a number of minutes"),
        ({"forms": "<script>"}, "is not a form name"),
        ({"account": "999"}, ""),
    ],
)
async def test_bad_site_settings_are_refused_with_a_message(world, client, form, message):
    owner = await signed_in(client, "owner")
    await owner.get("/sites")
    fields = {
        "action": "add",
        "name": "Shop",
        "origins": "https://shop.example",
        "replace": "+12025550100",
        "account": str(world.accounts["a"]),
    } | form
    response, body = await owner.post("/sites", fields)
    assert response.status in (400, 403)
    assert message in html.unescape(body)
    with world.sessions() as session:
        assert session.scalars(select(DniSite)).all() == []


async def test_sites_are_read_by_the_agency_and_changed_only_by_its_admins(world, client):
    visit_and_lead(world, "a")
    visit_and_lead(world, "b")
    analyst = await signed_in(client, "analyst")  # of the agency: reads every account's
    response, body = await analyst.get("/sites")
    assert response.status == 200 and "Shop a" in body and "Shop b" in body
    assert "Remove this site" not in body
    with world.sessions() as session:
        site_b = session.scalars(select(DniSite).where(DniSite.name == "Shop b")).one()
    response, _ = await analyst.post("/sites", {"action": "remove", "site": str(site_b.id)})
    assert response.status == 403
    for client_user in ("alice", "viewer-b"):  # client accounts' users read calls only
        response, _ = await (await signed_in(client, client_user)).get("/sites")
        assert response.status == 403
    owner = await signed_in(client, "owner")
    await owner.get("/sites")
    response, _ = await owner.post("/sites", {"action": "remove", "site": "99999"})
    assert response.status == 400
    with world.sessions() as session:
        assert len(session.scalars(select(DniSite)).all()) == 2


async def test_the_call_page_shows_the_visit_and_its_timeline_as_text(world, client):
    call_id, _ = visit_and_lead(world, "a")
    alice = await signed_in(client, "alice")
    response, body = await alice.get(f"/calls/{call_id}")
    assert response.status == 200
    assert MARKUP not in body and "&lt;img src=x onerror=" in body
    for shown in (
        "roof repair",
        "gclid Cj0test",
        "https://shop.example/prices",
        "Visitor timeline",
    ):
        assert shown in body
    assert "the number was shown to this visit alone" in body
    other = await signed_in(client, "viewer-b")
    response, _ = await other.get(f"/calls/{call_id}")
    assert response.status == 404


async def test_the_sources_report_counts_calls_and_leads_per_campaign(world, client):
    visit_and_lead(world, "a")
    visit_and_lead(world, "b")
    viewer = await signed_in(client, "viewer-b")
    response, body = await viewer.get("/reports/sources")
    assert response.status == 200
    assert MARKUP not in body and "&lt;img src=x onerror=" in body
    row = body.split("<tbody>")[1].split("</tbody>")[0]
    # client B's own: the web call and its lead in one row, and its earlier untracked call
    assert row.count("<tr>") == 2 and "Google Ads" not in body
    assert "<td>google</td><td>cpc</td>" in row
    assert "&#34;&gt;</td><td>1</td><td>1</td><td>0</td><td>1</td><td>0</td></tr>" in row
    response, _ = await viewer.get("/reports/sources?from=2026-13-01")
    assert response.status == 400


async def test_leads_are_listed_and_exported_per_account_with_formulas_defused(world, client):
    visit_and_lead(world, "a")
    visit_and_lead(world, "b")
    viewer = await signed_in(client, "viewer-a")
    response, body = await viewer.get("/leads")
    assert response.status == 200 and body.count("<tr>") == 2  # header and A's lead
    assert MARKUP not in body and "&lt;img src=x onerror=" in body
    response, text = await viewer.get("/leads.csv")
    assert response.status == 200 and response.headers["Content-Type"].startswith("text/csv")
    lines = text.strip().splitlines()
    assert len(lines) == 2 and "name=%3Cimg" in lines[1]
    with world.sessions() as session:
        (entry,) = session.scalars(select(AuditEntry).where(AuditEntry.action == "leads.export"))
        assert entry.detail == "1 leads" and entry.account_id == world.accounts["a"]


async def test_the_api_gives_a_call_its_visit_and_lists_leads_per_account(world, client):
    call_id, visit_id = visit_and_lead(world, "a")
    visit_and_lead(world, "b")

    def bearer(who: str) -> dict:
        return {"Authorization": f"Bearer {world.tokens[who]}"}

    response = await client.get(f"/api/v1/calls/{call_id}", headers=bearer("viewer-a"))
    found = await response.json()
    assert (found["attribution"], found["visit"]["id"]) == ("held", visit_id)
    assert found["visit"]["keyword"] == "roof repair"
    assert [p["url"] for p in found["visit"]["pages"]] == ["https://shop.example/prices"]
    response = await client.get(f"/api/v1/calls/{call_id}", headers=bearer("viewer-b"))
    assert response.status == 404
    response = await client.get("/api/v1/leads", headers=bearer("viewer-b"))
    (lead,) = (await response.json())["leads"]
    assert lead["site"] == "Shop b" and lead["fields"]["name"] == MARKUP
    for limit in ("0", "501", "x", "²"):
        response = await client.get(f"/api/v1/leads?limit={limit}", headers=bearer("viewer-b"))
        assert response.status == 400
    response = await client.get("/api/v1/sites", headers=bearer("analyst"))
    assert sorted(s["name"] for s in (await response.json())["sites"]) == ["Shop a", "Shop b"]
    response = await client.get("/api/v1/sites", headers=bearer("viewer-a"))
    assert response.status == 403
