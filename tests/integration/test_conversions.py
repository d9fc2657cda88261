"""Conversions and the outbox against a real database and real HTTP receivers on loopback
that check each request against the shape the platforms document: a signed webhook, Google
Ads (OAuth refresh, then uploadClickConversions), the Meta Conversions API, and Microsoft
Advertising (OAuth refresh, then the ApplyOfflineConversions SOAP call). Failures are retried
with backoff and parked; redirects are not followed; nothing is sent twice. The receivers are
reached because destinations.allowed_networks names 127.0.0.1; without it this machine and
private networks are refused in every spelling, when saved and when connecting, and the
delivery log keeps a fixed reason, never what answered."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import secrets
import time
import xml.etree.ElementTree as ET

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from appliance.admin import AdminError
from appliance.config import DestinationsConfig
from appliance.conversions import admin as conversions
from appliance.conversions import outbound, platforms
from appliance.conversions.outbox import MAX_ATTEMPTS, Outbox
from appliance.conversions.signing import verify
from appliance.conversions.store import CALL_JOB, HANDLERS, LEAD_JOB
from appliance.db.models import Call, Conversion, Delivery, Destination, DniSite, Visit
from appliance.jobs import queue
from appliance.jobs.runner import Runner
from appliance.secrets import SecretBox

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"


class Receiver:
    """The far ends: each route checks its request and records it; `answers` queues the
    webhook's statuses (200 when empty)."""

    def __init__(self) -> None:
        self.seen: dict[str, list] = {"hook": [], "google": [], "meta": [], "microsoft": []}
        self.answers: list[int] = []
        self.problems: list[str] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/hook", self.hook)
        app.router.add_post("/google/token", self.token("g-access"))
        app.router.add_post("/google/v19/customers/{call}", self.google)
        app.router.add_post("/meta/{pixel}/events", self.meta)
        app.router.add_post("/ms/token", self.token("ms-access", scope="msads.manage"))
        app.router.add_post("/ms/soap", self.microsoft)
        return app

    def check(self, ok: bool, problem: str) -> None:
        if not ok:
            self.problems.append(problem)
            raise web.HTTPBadRequest(text=problem)

    async def hook(self, request: web.Request) -> web.Response:
        status = self.answers.pop(0) if self.answers else 200
        if status == 302:
            raise web.HTTPFound("/elsewhere")
        self.seen["hook"].append((dict(request.headers), await request.read()))
        return web.Response(status=status)

    def token(self, token: str, scope: str | None = None):
        async def answer(request: web.Request) -> web.Response:
            form = await request.post()
            self.check(form.get("grant_type") == "refresh_token", "grant_type")
            refresh = str(form.get("refresh_token"))
            self.check(refresh.startswith("refresh-"), "refresh_token")
            self.check(form.get("client_secret") == "client-secret", "client_secret")
            self.check(scope is None or scope in str(form.get("scope")), "scope")
            # each refresh token its own access token (the first as the tests below expect)
            suffix = "" if refresh == "refresh-1" else f"-{refresh}"
            return web.json_response({"access_token": token + suffix, "expires_in": 3599})

        return answer

    async def google(self, request: web.Request) -> web.Response:
        customer, _, method = request.match_info["call"].partition(":")
        self.check(customer.isdigit() and method == "uploadClickConversions", "path")
        self.check(request.headers.get("Authorization", "").startswith("Bearer g-access"), "auth")
        self.seen.setdefault("google_auth", []).append((customer, request.headers["Authorization"]))
        self.check(request.headers.get("developer-token") == "dev-token", "developer-token")
        body = await request.json()
        self.check(body.get("partialFailure") is True, "partialFailure")
        (upload,) = body["conversions"]
        self.check("gclid" in upload, "gclid")
        self.check(
            re.fullmatch(rf"customers/{customer}/conversionActions/\d+", upload["conversionAction"])
            is not None,
            "conversionAction",
        )
        if upload["gclid"] == "Cj0refused":  # as Google refuses an unknown click
            return web.json_response({"error": {"code": 400}}, status=400)
        self.check(
            re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[+-]\d\d:\d\d", upload[
                "conversionDateTime"]) is not None,
            "conversionDateTime",
        )  # fmt: skip
        self.check(re.fullmatch(r"[A-Z]{3}", upload["currencyCode"]) is not None, "currency")
        self.seen["google"].append(upload)
        return web.json_response({"results": [{"gclid": upload["gclid"]}]})

    async def meta(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.check(request.match_info["pixel"] == "42", "pixel")
        self.check(body.get("access_token") == "meta-token", "access_token")
        (event,) = body["data"]
        self.check(isinstance(event["event_time"], int), "event_time")
        self.check(event["action_source"] in ("phone_call", "other", "website"), "action_source")
        for hashed in event["user_data"].get("ph", []):
            self.check(re.fullmatch(r"[0-9a-f]{64}", hashed) is not None, "ph hashed")
        self.seen["meta"].append(event)
        return web.json_response({"events_received": 1})

    async def microsoft(self, request: web.Request) -> web.Response:
        self.check(request.headers.get("SOAPAction") == "ApplyOfflineConversions", "SOAPAction")
        root = ET.fromstring(await request.read())
        ns = {"s": SOAP, "m": platforms.MS_NS}
        self.check(root.findtext("s:Header/m:AuthenticationToken", None, ns) == "ms-access", "auth")
        self.check(root.findtext("s:Header/m:DeveloperToken", None, ns) == "dev-token", "dev")
        self.check(root.findtext("s:Header/m:CustomerId", None, ns) == "11", "customer")
        self.check(root.findtext("s:Header/m:CustomerAccountId", None, ns) == "22", "account")
        found = root.find(
            "s:Body/m:ApplyOfflineConversionsRequest/m:OfflineConversions/m:OfflineConversion", ns
        )
        self.check(found is not None, "OfflineConversion")
        conversion = {child.tag.split("}")[1]: child.text for child in found}
        self.check(
            re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", conversion["ConversionTime"])
            is not None,
            "ConversionTime",
        )
        self.seen["microsoft"].append(conversion)
        return web.Response(
            text=f'<s:Envelope xmlns:s="{SOAP}"><s:Body><ApplyOfflineConversionsResponse '
            f'xmlns="{platforms.MS_NS}"><PartialErrors/></ApplyOfflineConversionsResponse>'
            "</s:Body></s:Envelope>",
            content_type="text/xml",
        )


@pytest.fixture
async def receiver():
    far = Receiver()
    server = TestServer(far.app())
    await server.start_server()
    far.base = str(server.make_url("")).rstrip("/")
    yield far
    await server.close()


BOX = SecretBox(secrets.token_bytes(32))
LOOPBACK = "127.0.0.1/32"  # destinations.allowed_networks of these tests' receivers


class Converter:
    """What the controller's job runner does for a finished call or a new lead (whose jobs
    the call store and the visit writer enqueue; here the test enqueues them)."""

    def __init__(self, sessions) -> None:
        self.sessions = sessions
        self.runner = Runner(sessions, HANDLERS, "test-worker")

    def evaluate(self, kind: str, key) -> None:
        with self.sessions.begin() as session:
            queue.enqueue(session, CALL_JOB if kind == "call" else LEAD_JOB, str(key))
        for job in self.runner.claim():
            assert self.runner.execute(job)


PLATFORM_SECRETS = {
    "developer_token": "dev-token",
    "client_secret": "client-secret",
    "refresh_token": "refresh-1",
}


def configure(world, base: str) -> str:
    """Rules and destinations of client A; the webhook's signing secret."""
    account = world.accounts["a"]
    with world.sessions.begin() as session:
        conversions.add_rule(
            session,
            conversions.RuleRequest("Qualified call", answered=True, min_talk_seconds=60, value=50),
            account,
            "test",
        )
        _, secret = conversions.add_destination(
            session,
            BOX,
            conversions.DestinationRequest(
                "CRM", "webhook", f"{base}/hook", ("conversion.created", "call.ended")
            ),
            account,
            "test",
            DestinationsConfig(allowed_networks=LOOPBACK).allowed,
        )
        google, _ = conversions.add_destination(
            session,
            BOX,
            conversions.DestinationRequest(
                "Google", "google_ads",
                settings={"customer_id": "123-456-7890", "client_id": "cid"},
                secrets=PLATFORM_SECRETS,
            ),
            account,
            "test",
        )  # fmt: skip
        conversions.set_google_action(session, google, "Qualified call", "987", "test")
        conversions.add_destination(
            session,
            BOX,
            conversions.DestinationRequest(
                "Meta", "meta", settings={"pixel_id": "42"}, secrets={"token": "meta-token"}
            ),
            account,
            "test",
        )
        conversions.add_destination(
            session,
            BOX,
            conversions.DestinationRequest(
                "Microsoft", "microsoft",
                settings={"customer_id": "11", "account_id": "22", "client_id": "cid"},
                secrets=PLATFORM_SECRETS,
            ),
            account,
            "test",
        )  # fmt: skip
    return str(secret)


def web_call(
    world, click: tuple[str, str] | None, talk: float = 90.0, caller="+13125550111",
    attribution: str = "held",
):  # fmt: skip
    """A finished call of client A, from a website visit that came with `click`."""
    call_id = world.add_call("a", caller_number=caller)
    with world.sessions.begin() as session:
        call = session.get(Call, call_id)
        call.talk_seconds = talk
        if click:
            site = session.scalar(select(DniSite.id))
            if site is None:
                site_row = DniSite(
                    account_id=world.accounts["a"], name="Shop", key="k" * 22,
                    origins="https://shop.example", replace_numbers="+12025550100",
                )  # fmt: skip
                session.add(site_row)
                session.flush()
                site = site_row.id
            visit_id = secrets.token_hex(16)
            now = dt.datetime.now(dt.UTC)
            session.add(
                Visit(
                    id=visit_id, site_id=site, account_id=world.accounts["a"],
                    visitor="f" * 32, started_at=now, last_seen_at=now,
                    landing_page="https://shop.example/", source_name="google",
                    click_id_type=click[0], click_id=click[1],
                )
            )  # fmt: skip
            session.flush()
            call.visit_id, call.attribution = visit_id, attribution
    return call_id


def outbox(receiver: Receiver, world) -> Outbox:
    base = receiver.base
    config = DestinationsConfig(
        timeout=5,
        google_ads_api=f"{base}/google/v19",
        google_oauth=f"{base}/google/token",
        meta_api=f"{base}/meta",
        microsoft_api=f"{base}/ms/soap",
        microsoft_oauth=f"{base}/ms/token",
        allowed_networks=LOOPBACK,
    )
    return Outbox(world.sessions, BOX, config)


async def drain(box: Outbox, now: float) -> int:
    async with outbound.client(box.config) as http:
        claimed = box.claim(now, limit=100)
        for one in claimed:
            await box.deliver(http, one)
    return len(claimed)


def deliveries(world) -> list[tuple[str, str, str, int]]:
    with world.sessions() as session:
        return [
            (name, d.event, d.state, d.attempts)
            for d, name in session.execute(
                select(Delivery, Destination.name)
                .join(Destination)
                .order_by(Destination.name, Delivery.id)
            )
        ]


async def test_conversions_reach_each_destination_in_its_documented_shape(world, receiver):
    secret = configure(world, receiver.base)
    converter = Converter(world.sessions)
    google_call = web_call(world, ("gclid", "Cj0KCQgoogle"))
    ms_call = web_call(world, ("msclkid", "msclick1"))
    short_call = web_call(world, ("gclid", "Cj0short"), talk=30)  # not a conversion
    for call_id in (google_call, ms_call, short_call, google_call):  # the last one replayed
        converter.evaluate("call", call_id)  # a call's job is queued once: the replay is not
    with world.sessions() as session:
        assert len(session.scalars(select(Conversion)).all()) == 2

    assert await drain(outbox(receiver, world), time.time()) == 9
    assert receiver.problems == []
    assert {state for _, _, state, _ in deliveries(world)} == {"delivered"}
    # the webhook: both conversions and all three calls, signed
    events = []
    for headers, body in receiver.seen["hook"]:
        assert verify(
            secret, headers["X-Appliance-Timestamp"], body, headers["X-Appliance-Signature"],
            time.time(),
        )  # fmt: skip
        events.append(json.loads(body)["event"])
    assert sorted(events) == ["call.ended"] * 3 + ["conversion.created"] * 2
    (google,) = receiver.seen["google"]
    assert (google["gclid"], google["conversionAction"], google["conversionValue"]) == (
        "Cj0KCQgoogle",
        "customers/1234567890/conversionActions/987",
        50.0,
    )
    (microsoft,) = receiver.seen["microsoft"]
    assert (microsoft["MicrosoftClickId"], microsoft["ConversionName"]) == (
        "msclick1",
        "Qualified call",
    )
    assert len(receiver.seen["meta"]) == 2
    assert await drain(outbox(receiver, world), time.time() + 3600) == 0  # nothing twice


async def test_an_ambiguous_attribution_credits_no_ad_click(world, receiver):
    configure(world, receiver.base)
    Converter(world.sessions).evaluate(
        "call", web_call(world, ("gclid", "Cj0maybe"), attribution="ambiguous")
    )
    with world.sessions() as session:
        (conversion,) = session.scalars(select(Conversion))
        assert conversion.click_id is None
    kinds = {name for name, _, _, _ in deliveries(world)}
    assert kinds == {"CRM", "Meta"}  # no Google Ads or Microsoft upload without a click


async def test_a_failing_receiver_is_retried_with_backoff_then_parked(world, receiver):
    configure(world, receiver.base)
    with world.sessions.begin() as session:  # the webhook alone
        for d in session.scalars(select(Destination).where(Destination.kind != "webhook")):
            session.delete(d)
    Converter(world.sessions).evaluate("call", web_call(world, None))
    box = outbox(receiver, world)
    receiver.answers = [302] + [500] * (2 * MAX_ATTEMPTS)  # for both deliveries
    now = time.time()
    assert await drain(box, now) == 2  # conversion.created and call.ended
    assert await drain(box, now + 29) == 0  # claimed: not again until the backoff ends
    with world.sessions() as session:
        first = session.scalars(select(Delivery).order_by(Delivery.id)).first()
        assert (first.state, first.attempts, first.last_status) == ("pending", 1, 302)
    for _ in range(2, MAX_ATTEMPTS + 2):
        now += 6 * 3600 + 1
        await drain(box, now)
    with world.sessions() as session:
        rows = session.scalars(select(Delivery).order_by(Delivery.id)).all()
        parked = [d for d in rows if d.state == "parked"]
        assert len(parked) == 2 and parked[0].attempts == MAX_ATTEMPTS
        assert parked[0].last_status == 500 and "500" in parked[0].last_error
    with world.sessions.begin() as session:
        conversions.retry(session, session.get(Delivery, parked[0].id), "test")
    receiver.answers = []
    assert await drain(box, time.time()) == 1
    with world.sessions() as session:
        assert session.get(Delivery, parked[0].id).state == "delivered"


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (conversions.DestinationRequest("x", "webhook", "http://example.com/h"), "https://"),
        (conversions.DestinationRequest("x", "webhook", "https://u:p@example.com/"), "https://"),
        (conversions.DestinationRequest("x", "webhook", "file:///etc/passwd"), "https://"),
        (
            conversions.DestinationRequest("x", "webhook", "https://e.com", ("call.deleted",)),
            "events",
        ),
        (conversions.DestinationRequest("x", "meta", settings={"pixel_id": "1"}), "token"),
        (
            conversions.DestinationRequest(
                "x", "meta", settings={"pixel_id": "<script>"}, secrets={"token": "t"}
            ),
            "digits",
        ),
        (
            conversions.DestinationRequest(
                "x",
                "meta",
                events=("call.ended",),
                settings={"pixel_id": "1"},
                secrets={"token": "t"},
            ),
            "conversion.created only",
        ),
        (conversions.DestinationRequest("x", "ftp"), "one of"),
    ],
)
def test_destinations_that_would_leak_or_cannot_work_are_refused(world, request_, message):
    with world.sessions.begin() as session, pytest.raises(AdminError, match=message):
        conversions.add_destination(session, BOX, request_, world.accounts["a"], "test")


