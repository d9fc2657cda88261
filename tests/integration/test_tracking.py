"""The public tracking listener against a real database: numbers from the pool with CORS for
the site's origins only, refusals of everything else (other origins, forged pages, bad JSON,
invalid UTF-8, oversize bodies, floods, hostile strings), Do Not Track, Global Privacy Control
and consent, form leads without secrets, holds that survive a restart, and calls attributed
through the call store. Pools that a few networks cannot take from real visitors, and what
page views and sessions may pile up, bounded per network.

The listener reads the time through its module's `time`; the `clock` fixture stands in for it
so that a test can let a heartbeat interval or a day pass without waiting for it."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import time
import urllib.parse

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from appliance.admin import AdminError, NumberRequest, add_number
from appliance.attribution import sites
from appliance.attribution.dni import HEARTBEAT, Dni
from appliance.calls.model import CallStarted
from appliance.calls.store import CallStore
from appliance.config import TrackingConfig
from appliance.db.models import Call, Lead, NumberHold, TrackingNumber, Visit, VisitPage
from appliance.web import tracking
from appliance.web.tracking import MAX_BODY, tracking_app
from tests.hostile import INVALID_UTF8, STRINGS
from tests.web_world import build_world

pytestmark = pytest.mark.usefixtures("cheap_passwords")  # users are set-up here

ORIGIN = "https://www.example.com"
POOL = ("+12025550130", "+12025550131")
V1, V2, V3, V4 = "1" * 32, "2" * 32, "3" * 32, "4" * 32


class Site:
    def __init__(self, world, dni: Dni, client: TestClient, key: str) -> None:
        self.world, self.dni, self.client, self.key = world, dni, client, key

    async def ask(self, visitor: str = V1, origin: str | None = ORIGIN, **fields):
        """As the visitor's own browser: each visitor from an address of its own (the test
        client is a trusted proxy that names it in X-Forwarded-For)."""
        body = {"site": self.key, "visitor": visitor, "url": f"{ORIGIN}/", **fields}
        headers = {"Content-Type": "text/plain", "X-Forwarded-For": address_of(visitor)}
        headers |= {"Origin": origin} if origin else {}
        headers |= fields.pop("headers", None) or {}
        body.pop("headers", None)
        return await self.client.post("/t/v1/number", data=json.dumps(body), headers=headers)

    async def number(self, visitor: str = V1, **fields) -> str | None:
        response = await self.ask(visitor, **fields)
        assert response.status == 200, await response.text()
        return (await response.json())["number"]

    def rows(self, model) -> list:
        with self.world.sessions() as session:
            return list(session.scalars(select(model)))


class Clock:
    """The listener's time: now, until a test moves it on."""

    def __init__(self) -> None:
        self.now = time.time()

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(autouse=True)
def clock(monkeypatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(tracking, "time", clock)
    return clock


def make_site(world, consent: bool = False, pool: tuple[str, ...] = POOL) -> str:
    with world.sessions.begin() as session:
        for number in pool:
            add_number(session, NumberRequest(number, source="Website"), world.accounts["a"])
        site = sites.add_site(
            session,
            sites.SiteRequest(
                "Shop", (ORIGIN,), ("+12025550100",), consent_required=consent, forms=("contact",)
            ),
            world.accounts["a"],
            "test",
        )
        sites.set_pool(session, site, list(pool), "test")
        return site.key


def address_of(visitor: str) -> str:
    """Each visitor of these tests from a network of its own."""
    return f"203.0.{int(visitor[:2], 16)}.113"


async def start(world, config: TrackingConfig | None = None) -> tuple[Dni, TestClient]:
    config = config or TrackingConfig(trusted_proxies="127.0.0.1")
    dni = Dni(world.sessions, config)
    configs = dni.read_sites()
    dni.apply(configs, dni.read_holds(configs))
    client = TestClient(TestServer(tracking_app(dni, config)))
    await client.start_server()
    return dni, client


@pytest.fixture
async def site(tmp_path):
    world = build_world(tmp_path)
    key = make_site(world)
    dni, client = await start(world)
    yield Site(world, dni, client, key)
    await client.close()


async def test_a_visitor_gets_a_pool_number_for_the_site_origin_only(site):
    response = await site.ask(referrer="https://www.google.com/")
    assert response.status == 200
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert response.headers["Vary"] == "Origin" and response.headers["Cache-Control"] == "no-store"
    answer = await response.json()
    assert answer["number"] in POOL and answer["replace"] == ["+12025550100"]
    assert answer["forms"] == ["contact"] and answer["tracking"] is True
    assert await site.number(V1, beat=True) == answer["number"]  # sticky, no page recorded
    await site.dni.flush()
    (visit,) = site.rows(Visit)
    assert (visit.source_name, visit.medium, visit.ip) == ("google", "organic", "203.0.17.0")
    assert len(site.rows(VisitPage)) == 1 and len(site.rows(NumberHold)) == 1


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"site": "nonexistentsitekey"}, 404),
        ({"origin": "https://evil.example.net"}, 403),
        ({"origin": None}, 403),
        ({"origin": "https://www.example.com.evil.net"}, 403),
        ({"url": "https://evil.example.net/"}, 403),  # a page of another origin
        ({"url": "javascript:alert(1)"}, 400),
        ({"visitor": "../../etc/passwd"}, 400),
        ({"visitor": 12}, 400),
        ({"referrer": "data:text/html,<script>"}, 400),
        ({"referrer": "x" * 3000}, 400),
    ],
)
async def test_requests_that_are_not_from_the_site_are_refused(site, change, status):
    origin = change.pop("origin", ORIGIN)
    visitor = change.pop("visitor", V1)
    body = {"site": site.key, "visitor": visitor, "url": f"{ORIGIN}/", **change}
    headers = {"Origin": origin} if origin else {}
    response = await site.client.post("/t/v1/number", data=json.dumps(body), headers=headers)
    assert response.status == status
    assert "error" in await response.json()
    assert "Access-Control-Allow-Origin" not in response.headers
    await site.dni.flush()
    assert site.rows(Visit) == []


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (INVALID_UTF8, 400),
        (b"[1, 2]", 400),
        (b"{}", 400),
        (b'{"site": "' + b"x" * (MAX_BODY + 10) + b'"}', 413),
    ],
)
async def test_bodies_that_are_not_small_json_objects_are_refused(site, body, status):
    response = await site.client.post("/t/v1/number", data=body, headers={"Origin": ORIGIN})
    assert response.status == status
    assert response.headers["Content-Type"].startswith("application/json")


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/t/v1/number", 405),
        ("GET", "/calls", 404),
        ("GET", "/api/v1/calls", 404),
        ("GET", "/health", 404),
        ("GET", "/login", 404),
        ("GET", "/t/v1/../../etc/passwd", 404),
    ],
)
async def test_nothing_of_the_admin_ui_is_on_the_tracking_listener(site, method, path, status):
    response = await site.client.request(method, path)
    assert response.status == status
    assert response.headers["Server"] == "appliance"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("text", STRINGS)
