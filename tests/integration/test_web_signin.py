"""Sign-in throttling and lockout that nobody can turn against the owner, the client address
behind trusted reverse proxies (and forged X-Forwarded-For from anyone else), and refused
requests counted in the audit log, over the real application.

Clients at distinct addresses are real: the test server listens on 127.0.0.1 and each peer
connects from an address of its own in 127.0.0.0/8. Clients behind a proxy (IPv6 ones among
them) come through the test client at 127.0.0.1, a trusted proxy naming them in
X-Forwarded-For, as nginx would."""

import asyncio
import re
import time

import aiohttp
import pyotp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from appliance import accounts, totp
from appliance.db.models import AuditEntry, User, WebSession
from appliance.secrets import SecretBox
from appliance.web.refusals import COUNT_ACTION, REFUSALS, RefusalLog
from tests.hostile import STRINGS
from tests.web_world import Browser, app_for

WRONG = "not the password at all"
# what a header can carry (a line longer than 8 KiB aiohttp refuses before the app sees it)
SENDABLE = [s for s in STRINGS if s and len(s) < 4096 and not any(c in s for c in "\r\n\x00")]


class Behind(Browser):
    """A browser behind the trusted proxy: every request names its address."""

    def __init__(self, client: TestClient, address: str) -> None:
        super().__init__(client)
        self.address = address

    def _headers(self, extra: dict | None = None) -> dict:
        return super()._headers({"X-Forwarded-For": self.address, **(extra or {})})


async def start(app) -> TestClient:
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


@pytest.fixture
async def proxied(world):
    """The application behind a reverse proxy at 127.0.0.1 (the test client)."""
    client = await start(app_for(world, trusted_proxies="127.0.0.1"))
    yield client
    await client.close()


@pytest.fixture
async def peer():
    """Clients of a running test server that connect from an address of their own."""
    opened: list[TestClient] = []

    async def connect(server: TestServer, address: str) -> TestClient:
        connector = aiohttp.TCPConnector(local_addr=(address, 0))
        other = TestClient(server, connector=connector)
        await other.start_server()  # the server runs already: only the session starts
        opened.append(other)
        return other

    yield connect
    for other in opened:
        await other.session.close()


def audited(world, action: str) -> list[AuditEntry]:
    with world.sessions() as session:
        return list(
            session.scalars(
                select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
            )
        )


def locked_networks(world, username: str) -> list[str]:
    with world.sessions() as session:
        user = session.scalar(select(User).where(User.username == username))
        return accounts.locked_networks(session, user)


async def reset(browser: Browser) -> int:
    """A request of the sign-in budget that checks no password (no mail is set up)."""
    response, _ = await browser.post("/reset", {"who": "nobody"})
    return response.status


async def test_wrong_passwords_from_one_address_do_not_lock_the_owner_out(world, client, peer):
    attacker = Browser(await peer(client.server, "127.0.0.2"))
    for _ in range(8):
        assert (await attacker.sign_in("owner", WRONG)).status == 401
    assert (await attacker.sign_in("owner")).status == 401  # locked here: the right one too
    assert locked_networks(world, "owner") == ["127.0.0.2"]

    owner = Browser(await peer(client.server, "127.0.0.3"))
    response = await owner.sign_in("owner")
    assert response.status == 303 and response.headers["Location"] == "/calls"
    assert (await owner.get("/calls"))[0].status == 200
    (signed,) = audited(world, "signin")
    assert (signed.subject, signed.client) == ("owner", "127.0.0.3")
    refused = audited(world, "signin.refused")
    assert {e.client for e in refused} == {"127.0.0.2"}
    assert [e.detail for e in refused] == ["wrong password"] * 5 + ["locked"] * 4
    assert locked_networks(world, "owner") == ["127.0.0.2"]  # signing in elsewhere: still


async def test_the_locked_network_is_refused_the_right_password_for_that_user_only(
    world, client, peer
):
    guesser = Browser(await peer(client.server, "127.0.0.4"))
    for _ in range(5):
        assert (await guesser.sign_in("alice", WRONG)).status == 401
    response = await guesser.sign_in("alice")
    assert response.status == 401
    assert "Wrong user name or password" in await response.text()  # the same words
    assert audited(world, "signin.refused")[-1].detail == "locked"
    assert (await Browser(guesser.client).sign_in("analyst")).status == 303