def test_secrets_are_stored_sealed(world, receiver):
    secret = configure(world, receiver.base)
    raw = (world.sessions.kw["bind"].url.database,)
    with open(raw[0], "rb") as database:
        data = database.read()
    for plain in (secret, "dev-token", "refresh-1", "meta-token", "client-secret"):
        assert plain.encode() not in data


async def test_a_destination_whose_secrets_cannot_be_opened_parks_its_deliveries(world, receiver):
    configure(world, receiver.base)
    Converter(world.sessions).evaluate("call", web_call(world, None))
    other_key = Outbox(world.sessions, SecretBox(secrets.token_bytes(32)), DestinationsConfig())
    assert other_key.claim(time.time()) == []
    assert {state for _, _, state, _ in deliveries(world)} == {"parked"}
    with world.sessions() as session:
        assert "cannot be opened" in session.scalars(select(Delivery.last_error)).first()


async def test_each_destination_signs_in_with_its_own_token_and_refusals_park(world, receiver):
    configure(world, receiver.base)
    with world.sessions.begin() as session:  # client B's Google Ads, on the same OAuth app
        google_b, _ = conversions.add_destination(
            session, BOX,
            conversions.DestinationRequest(
                "Google B", "google_ads",
                settings={"customer_id": "1112223334", "client_id": "cid"},
                secrets=PLATFORM_SECRETS | {"refresh_token": "refresh-2"},
            ),
            world.accounts["b"], "test",
        )  # fmt: skip
        conversions.set_google_action(session, google_b, "Qualified call", "111", "test")
        conversions.add_rule(
            session, conversions.RuleRequest("Qualified call", answered=True), world.accounts["b"],
            "test",
        )  # fmt: skip
    converter = Converter(world.sessions)
    converter.evaluate("call", web_call(world, ("gclid", "Cj0a")))
    converter.evaluate("call", web_call(world, ("gclid", "Cj0refused")))
    call_b = world.add_call("b")
    with world.sessions.begin() as session:
        call = session.get(Call, call_b)
        call.talk_seconds = 90
    converter.evaluate("call", call_b)  # no visit: no click, so nothing for Google B
    box = outbox(receiver, world)
    await drain(box, time.time())
    assert receiver.problems == []
    assert set(receiver.seen["google_auth"]) == {("1234567890", "Bearer g-access")}
    with world.sessions() as session:
        refused = session.scalars(
            select(Delivery).where(Delivery.last_status == 400)
        ).one()  # Google refused the unknown click: parked at once, not tried ten times
        assert (refused.state, refused.attempts) == ("parked", 1)
        webhook_bodies = [json.loads(body) for _, body in receiver.seen["hook"]]
    assert all(isinstance(b["delivery"], int) for b in webhook_bodies)  # signed with the body