async def test_hostile_campaign_values_and_referrers_are_refused_or_stored_inert(site, text):
    url = f"{ORIGIN}/?utm_source={urllib.parse.quote(text)}&utm_campaign={urllib.parse.quote(text)}"
    response = await site.ask(V1, url=url, referrer=text)
    assert response.status in (200, 400, 413), await response.text()
    if response.status == 200:
        await site.dni.flush()
        for visit in site.rows(Visit):
            for value in (visit.source_name, visit.campaign_name or "", visit.referrer or ""):
                assert all(ord(c) >= 32 for c in value) and len(value) <= 2000


@pytest.mark.parametrize("header", [{"Sec-GPC": "1"}, {"DNT": "1"}])
async def test_do_not_track_and_global_privacy_control_are_honoured(site, header):
    response = await site.ask(headers=header)
    assert response.status == 200
    assert await response.json() == {
        "number": None,
        "replace": [],
        "forms": [],
        "tracking": False,
        "heartbeat": 60,
    }
    await site.dni.flush()
    assert site.rows(Visit) == []


async def test_a_site_that_needs_consent_tracks_nothing_without_it(tmp_path):
    world = build_world(tmp_path)
    key = make_site(world, consent=True)
    dni, client = await start(world)
    try:
        site = Site(world, dni, client, key)
        assert await site.number(V1) is None
        assert await site.number(V1, consent="yes") is None  # only true is consent
        await dni.flush()
        assert site.rows(Visit) == []
        assert await site.number(V1, consent=True) in POOL
    finally:
        await client.close()