async def test_two_step_sign_in_from_a_clean_network_during_a_lock(world, peer):
    box = SecretBox(b"b" * 32)
    secret = totp.new_secret()
    with world.sessions.begin() as session:
        owner = session.scalar(select(User).where(User.username == "owner"))
        owner.totp_sealed = box.seal(secret)
    client = await start(app_for(world, box=box))
    try:
        guesser = Browser(await peer(client.server, "127.0.0.5"))
        assert (await guesser.sign_in("owner")).headers["Location"].startswith("/login/code")
        await guesser.get("/login/code")
        for _ in range(5):  # the password stolen, the codes guessed
            response, _ = await guesser.post("/login/code", {"code": "000000", "next": "/calls"})
            assert response.status == 401
        assert (await guesser.get("/calls"))[0].status == 303  # its pending session ended
        assert locked_networks(world, "owner") == ["127.0.0.5"]
        assert (await Browser(guesser.client).sign_in("owner")).status == 401  # locked

        owner = Browser(await peer(client.server, "127.0.0.6"))
        response = await owner.sign_in("owner")
        assert response.headers["Location"].startswith("/login/code")  # the code is still due
        await owner.get("/login/code")
        code = pyotp.TOTP(secret).now()
        response, _ = await owner.post("/login/code", {"code": code, "next": "/calls"})
        assert response.status == 303 and response.headers["Location"] == "/calls"
        assert (await owner.get("/calls"))[0].status == 200
    finally:
        await client.close()


async def test_many_networks_guessing_get_one_guess_each_and_the_owner_still_signs_in(
    world, proxied
):
    for network in ("198.51.100.1", "198.51.100.2"):
        for _ in range(5):
            assert (await Behind(proxied, network).sign_in("owner", WRONG)).status == 401
    # ten wrong answers for the owner: a new network may give one before its lock
    third = Behind(proxied, "198.51.100.3")
    assert (await third.sign_in("owner", WRONG)).status == 401
    assert (await third.sign_in("owner")).status == 401
    assert locked_networks(world, "owner") == ["198.51.100.1", "198.51.100.2", "198.51.100.3"]
    # a network that has not answered wrong signs in at once
    assert (await Behind(proxied, "203.0.113.10").sign_in("owner")).status == 303
    with world.sessions() as session:
        clients = session.scalars(select(WebSession.client)).all()
    assert clients == ["203.0.113.10"]  # the session names the client, not the proxy


async def test_ipv6_addresses_of_one_64_share_a_lock_and_a_budget(world, proxied):
    for host in range(1, 6):  # a new address for each guess, within one /64
        response = await Behind(proxied, f"2001:db8:1:2::{host}").sign_in("owner", WRONG)
        assert response.status == 401
    assert locked_networks(world, "owner") == ["2001:db8:1:2::/64"]
    assert (await Behind(proxied, "2001:db8:1:2::ffff").sign_in("owner")).status == 401
    assert (await Behind(proxied, "2001:db8:1:3::1").sign_in("owner")).status == 303
    # six of the /64's ten at once are spent; other addresses of it get the other four
    statuses = [await reset(Behind(proxied, f"2001:db8:1:2:{n}::1")) for n in range(1, 7)]
    assert statuses == [200] * 4 + [429] * 2
    assert await reset(Behind(proxied, "2001:db8:1:3::2")) == 200  # the next /64: its own
    clients = {e.client for e in audited(world, "signin.refused")}
    assert clients == {f"2001:db8:1:2::{host:x}" for host in (1, 2, 3, 4, 5, 0xFFFF)}


async def test_behind_a_trusted_proxy_each_client_has_its_own_budget(world, proxied):
    for n in range(1, 13):
        statuses = [await reset(Behind(proxied, f"192.0.2.{n}")) for _ in range(10)]
        assert statuses == [200] * 10, n
    assert await reset(Behind(proxied, "192.0.2.1")) == 429
    assert await reset(Behind(proxied, "192.0.2.99")) == 200
    assert [e.client for e in audited(world, "request.refused")] == ["192.0.2.1"]
    assert (await Behind(proxied, "192.0.2.100").sign_in("nobody")).status == 401
    assert audited(world, "signin.refused")[-1].client == "192.0.2.100"


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(world, proxied, peer):
    """A peer that is not a listed proxy can neither dodge its lock or budget nor frame
    another address by writing X-Forwarded-For."""
    untrusted = await peer(proxied.server, "127.0.0.7")
    for n in range(1, 6):
        response = await Behind(untrusted, f"203.0.113.{n}").sign_in("owner", WRONG)
        assert response.status == 401
    assert locked_networks(world, "owner") == ["127.0.0.7"]
    # the lock holds whatever address it names
    assert (await Behind(untrusted, "203.0.113.200").sign_in("owner")).status == 401
    assert audited(world, "signin.refused")[-1].detail == "locked"
    statuses = [await reset(Behind(untrusted, f"203.0.113.{n}")) for n in range(6, 12)]
    assert statuses == [200] * 4 + [429] * 2
    clients = {e.client for e in audited(world, "signin.refused")}
    clients |= {e.client for e in audited(world, "request.refused")}
    assert clients == {"127.0.0.7"}


