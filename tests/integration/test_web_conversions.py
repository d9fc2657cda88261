"""The conversions page over the real application: rules and destinations added by admins
only, a webhook's secret shown once and then sealed, the preview of exactly what would be
sent, retries of parked deliveries, the offline conversion files, and markup as text; a
webhook to this machine is refused, and the delivery log shows a reason, never what
answered."""

from __future__ import annotations

import html
import json
import time

import pytest
from sqlalchemy import select

from appliance.config import DestinationsConfig
from appliance.conversions.outbox import Outbox
from appliance.db.models import AuditEntry, Conversion, Delivery, Destination
from tests.integration.test_conversions import (  # noqa: F401 - greeters is a fixture
    BOX,
    LOOPBACK,
    drain,
    greeters,
    stored_webhooks,
)
from tests.web_world import Browser

MARKUP = "<script>alert(1)</script>"


async def owner_on_page(client) -> Browser:
    owner = Browser(client)
    await owner.sign_in("owner")
    await owner.get("/conversions")
    return owner


async def test_an_owner_adds_a_rule_and_a_webhook_whose_secret_is_shown_once(world, client):
    owner = await owner_on_page(client)
    account = str(world.accounts["a"])
    response, body = await owner.post(
        "/conversions",
        {"action": "rule", "name": f"Call {MARKUP}", "answered": "yes", "min_talk": "60",
         "value": "50", "currency": "usd", "account": account},
    )  # fmt: skip
    assert response.status == 200, body
    assert MARKUP not in body and html.escape(MARKUP, quote=False) in body
    assert "answered, talk &gt;= 60 s" in body and "50 USD" in body
    response = await owner.client.post(
        "/conversions",
        data=[("action", "destination"), ("name", "CRM"), ("kind", "webhook"),
              ("url", "https://crm.example.com/T0/secret-9f"), ("events", "conversion.created"),
              ("events", "call.ended"), ("account", account), ("csrf", owner.csrf)],
        headers=owner._headers(),
    )  # fmt: skip
    body = await response.text()
    assert response.status == 200
    secret = body.split("signing secret, shown once: ")[1].split("<")[0].strip()
    assert secret.startswith("whsec_")
    _, again = await owner.get("/conversions")
    assert secret not in again
    assert "X-Appliance-Signature: &lt;sealed&gt;" in again  # the preview, secret withheld
    assert "POST https://crm.example.com/…" in again  # the path may hold a secret
    assert "secret-9f" not in again
    with world.sessions() as session:
        (destination,) = session.scalars(select(Destination))
        assert destination.events == "conversion.created call.ended"
        assert secret not in (destination.secret_sealed or "")
        actions = set(session.scalars(select(AuditEntry.action)))
    assert {"conversion.rule.add", "destination.add"} <= actions


@pytest.mark.parametrize(
    ("form", "message"),
    [
        (
            {"action": "destination", "kind": "webhook", "url": "http://crm.example.com/"},
            "https://",
        ),
        ({"action": "destination", "kind": "meta", "pixel_id": "1"}, "needs its token"),
        (
            {"action": "destination", "kind": "webhook", "url": "https://127.0.0.1:5038/h"},
            "'127.0.0.1' is a loopback address: webhooks may not reach this machine",
        ),
        (
            {"action": "destination", "kind": "webhook", "url": "https://0x7f000001:25/"},
            "is a loopback address",
        ),
        (
            {"action": "destination", "kind": "webhook", "url": "https://[::1]/"},
            "is a loopback address",
        ),
        (
            {"action": "destination", "kind": "webhook", "url": "https://169.254.169.254/"},
            "is a link-local address",
        ),
        (
            {"action": "destination", "kind": "webhook", "url": "https://10.0.0.8/"},
            "is a private address",
        ),
        ({"action": "rule", "name": "=HYPERLINK(1)"}, "not starting"),
        ({"action": "rule", "name": "x", "currency": "dollars"}, "currency"),
        ({"action": "rule", "name": "x", "min_talk": "²"}, "whole seconds"),
        ({"action": "remove", "id": "99999"}, "no such destination"),
        ({"action": "retry", "id": "99999"}, "no such delivery"),
    ],
)
async def test_bad_changes_are_refused_with_a_message(world, client, form, message):
    owner = await owner_on_page(client)
    fields = {"name": "D", "account": str(world.accounts["a"])} | form
    response, body = await owner.post("/conversions", fields)
    assert response.status == 400
    assert message in html.unescape(body)