async def test_floods_are_limited_per_address_and_new_visits_more_so(tmp_path):
    world = build_world(tmp_path)
    key = make_site(world)
    dni, client = await start(
        world,
        TrackingConfig(requests_per_minute=8, new_visits_per_hour=12, trusted_proxies="127.0.0.1"),
    )
    one = {"headers": {"X-Forwarded-For": "198.51.100.7"}}  # every visitor from one address
    try:
        site = Site(world, dni, client, key)
        assert await site.number(V1, **one) and await site.number(V2, **one)
        refused = await site.ask(V3, **one)  # a third new visit from this address
        assert refused.status == 429
        assert await site.number(V1, **one)  # visits already going on go on
        statuses = [(await site.ask(V1, **one)).status for _ in range(6)]
        assert statuses[-1] == 429 and 200 in statuses
        assert (await site.ask(V3)).status == 200  # another address has its own budget
        await dni.flush()
        assert len(site.rows(Visit)) == 3
    finally:
        await client.close()


@pytest.mark.parametrize(
    ("first", "second", "third"),
    [
        ("2001:db8:1:2::5", "2001:db8:1:2::ffff", "2001:db8:1:2::5"),  # one /64
        ("2001:db8:1:2::5", "2001:db8:1:3::5", "2001:db8:1:ffff::1"),  # /64s of one /48
        ("198.51.100.1", "198.51.100.2", "::ffff:198.51.100.3"),  # addresses of one /24
    ],
)
async def test_one_network_gets_its_share_of_the_pool_and_no_more(site, first, second, third):
    assert await site.number(V1, headers={"X-Forwarded-For": first}) in POOL
    assert await site.number(V2, headers={"X-Forwarded-For": second}) in POOL  # 2 of 2
    assert await site.number(V3, headers={"X-Forwarded-For": third}) is None  # the site's own
    assert await site.number(V4) in POOL  # another network still gets one


async def test_a_heartbeat_never_takes_a_number_back(site):
    first = await site.number(V1)
    await site.number(V2)
    assert await site.number(V3) == first  # V1 was seen longest ago: recycled to V3
    assert await site.number(V1, beat=True) is None  # V1's page goes back to the site's number
    assert await site.number(V3, beat=True) == first


@pytest.mark.parametrize(
    "body",
    [b"[" * 8000 + b"]" * 8000, b'{"url": "https://www.example.com/\\ud800"}'],
)
async def test_deep_json_and_lone_surrogates_are_refused_not_failed(site, body):
    data = json.loads(body) if body.startswith(b"{") else None
    payload = (
        json.dumps({"site": site.key, "visitor": V1} | data).encode() if data is not None else body
    )
    response = await site.client.post("/t/v1/number", data=payload, headers={"Origin": ORIGIN})
    assert response.status == 400
    assert response.headers["Server"] == "appliance"


async def test_leads_come_only_from_a_visit_going_on_at_its_address_a_few_at_a_time(site):
    await site.number(V1)
    body = {"site": site.key, "visitor": V1, "url": f"{ORIGIN}/c", "form": "contact",
            "fields": {"name": "Ada"}}  # fmt: skip

    async def send(visitor: str = V1, address: str | None = None):
        headers = {"Origin": ORIGIN, "X-Forwarded-For": address or address_of(visitor)}
        data = json.dumps(body | {"visitor": visitor})
        return (await site.client.post("/t/v1/lead", data=data, headers=headers)).status

    assert await send(address="198.51.100.9") == 403  # not the visit's address
    assert await send(V2) == 403  # no visit going on
    assert [await send() for _ in range(6)] == [204] * 5 + [429]
    await site.dni.flush()
    assert len(site.rows(Lead)) == 5