async def test_hostile_forwarded_for_never_reaches_the_audit_log(world, peer):
    """Junk in X-Forwarded-For: from an untrusted peer it is ignored; from the trusted proxy
    it names no client, and the proxy's own address stands."""
    app = app_for(world, trusted_proxies="127.0.0.1")
    app[REFUSALS] = RefusalLog(world.sessions, per_minute=1000)  # every one written
    proxy = await start(app)
    try:
        untrusted = await peer(proxy.server, "127.0.0.8")
        for value in SENDABLE:
            for client, expected in ((untrusted, "127.0.0.8"), (proxy, "127.0.0.1")):
                response = await client.get("/api/calls", headers={"X-Forwarded-For": value})
                assert response.status == 401
                assert audited(world, "request.refused")[-1].client == expected, value
    finally:
        await proxy.close()


async def test_without_trusted_proxies_forwarded_for_is_ignored(world, client):
    statuses = [await reset(Behind(client, f"198.51.100.{n}")) for n in range(12)]
    assert statuses == [200] * 10 + [429] * 2
    assert {e.client for e in audited(world, "request.refused")} == {"127.0.0.1"}


def parse_count(detail: str) -> tuple[int, int]:
    """(refused, of them only counted) of a request.refused.count entry."""
    found = re.fullmatch(
        r"(\d+) requests refused in the minute from \S+ \S+ UTC; (\d+) of them not written "
        r"one by one",
        detail,
    )
    assert found, detail
    return int(found.group(1)), int(found.group(2))


async def test_a_burst_from_a_client_that_never_returns_is_counted_at_shutdown(world):
    client = await start(app_for(world, trusted_proxies="127.0.0.1"))
    for _ in range(100):
        response = await client.get("/api/calls", headers={"X-Forwarded-For": "198.51.100.77"})
        assert response.status == 401
    scrape = await client.get(
        "/metrics", headers={"Authorization": f"Bearer {world.tokens['owner']}"}
    )
    assert "appliance_requests_refused_total 100.0" in (await scrape.text()).splitlines()
    await client.close()  # the admin UI stops; the client never came back
    one_by_one = audited(world, "request.refused")
    counts = audited(world, COUNT_ACTION)
    assert {e.client for e in one_by_one + counts} == {"198.51.100.77"}
    # 100 requests take less than a minute, so they fall in one or two minutes: at least 50
    # in one of them, more than its 30 written one by one
    assert 30 <= len(one_by_one) <= 60 and counts
    assert len(one_by_one) + sum(parse_count(e.detail)[1] for e in counts) == 100


async def test_the_count_of_a_minute_is_written_once_it_is_over(world):
    """While the admin UI runs: a burst from addresses of one /64 that never come back."""
    now = [600.0]  # 00:10 UTC on the first day of 1970
    app = app_for(world, trusted_proxies="127.0.0.1")
    app[REFUSALS] = RefusalLog(world.sessions, every=0.05, clock=lambda: now[0])
    client = await start(app)
    try:
        for host in range(1, 101):
            forwarded = {"X-Forwarded-For": f"2001:db8:7:7::{host:x}"}
            assert (await client.get("/api/calls", headers=forwarded)).status == 401
        assert len(audited(world, "request.refused")) == 30
        now[0] = 660.0  # the minute is over
        deadline = time.monotonic() + 10  # a bound against a hang, not a timing
        # ASYNC110: waits on a row in the database; nothing in the test sets an event
        while not audited(world, COUNT_ACTION) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        (count,) = audited(world, COUNT_ACTION)
        assert (count.actor, count.client) == ("appliance", "2001:db8:7:7::/64")
        assert parse_count(count.detail) == (100, 70)
        assert "1970-01-01 00:10 UTC" in count.detail
    finally:
        await client.close()
    assert len(audited(world, COUNT_ACTION)) == 1  # nothing was left to write at shutdown