async def test_a_token_answer_that_is_not_json_is_an_error_that_is_retried(world, receiver):
    configure(world, receiver.base)
    Converter(world.sessions).evaluate("call", web_call(world, ("msclkid", "ms1")))
    box = outbox(receiver, world)
    base = receiver.base
    box.config = DestinationsConfig(  # its sign-in answers with an empty page
        timeout=5, microsoft_oauth=f"{base}/hook", microsoft_api=f"{base}/ms/soap",
        meta_api=f"{base}/meta", allowed_networks=LOOPBACK,
    )  # fmt: skip
    await drain(box, time.time())
    with world.sessions() as session:
        microsoft = session.execute(
            select(Delivery).join(Destination).where(Destination.kind == "microsoft")
        ).scalar_one()
    assert (microsoft.state, microsoft.attempts) == ("pending", 1)
    assert microsoft.last_error.startswith("the sign-in")


async def test_a_visit_s_many_leads_convert_once_per_rule(world, receiver):
    from appliance.db.models import Lead

    with world.sessions.begin() as session:
        conversions.add_rule(
            session, conversions.RuleRequest("Lead", applies_to="lead"), world.accounts["a"],
            "test",
        )  # fmt: skip
    call_id = web_call(world, ("gclid", "Cj0lead"))
    with world.sessions.begin() as session:
        visit_id = session.get(Call, call_id).visit_id
        site_id = session.get(Visit, visit_id).site_id
        leads = [
            Lead(account_id=world.accounts["a"], site_id=site_id, visit_id=visit_id,
                 form="contact", fields="{}")
            for _ in range(3)
        ]  # fmt: skip
        session.add_all(leads)
        session.flush()
        ids = [lead.id for lead in leads]
    for lead_id in ids:
        Converter(world.sessions).evaluate("lead", lead_id)
    with world.sessions() as session:
        assert len(session.scalars(select(Conversion)).all()) == 1