async def test_without_a_trusted_proxy_forwarded_addresses_are_ignored(tmp_path):
    world = build_world(tmp_path)
    key = make_site(world)
    dni, client = await start(world, TrackingConfig())
    try:
        site = Site(world, dni, client, key)
        await site.number(V1)
        await dni.flush()
        assert [v.ip for v in site.rows(Visit)] == ["127.0.0.0"]
    finally:
        await client.close()


async def test_the_pool_recycles_the_visit_seen_longest_ago_and_says_so(site, clock):
    first = await site.number(V1)
    second = await site.number(V2)
    assert {first, second} == set(POOL)
    assert await site.number(V3) == first  # V1 was seen longest ago
    clock.advance(HEARTBEAT)
    assert await site.number(V1) == second  # and asking again, takes V2's
    assert site.dni.utilisation(1e12)[site.dni.sites[site.key].config.id][1:] == (2, 2)
    await site.dni.flush()
    holds = site.rows(NumberHold)
    assert [h.recycled for h in holds] == [False, False, True, True]
    assert [h.released_at is not None for h in holds] == [True, True, False, False]


async def test_holds_survive_a_restart(site):
    first = await site.number(V1)
    second = await site.number(V2)
    await site.dni.flush()
    await site.client.close()
    dni, client = await start(site.world)
    try:
        again = Site(site.world, dni, client, site.key)
        assert await again.number(V2) == second and await again.number(V1) == first
        await dni.flush()
        assert len(again.rows(Visit)) == 2 and len(again.rows(NumberHold)) == 2
    finally:
        await client.close()


async def test_a_tracked_form_becomes_a_lead_without_its_secrets(site):
    await site.number(V1, url=f"{ORIGIN}/?utm_source=radio")
    fields = {"name": "<script>x</script>", "password": "hunter2", "note": "4111111111111111"}
    body = {"site": site.key, "visitor": V1, "url": f"{ORIGIN}/c", "form": "contact"}
    response = await site.client.post(
        "/t/v1/lead",
        data=json.dumps(body | {"fields": fields}),
        headers={"Origin": ORIGIN, "X-Forwarded-For": address_of(V1)},
    )
    assert response.status == 204
    refused = await site.client.post(
        "/t/v1/lead",
        data=json.dumps(body | {"form": "login", "fields": {"user": "x"}}),
        headers={"Origin": ORIGIN, "X-Forwarded-For": address_of(V1)},
    )
    assert refused.status == 403
    await site.dni.flush()
    (lead,) = site.rows(Lead)
    assert json.loads(lead.fields) == {"name": "<script>x</script>"}
    assert (lead.source_name, lead.page, lead.form) == ("radio", f"{ORIGIN}/c", "contact")
    assert lead.visit_id == site.rows(Visit)[0].id


async def test_the_snippet_is_small_and_loadable_from_any_site(site):
    response = await site.client.get(
        "/t/v1/snippet.js", headers={"Accept-Encoding": "gzip"}, auto_decompress=False
    )
    assert response.status == 200 and response.headers["Content-Encoding"] == "gzip"
    assert response.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
    body = gzip.decompress(await response.read())
    assert len(gzip.compress(body, 9)) < 3 * 1024
    assert b"document.currentScript" in body
    preflight = await site.client.options("/t/v1/number", headers={"Origin": ORIGIN})
    assert preflight.headers["Access-Control-Allow-Origin"] == ORIGIN
    stranger = await site.client.options("/t/v1/number", headers={"Origin": "https://evil.net"})
    assert "Access-Control-Allow-Origin" not in stranger.headers


async def test_a_call_to_a_pool_number_is_attributed_through_the_call_store(site):
    number = await site.number(V1, url=f"{ORIGIN}/?utm_source=google&utm_medium=cpc")
    await site.dni.flush()
    store = CallStore(site.world.sessions, grace=300)
    now = dt.datetime.now(dt.UTC).timestamp()
    with site.world.sessions() as session:
        number_id = session.scalar(
            select(NumberHold.number_id).where(NumberHold.visit_id == site.rows(Visit)[0].id)
        )

    def started(linkedid: str, at: float) -> CallStarted:
        return CallStarted(
            call_id=f"{linkedid:0>32}",
            linkedid=linkedid,
            dialled=number or "",
            caller_number="+13125550111",
            caller_name="",
            started=at,
            number_id=number_id,
            route_id=None,
            after_hours=False,
        )

    store.write([started("1", now + 5), started("2", now + 1800 + 200), started("3", now + 7200)])
    with site.world.sessions() as session:
        calls = {c.linkedid: c for c in session.scalars(select(Call))}
    assert (calls["1"].attribution, calls["1"].source_name) == ("held", "google")
    assert (calls["2"].attribution, calls["2"].medium) == ("after", "cpc")
    assert (calls["3"].attribution, calls["3"].visit_id, calls["3"].source_name) == (
        None,
        None,
        "Website",
    )


