"""Mail through a real SMTP server on loopback: invitations, password resets and alerts, and
what a hostile value cannot do to a message."""

import logging
import re

import pytest
from sqlalchemy import select, update

from appliance import admin
from appliance.config import SmtpConfig
from appliance.db.models import AuditEntry, User, UserLink
from appliance.mail import AlertMail, Mail, Mailer, MailError
from tests.hostile import STRINGS
from tests.smtp_server import smtp_server
from tests.web_world import PASSWORD, Browser, client_for

pytestmark = pytest.mark.usefixtures("cheap_passwords")  # users are set-up here

SENDER = "calls@example.com"


@pytest.fixture
def smtp():
    with smtp_server() as (inbox, port):
        config = SmtpConfig(host="127.0.0.1", port=port, security="none", sender=SENDER)
        yield inbox, Mailer(config)


def test_a_mail_reaches_the_server_with_one_line_headers(smtp):
    inbox, mailer = smtp
    mailer.send(Mail("ops@example.com", "Hello\r\nBcc: evil@example.net", "Body\r\n.\r\nMore"))
    ((recipients, message),) = inbox.wait()
    assert recipients == ["ops@example.com"]
    assert message["Subject"] == "Hello Bcc: evil@example.net" and message["Bcc"] is None
    assert message["From"] == SENDER and message["Auto-Submitted"] == "auto-generated"
    assert "More" in message.get_content()


@pytest.mark.parametrize("address", [
    *[s for s in STRINGS if "@" not in s][:20],
    "ops@example.com\r\nBcc: evil@example.net",
    "ops@example.com, evil@example.net",
    "<ops@example.com>",
])  # fmt: skip
def test_hostile_addresses_are_refused_before_anything_is_sent(smtp, address):
    inbox, mailer = smtp
    with pytest.raises(MailError, match="not an e-mail address"):
        mailer.send(Mail(address, "x", "y"))
    assert inbox.messages == []


def test_an_unreachable_server_is_a_clear_error():
    mailer = Mailer(SmtpConfig(host="127.0.0.1", port=1, security="none", sender=SENDER))
    with pytest.raises(MailError, match="refused or failed"):
        mailer.send(Mail("ops@example.com", "x", "y"))


async def test_an_invited_user_chooses_a_password_from_the_mailed_link(world, smtp):
    inbox, mailer = smtp
    client = await client_for(world, mailer)
    try:
        owner = Browser(client)
        await owner.sign_in("owner")
        await owner.get("/users")
        response, body = await owner.post(
            "/users",
            {"action": "add", "username": "erin", "email": "Erin@Example.com",
             "role": "analyst", "account": str(world.accounts["a"])},
        )  # fmt: skip
        assert response.status == 200 and "invited by mail to erin@example.com" in body
        assert "One-time password" not in body
        ((recipients, message),) = inbox.wait()
        assert recipients == ["erin@example.com"]
        link = re.search(r"https://calls\.example\.com:8443(/link/\S+)", message.get_content())
        path = link.group(1)
        erin = Browser(client)
        response, body = await erin.get(path)
        assert response.status == 200 and "erin" in body
        response, body = await erin.post(path, {"new": "erin", "again": "erin"}, csrf=False)
        assert response.status == 400 and "at least 12" in body
        response, _ = await erin.post(
            path, {"new": "a good long password", "again": "a good long password"}, csrf=False
        )
        assert response.status == 303 and (await erin.get("/calls"))[0].status == 200
        assert (await Browser(client).get(path))[0].status == 404  # used up
        assert (await Browser(client).sign_in("erin", "a good long password")).status == 303
    finally:
        await client.close()


async def test_a_failed_invitation_adds_nobody(world):
    mailer = Mailer(SmtpConfig(host="127.0.0.1", port=1, security="none", sender=SENDER))
    client = await client_for(world, mailer)
    try:
        owner = Browser(client)
        await owner.sign_in("owner")
        await owner.get("/users")
        response, body = await owner.post(
            "/users",
            {"action": "add", "username": "finn", "email": "finn@example.com",
             "role": "analyst", "account": str(world.accounts["a"])},
        )  # fmt: skip
        assert response.status == 400 and "could not be mailed" in body
        with world.sessions() as session:
            assert session.scalar(select(User).where(User.username == "finn")) is None
    finally:
        await client.close()