async def test_only_admins_change_and_client_users_do_not_see_it(world, client):
    analyst = Browser(client)
    await analyst.sign_in("analyst")
    response, _ = await analyst.get("/conversions")
    assert response.status == 200
    response, _ = await analyst.post("/conversions", {"action": "rule", "name": "x"})
    assert response.status == 403
    for user in ("alice", "viewer-b"):
        browser = Browser(client)
        await browser.sign_in(user)
        response, _ = await browser.get("/conversions")
        assert response.status == 403


async def test_parked_deliveries_are_retried_and_files_exported(world, client):
    owner = await owner_on_page(client)
    await owner.post(
        "/conversions",
        {"action": "destination", "name": "CRM", "kind": "webhook",
         "url": "https://crm.example.com/hook", "account": str(world.accounts["a"])},
    )  # fmt: skip
    call_id = world.add_call("a")
    with world.sessions.begin() as session:
        destination = session.scalars(select(Destination)).one()
        conversion = Conversion(
            account_id=world.accounts["a"], name="Qualified call", call_id=call_id,
            occurred_at=destination.created_at, value=50, currency="USD",
            click_id_type="gclid", click_id="Cj0test",
        )  # fmt: skip
        session.add(conversion)
        session.add(
            Delivery(
                destination_id=destination.id, event="conversion.created", state="parked",
                attempts=10, last_status=500, last_error="answered 500",
                payload=json.dumps({"event": "conversion.created", "data": {}}),
            )
        )  # fmt: skip
    _, body = await owner.get("/conversions")
    assert "parked" in body and "answered 500" in body
    with world.sessions() as session:
        delivery_id = session.scalar(select(Delivery.id))
    response, body = await owner.post("/conversions", {"action": "retry", "id": str(delivery_id)})
    assert response.status == 200 and "goes out again now" in body
    with world.sessions() as session:
        assert session.get(Delivery, delivery_id).state == "pending"
    a = world.accounts["a"]
    response, text = await owner.get(f"/conversions/google_ads.csv?account={a}")
    assert response.status == 200
    assert (
        text.splitlines()[2]
        == "Cj0test,Qualified call," + text.splitlines()[2].split(",")[2] + ",50,USD"
    )
    response, text = await owner.get(f"/conversions/microsoft.csv?account={a}")
    assert len(text.splitlines()) == 2  # no Microsoft clicks
    response, text = await owner.get("/conversions/google_ads.csv")  # the agency's own
    assert len(text.splitlines()) == 2  # client A's conversion is not in it
    for wrong in ("/conversions/other.csv", "/conversions/google_ads.csv?account=99999"):
        response, _ = await owner.get(wrong)
        assert response.status == 404
    with world.sessions() as session:
        exports = session.scalars(
            select(AuditEntry.subject).where(AuditEntry.action == "conversions.export")
        ).all()
    assert sorted(exports) == ["google_ads", "google_ads", "microsoft"]


async def test_the_delivery_log_shows_a_reason_never_what_answered_nor_the_address(
    world,
    client,
    greeters,  # noqa: F811 - the fixture
):
    """Deliveries to a fake AMI (reached: the server allows 127.0.0.1) and to a fake mail
    server (refused: nothing allowed), as a user who may only read the configuration sees
    them: a short reason each, no banner, no path."""
    ami, smtp = greeters
    (reached,) = stored_webhooks(world, [f"http://127.0.0.1:{ami.port}/hooks/T0-secret"])
    allowed = DestinationsConfig(timeout=5, allowed_networks=LOOPBACK)
    await drain(Outbox(world.sessions, BOX, allowed), time.time())
    (refused,) = stored_webhooks(world, [f"http://127.0.0.1:{smtp.port}/T1-secret"])
    await drain(Outbox(world.sessions, BOX, DestinationsConfig(timeout=5)), time.time())
    assert (ami.connections, smtp.connections) == (1, 0)

    analyst = Browser(client)
    await analyst.sign_in("analyst")
    response, body = await analyst.get("/conversions")
    assert response.status == 200
    rows = {
        line.split("</td>")[0].rsplit(">", 1)[-1]: line
        for line in body.split("<tr><td>")[1:]
        if "</td>" in line
    }
    assert "the answer is not HTTP" in rows[str(reached)]
    assert "refused: loopback address" in rows[str(refused)]
    for said in ("Asterisk Call Manager", "ESMTP", "220 mail", "T0-secret", "T1-secret"):
        assert said not in body