def test_pools_and_rules_stay_within_the_site_account(tmp_path):
    world = build_world(tmp_path)
    make_site(world)
    with world.sessions.begin() as session:
        site = sites.site_named(session, "Shop")
        with pytest.raises(AdminError, match="not an active number of the site's account"):
            sites.set_pool(session, site, ["+12025550124"], "test")  # client B's number
        with pytest.raises(AdminError, match="a pool number"):
            sites.add_rule(session, site, "source", "x", POOL[0], "test")
        with pytest.raises(AdminError, match="not a web origin"):
            sites.edit_site(
                session,
                site,
                sites.SiteRequest("Shop", ("https://x.com/path",), ("+12025550100",)),
                "test",
            )


async def test_a_write_the_database_refuses_is_dropped_and_the_others_are_kept(site):
    with site.world.sessions.begin() as session:
        other = sites.add_site(
            session,
            sites.SiteRequest("Other", ("https://other.example",), ("+12025550100",)),
            site.world.accounts["a"],
            "test",
        )
        other_key = other.key
    configs = site.dni.read_sites()
    site.dni.apply(configs, site.dni.read_holds(configs))
    await site.number(V1)
    body = {"site": other_key, "visitor": V2, "url": "https://other.example/"}
    response = await site.client.post(
        "/t/v1/number", data=json.dumps(body), headers={"Origin": "https://other.example"}
    )
    assert response.status == 200
    with site.world.sessions.begin() as session:  # removed before its visit is written
        sites.remove_site(session, sites.site_named(session, "Shop"), "test")
    shop = site.dni.sites[site.key]
    assert V1 in shop.sessions and shop.pool.holds
    await site.dni.flush()
    assert [v.visitor for v in site.rows(Visit)] == [V2]
    assert site.dni.writes == [] and site.dni.seen == {}
    # the session the database refused is forgotten, and its number is free again
    assert V1 not in shop.sessions and not shop.pool.holds
    # last-seen times of visits that are not there change nothing and stop nothing
    site.dni._write([], {"0" * 32: time.time(), site.rows(Visit)[0].id: time.time() + 99})


async def test_a_pool_changed_while_visitors_hold_numbers_keeps_their_holds(site):
    first = await site.number(V1)
    with site.world.sessions.begin() as session:
        add_number(session, NumberRequest("+12025550132"), site.world.accounts["a"])
        shop = sites.site_named(session, "Shop")
        others = [n for n in POOL if n != first]
        sites.set_pool(session, shop, [first, "+12025550132"], "test")  # one out, one in
    configs = site.dni.read_sites()
    site.dni.apply(configs, site.dni.read_holds(configs))
    assert await site.number(V1) == first
    assert await site.number(V2) == "+12025550132"
    assert await site.number(V3) == first  # the pool is full again: the oldest gives way
    assert others[0] not in site.dni.sites[site.key].pool.free
    assert sum(site.dni.sites[site.key].pooled.values()) == 3


BIG_POOL = tuple(f"+1202555016{i}" for i in range(10))
ATTACK = f"{ORIGIN}/?utm_source=attacker&utm_campaign=hijack&utm_term=stolen&gclid=ATTACKER1"


def started_call(number: str, number_id: int, at: float, linkedid: str = "9001") -> CallStarted:
    return CallStarted(
        call_id=f"{linkedid:0>32}",
        linkedid=linkedid,
        dialled=number,
        caller_number="+13125550111",
        caller_name="",
        started=at,
        number_id=number_id,
        route_id=None,
        after_hours=False,
    )


def number_id_of(world, e164: str) -> int:
    with world.sessions() as session:
        return session.scalar(select(TrackingNumber.id).where(TrackingNumber.e164 == e164))