class Greeter:
    """A service on loopback that speaks first, as AMI and SMTP do; counts who connected."""

    def __init__(self, banner: bytes) -> None:
        self.banner = banner
        self.connections = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self.greet, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def greet(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.write(self.banner)
        await writer.drain()
        writer.close()


@pytest.fixture
async def greeters():
    ami = Greeter(b"Asterisk Call Manager/11.0.0\r\n")
    smtp = Greeter(b"220 mail.example ESMTP Postfix\r\n")
    for greeter in (ami, smtp):
        await greeter.start()
    yield ami, smtp
    for greeter in (ami, smtp):
        greeter.server.close()
        await greeter.server.wait_closed()


def stored_webhooks(world, urls) -> dict[int, str]:
    """A webhook of client A to each address, stored as it may be however it got there (saved
    while its name resolved elsewhere, or before these checks), each with a delivery queued;
    the delivery ids, to their address."""
    made = {}
    event = {"event": "call.ended", "id": "call-x", "occurred_at": "2026-01-01T00:00:00+00:00",
             "data": {}}  # fmt: skip
    with world.sessions.begin() as session:
        for n, url in enumerate(urls):
            destination = Destination(
                account_id=world.accounts["a"], name=f"hook {n}", kind="webhook", url=url,
                events="call.ended", settings="{}",
                secret_sealed=BOX.seal(json.dumps({"secret": "whsec_test"})),
            )  # fmt: skip
            session.add(destination)
            session.flush()
            delivery = Delivery(
                destination_id=destination.id, event="call.ended", payload=json.dumps(event)
            )
            session.add(delivery)
            session.flush()
            made[delivery.id] = url
    return made


def outcomes(world, ids) -> dict[int, tuple]:
    with world.sessions() as session:
        return {
            i: (d.state, d.attempts, d.last_status, d.last_error)
            for i in ids
            if (d := session.get(Delivery, i)) is not None
        }


async def test_destinations_on_this_machine_or_private_networks_are_refused_on_connect(
    world, greeters
):
    """Without destinations.allowed_networks nothing here is connected to: not the AMI's or
    the mail server's port on loopback in any spelling, not a name that resolves to it, not a
    private network or the cloud's metadata address; each delivery is parked at once with the
    kind of address it named."""
    ami, smtp = greeters
    refused = {
        f"http://127.0.0.1:{ami.port}/hooks/T0-secret": "loopback",
        f"http://127.0.0.1:{smtp.port}/": "loopback",
        f"https://localhost:{ami.port}/hooks/T0-secret": "loopback",  # a name, resolved
        f"https://[::1]:{ami.port}/": "loopback",
        f"https://[::ffff:127.0.0.1]:{ami.port}/": "loopback",
        f"https://0.0.0.0:{ami.port}/": "unspecified",
        f"https://0x7f000001:{ami.port}/": "loopback",  # a name to the client, 127.0.0.1 to DNS
        f"https://2130706433:{ami.port}/": None,  # not an address to the client at all
        f"https://127.1:{ami.port}/": None,
        "https://10.1.2.3/hooks": "private",
        "https://192.168.0.1/": "private",
        "https://[fd00::1]/": "private",
        "https://169.254.169.254/latest/meta-data/": "link-local",
        "https://100.64.0.1/": "shared (carrier-grade NAT)",
    }
    with world.sessions.begin() as session:  # Meta, its API address on loopback
        conversions.add_destination(
            session, BOX,
            conversions.DestinationRequest(
                "Meta", "meta", settings={"pixel_id": "42"}, secrets={"token": "meta-token"}
            ),
            world.accounts["a"], "test",
        )  # fmt: skip
        conversions.add_rule(session, conversions.RuleRequest("Call"), world.accounts["a"], "t")
    Converter(world.sessions).evaluate("call", web_call(world, None))
    with world.sessions() as session:
        (meta,) = session.scalars(select(Delivery.id))
    made = stored_webhooks(world, refused)
    config = DestinationsConfig(timeout=5, meta_api=f"http://127.0.0.1:{smtp.port}/graph")
    await drain(Outbox(world.sessions, BOX, config), time.time())

    found = outcomes(world, [*made, meta])
    for delivery_id, url in made.items():
        why = refused[url]
        reason = f"refused: {why} address" if why else "not a valid address"
        assert found[delivery_id] == ("parked", 1, None, reason), url
    assert found[meta] == ("parked", 1, None, "refused: loopback address")
    assert ami.connections == 0 and smtp.connections == 0


async def test_an_allowed_address_is_reached_and_the_log_keeps_no_word_of_what_answered(
    world, greeters
):
    """destinations.allowed_networks opens 127.0.0.1: the AMI's and the mail server's ports
    are reached (an admin's mistake, not an attack), and what they said is not kept."""
    ami, smtp = greeters
    urls = [f"http://127.0.0.1:{g.port}/hooks/T0-secret?token=abc" for g in (ami, smtp)]
    made = stored_webhooks(world, urls)
    config = DestinationsConfig(timeout=5, allowed_networks=LOOPBACK)
    await drain(Outbox(world.sessions, BOX, config), time.time())
    assert (ami.connections, smtp.connections) == (1, 1)
    found = outcomes(world, made)
    assert set(found.values()) == {("pending", 1, None, "the answer is not HTTP")}
    with world.sessions() as session:  # nowhere in the row: not the banner, not the address
        raw = json.dumps([repr(session.get(Delivery, i).__dict__) for i in made])
    for said in ("Asterisk Call Manager", "ESMTP", "T0-secret", str(ami.port), str(smtp.port)):
        assert said not in raw


@pytest.mark.parametrize(
    "url",
    ["https://127.0.0.1/h", "https://localhost./h", "https://2130706433/h", "https://0x7f.1/h",
     "https://[::1]/h", "https://[::ffff:a9fe:a9fe]/h", "https://169.254.169.254/h",
     "https://10.0.0.1/h", "https://0.0.0.0/h", "http://127.0.0.1:8080/h"],
)  # fmt: skip
def test_a_webhook_to_this_machine_is_refused_when_saved(world, url):
    with world.sessions.begin() as session, pytest.raises(AdminError, match="webhook"):
        conversions.add_destination(
            session, BOX, conversions.DestinationRequest("x", "webhook", url),
            world.accounts["a"], "test",
        )  # fmt: skip
    with world.sessions() as session:
        assert session.scalars(select(Destination)).all() == []