async def test_password_reset_by_mail_tells_nobody_who_exists(world, smtp):
    inbox, mailer = smtp
    with world.sessions.begin() as session:
        session.execute(update(User).where(User.username == "alice").values(email="a@example.com"))
    client = await client_for(world, mailer)
    try:
        answers = []
        for who in ("nobody", "viewer-a", "A@example.com"):  # unknown, no address, known
            browser = Browser(client)
            await browser.get("/reset")
            response, body = await browser.post("/reset", {"who": who}, csrf=False)
            answers.append((response.status, body.replace(who, "")))
        assert len(set(answers)) == 1 and answers[0][0] == 200
        ((recipients, message),) = inbox.wait()
        assert recipients == ["a@example.com"]
        path = re.search(r"(/link/\S+)", message.get_content()).group(1)
        with world.sessions.begin() as session:  # the hour is over
            session.execute(update(UserLink).values(expires_at=UserLink.created_at))
        assert (await Browser(client).get(path))[0].status == 404
        with world.sessions() as session:
            asked = session.scalars(
                select(AuditEntry.detail).where(AuditEntry.action == "user.reset.asked")
            ).all()
        assert asked == ["no such user or no address"] * 2 + [None]
    finally:
        await client.close()


def test_alerts_are_mailed_to_owners_and_admins_once_an_hour(world, smtp):
    inbox, mailer = smtp
    with world.sessions.begin() as session:
        session.execute(update(User).where(User.username == "owner").values(email="o@example.com"))
        session.execute(update(User).where(User.username == "alice").values(email="a@example.com"))
        admin.add_user(session, "ada", PASSWORD, "admin", email="ada@example.com")
    handler = AlertMail(mailer, world.sessions)
    logger = logging.getLogger("appliance.test.alerts")
    logger.addHandler(handler)
    try:
        logger.error("ALERT recording of call %s cannot be sealed: %s", "x", "disk full")
        logger.error("ALERT recording of call %s cannot be sealed: %s", "x", "disk full")
        logger.error("an ordinary error")
        logger.warning("ALERT account %d: recordings use %.1f MB, near or over its quota", 2, 9.5)
        messages = inbox.wait(4)
        handler.pool.shutdown(wait=True)
    finally:
        logger.removeHandler(handler)
    assert sorted(r[0] for r, _ in messages) == ["ada@example.com", "ada@example.com",
                                                 "o@example.com", "o@example.com"]  # fmt: skip
    assert sorted(m["Subject"].split(":")[1].split()[0] for _, m in messages) == [
        "account", "account", "recording", "recording"
    ]  # fmt: skip
    assert handler.mailed == 4


async def test_a_reset_link_still_asks_for_the_code_and_mails_are_spaced(world, smtp):
    import pyotp

    from appliance import totp
    from appliance.secrets import SecretBox
    from tests.web_world import app_for

    inbox, mailer = smtp
    secret = totp.new_secret()
    box = SecretBox(b"b" * 32)
    with world.sessions.begin() as session:
        session.execute(
            update(User)
            .where(User.username == "owner")
            .values(email="o@example.com", totp_sealed=box.seal(secret))
        )
    from aiohttp.test_utils import TestClient, TestServer

    client = TestClient(TestServer(app_for(world, mailer=mailer, box=box)))
    await client.start_server()
    try:
        for _ in range(2):
            browser = Browser(client)
            await browser.get("/reset")
            await browser.post("/reset", {"who": "owner"}, csrf=False)
        ((_, message),) = inbox.wait()
        assert len(inbox.messages) == 1  # the second ask, minutes later at most, mails nothing
        path = re.search(r"(/link/\S+)", message.get_content()).group(1)
        browser = Browser(client)
        await browser.get(path)
        response, _ = await browser.post(
            path, {"new": "another long password", "again": "another long password"}, csrf=False
        )
        assert response.status == 303 and response.headers["Location"].startswith("/login/code")
        assert (await browser.get("/users"))[0].headers["Location"] == "/login/code"
        await browser.get("/login/code")
        response, _ = await browser.post(
            "/login/code", {"code": pyotp.TOTP(secret).now(), "next": "/users"}
        )
        assert response.status == 303 and (await browser.get("/users"))[0].status == 200
    finally:
        await client.close()