async def test_six_networks_cannot_take_a_real_visitors_number(tmp_path, clock):
    """Twelve sessions from six /24 networks hold a pool of ten and keep asking for numbers,
    page views and heartbeats, faster than a page would: the real visitor who came after
    them keeps the number it got, heartbeat after heartbeat, and a call to it carries none of
    their campaign."""
    world = build_world(tmp_path)
    key = make_site(world, pool=BIG_POOL)
    dni, client = await start(world)
    try:
        site = Site(world, dni, client, key)
        attackers = [
            (f"{n:02x}{i}".ljust(32, "a"), {"X-Forwarded-For": f"198.18.{n}.{i + 1}"})
            for n in range(1, 7)
            for i in range(2)
        ]
        for visitor, headers in attackers:
            await site.number(visitor, url=ATTACK, headers=headers)
        assert dni.sites[key].pool.in_use(clock.now) == len(BIG_POOL)  # they hold it all
        victim = {"X-Forwarded-For": "192.0.2.77"}
        mine = await site.number(V1, url=f"{ORIGIN}/?utm_source=radio", headers=victim)
        assert mine in BIG_POOL
        for _ in range(6):  # six heartbeat intervals of trying
            clock.advance(HEARTBEAT)
            for visitor, headers in attackers:
                for beat in (False, False, True, False):  # sooner than a heartbeat, again
                    await site.number(visitor, url=ATTACK, beat=beat, headers=headers)
            assert await site.number(V1, beat=True, headers=victim) == mine
        assert await site.number(V1, url=f"{ORIGIN}/more", headers=victim) == mine
        await dni.flush()
        number_id = number_id_of(world, mine)
        with world.sessions() as session:
            (victim_visit,) = session.scalars(select(Visit).where(Visit.visitor == V1))
            latest = session.scalars(
                select(NumberHold)
                .where(NumberHold.number_id == number_id)
                .order_by(NumberHold.held_from.desc(), NumberHold.id.desc())
            ).first()
        assert (latest.visit_id, latest.released_at) == (victim_visit.id, None)
        CallStore(world.sessions, grace=300).write([started_call(mine, number_id, clock.now + 5)])
        with world.sessions() as session:
            call = session.scalars(select(Call).where(Call.linkedid == "9001")).one()
        assert call.visit_id in (victim_visit.id, None)
        assert call.attribution in ("held", "ambiguous")
        assert (call.source_name, call.campaign_name) != ("attacker", "hijack")
        if call.attribution == "ambiguous":  # the number came from an attacker's hold
            assert (call.visit_id, call.source_name, call.campaign_name) == (None, "Website", None)
    finally:
        await client.close()


async def test_a_call_to_a_recycled_number_keeps_none_of_the_visits_marketing(site, clock):
    first = await site.number(V1, url=f"{ORIGIN}/?utm_source=radio&utm_campaign=spring")
    await site.number(V2)
    assert await site.number(V3, url=ATTACK) == first  # the pool ran out: V1's number
    await site.dni.flush()
    number_id = number_id_of(site.world, first or "")
    store = CallStore(site.world.sessions, grace=300)
    store.write([started_call(first or "", number_id, clock.now + 5)])
    with site.world.sessions() as session:
        call = session.scalars(select(Call).where(Call.linkedid == "9001")).one()
    # ambiguous, as it was, and tied to neither visit: the number's own source and campaign
    assert (call.attribution, call.visit_id) == ("ambiguous", None)
    assert (call.source_name, call.medium, call.campaign_name) == ("Website", None, None)
    store.write([started_call(first or "", number_id, clock.now + 5)])  # written again: same
    with site.world.sessions() as session:
        again = session.scalars(select(Call).where(Call.linkedid == "9001")).one()
    assert (again.attribution, again.visit_id, again.source_name) == ("ambiguous", None, "Website")


async def test_a_request_sooner_than_a_heartbeat_keeps_and_takes_nothing(site, clock):
    first = await site.number(V1)
    clock.advance(30)
    second = await site.number(V2)
    clock.advance(HEARTBEAT - 30)
    assert await site.number(V1, beat=True) == first  # a heartbeat on time: V1 is kept
    for beat in (True, False, True, False, False):  # V2, 30 s after its number: too soon
        assert await site.number(V2, beat=beat) == second  # it is shown what it holds
    assert await site.number(V3) == second  # so V2 was still seen longest ago
    for beat in (False, True, False):
        assert await site.number(V2, beat=beat) is None  # nor does it take one back yet
    clock.advance(HEARTBEAT)
    assert await site.number(V2) == first  # a heartbeat later, it may
    await site.dni.flush()
    assert len(site.rows(NumberHold)) == 4


async def test_page_views_are_stored_short_once_and_a_bounded_number_a_day(tmp_path, clock):
    world = build_world(tmp_path)
    key = make_site(world)
    config = TrackingConfig(trusted_proxies="127.0.0.1", pages_per_day=5)
    dni, client = await start(world, config)
    one = {"X-Forwarded-For": "198.51.100.1"}
    same_24 = {"X-Forwarded-For": "198.51.100.2"}
    try:
        site = Site(world, dni, client, key)
        long = f"{ORIGIN}/landing?utm_campaign={'ü' * 1900}"  # 11,000 when encoded again
        for extra in ("", "&session=1", "&session=2#top", ""):  # reloads: kept once
            await site.number(V1, url=long + extra, headers=one)
        for i in range(5):  # the network's fifth page is its last of the day
            await site.number(V2 if i % 2 else V1, url=f"{ORIGIN}/p{i}", headers=same_24)
        assert await site.number(V3, url=f"{ORIGIN}/elsewhere") in POOL  # its own budget
        await dni.flush()
        pages = [p.url for p in site.rows(VisitPage)]
        assert 500 < len(pages[0]) <= 512
        assert pages[0].startswith(f"{ORIGIN}/landing?utm_campaign=%C3%BC%C3%BC")
        assert pages[1:] == [f"{ORIGIN}/p{i}" for i in range(4)] + [f"{ORIGIN}/elsewhere"]
        assert len(site.rows(Visit)) == 3  # visits still start, their numbers still shown
        clock.advance(86400)  # a new day
        await site.number(V1, url=f"{ORIGIN}/tomorrow", headers=one)
        await dni.flush()
        assert site.rows(VisitPage)[-1].url == f"{ORIGIN}/tomorrow"
    finally:
        await client.close()


async def test_sessions_are_bounded_per_network_and_per_site(tmp_path, clock):
    world = build_world(tmp_path)
    key = make_site(world)
    config = TrackingConfig(trusted_proxies="127.0.0.1", sessions_per_network=3)
    dni, client = await start(world, config)
    try:
        site = Site(world, dni, client, key)
        for i, visitor in enumerate((V1, V2, V3)):  # three /64s of one /48
            await site.number(visitor, headers={"X-Forwarded-For": f"2001:db8:7:{i}::1"})
        refused = await site.ask(V4, headers={"X-Forwarded-For": "2001:db8:7:ffff::1"})
        assert refused.status == 429 and "network" in (await refused.json())["error"]
        assert await site.number(V2, headers={"X-Forwarded-For": "2001:db8:7:1::1"}) in POOL
        assert (await site.ask(V4, headers={"X-Forwarded-For": "2001:db8:8::1"})).status == 200
        clock.advance(31 * 60)  # the sessions ended: room for new ones
        assert (await site.ask(V4, headers={"X-Forwarded-For": "2001:db8:7::2"})).status == 200
        await dni.flush()
    finally:
        await client.close()
    dni, client = await start(
        world, TrackingConfig(trusted_proxies="127.0.0.1", sessions_per_site=3)
    )
    try:
        site = Site(world, dni, client, key)
        assert 0 < len(dni.sites[key].sessions) <= 3  # of five visits going on, the newest
        visitors = [f"{i:02x}".ljust(32, "0") for i in range(10, 16)]
        for visitor in visitors:
            assert (await site.ask(visitor)).status == 200
        assert list(dni.sites[key].sessions) == visitors[-3:]  # the oldest went first
        await dni.flush()
        assert len({v.visitor for v in site.rows(Visit)} & set(visitors)) == 6
    finally:
        await client.close()
