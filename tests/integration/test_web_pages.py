"""The admin pages over the real application: signing in (forced password change, lockout,
throttling, CSRF, foreign origins, open redirects), the call log and a call's page, with
hostile caller names shown as text."""

import csv
import datetime as dt
import html
import html.parser
import io
import re
import urllib.parse

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from appliance.calls import annotations
from appliance.db.models import AuditEntry, Endpoint, Trunk, User, WebSession
from appliance.secrets import token_hash
from appliance.web.auth import COOKIE, THROTTLE
from tests.hostile import CATEGORIES, STRINGS
from tests.web_world import PASSWORD, Browser, app_for


async def test_pages_need_a_session_and_send_back_to_where_you_were(client):
    browser = Browser(client)
    response, _ = await browser.get("/calls?disposition=answered")
    assert response.status == 303
    location = urllib.parse.urlsplit(response.headers["Location"])
    assert location.path == "/login"
    assert urllib.parse.parse_qs(location.query) == {"next": ["/calls?disposition=answered"]}
    response = await browser.sign_in("alice")
    assert response.status == 303 and response.headers["Location"] == "/calls"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    for attribute in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/"):
        assert attribute in cookie
    response, body = await browser.get("/calls")
    assert response.status == 200 and "Caller a" in body


async def test_the_session_id_is_stored_only_as_a_hash(world, client):
    browser = Browser(client)
    await browser.sign_in("alice")
    with world.sessions() as session:
        stored = session.scalars(select(WebSession.token_hash)).all()
    assert stored == [token_hash(browser.cookie)]


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil", "x"])
async def test_after_sign_in_only_local_pages(client, target):
    browser = Browser(client)
    await browser.get("/login")
    response, _ = await browser.post(
        "/login", {"username": "alice", "password": PASSWORD, "next": target}
    )
    assert response.headers["Location"] == "/calls"


async def test_first_sign_in_forces_a_new_password(world, client):
    with world.sessions.begin() as session:
        session.scalar(select(User).where(User.username == "alice")).must_change_password = True
    browser = Browser(client)
    response = await browser.sign_in("alice")
    assert response.headers["Location"] == "/password"
    response, _ = await browser.get("/calls")
    assert response.status == 303 and response.headers["Location"] == "/password"
    response, _ = await browser.get(f"/calls/{world.calls['a']}/recording")
    assert response.status == 303
    await browser.get("/password")
    for new, again, why in [
        ("short", "short", "at least 12"),
        ("a-new-password-1", "a-new-password-2", "differ"),
        ("alice-is-my-password", "alice-is-my-password", "user name"),
        (PASSWORD, PASSWORD, "differ from the old"),
    ]:
        response, body = await browser.post(
            "/password", {"current": PASSWORD, "new": new, "again": again}
        )
        assert response.status == 400 and why in body
    old_cookie = browser.cookie
    response, _ = await browser.post(
        "/password", {"current": PASSWORD, "new": "a much better one", "again": "a much better one"}
    )
    assert response.status == 303 and browser.cookie != old_cookie
    response, body = await browser.get("/calls")
    assert response.status == 200
    stale = Browser(client)
    stale.cookie = old_cookie  # the change ended every other session
    assert (await stale.get("/calls"))[0].status == 303
    assert (await Browser(client).sign_in("alice")).status == 401
    assert (await Browser(client).sign_in("alice", "a much better one")).status == 303


async def test_wrong_passwords_lock_the_client_out_of_the_user_for_a_while(world, client):
    for _ in range(5):
        response = await Browser(client).sign_in("alice", "not the password")
        assert response.status == 401
    # locked here (other clients: test_web_signin): the right password is refused too, with
    # the same words
    response = await Browser(client).sign_in("alice")
    assert response.status == 401
    unknown = await Browser(client).sign_in("nobody-at-all")
    assert unknown.status == 401
    assert (await response.text()).count("Wrong user name or password") == 1
    with world.sessions() as session:
        actions = session.scalars(
            select(AuditEntry.detail).where(AuditEntry.action == "signin.refused")
        ).all()
    assert actions == ["wrong password"] * 5 + ["locked", None]


async def test_a_flood_of_sign_ins_is_throttled(client):
    statuses = []
    for _ in range(14):
        statuses.append((await Browser(client).sign_in("owner", "guess")).status)
    assert statuses[:10] == [401] * 10
    assert set(statuses[10:]) == {429}


async def test_forms_need_the_csrf_token_and_our_own_origin(world, client):
    browser = Browser(client)
    await browser.sign_in("owner")
    response, body = await browser.post("/logout", {}, csrf=False)
    assert response.status == 403 and "expired" in body
    response, _ = await browser.post("/logout", {"csrf": "0" * 64}, csrf=False)
    assert response.status == 403
    for foreign in (
        {"Origin": "https://evil.example"},
        {"Origin": "null"},  # a sandboxed frame or a data: page
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},  # another host of the same domain
    ):
        response, _ = await browser.post("/logout", {}, headers=foreign)
        assert response.status == 403, foreign
    response = await Browser(client).client.post(
        "/login",
        data={"username": "owner", "password": PASSWORD},
        headers={"Origin": "https://evil.example"},
        allow_redirects=False,
    )
    assert response.status == 403
    # behind a TLS proxy the Origin is https while the appliance sees http: the browser's
    # Sec-Fetch-Site is what counts
    behind_proxy = {"Sec-Fetch-Site": "same-origin", "Origin": "https://calls.example.com"}
    response, _ = await browser.post("/logout", {}, headers=behind_proxy)
    assert response.status == 303
    assert (await browser.get("/calls"))[0].status == 303
    with world.sessions() as session:
        refused = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "request.refused")
        ).all()
    assert len(refused) == 7


# SIM905 is wrong here: a set of tag names reads best as words
TEMPLATE_TAGS = set(
    "html head meta title link body header a nav form input span button main h1 h2 label "  # noqa: SIM905
    "select option div table thead tbody tr th td p footer section dl dt dd audio script ol li "
    "code".split()
)


class Page(html.parser.HTMLParser):
    """What a browser would build from a page: its elements, attributes and text."""

    def __init__(self, body: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.attributes: list[tuple[str, str]] = []
        self.texts: list[str] = []
        self.feed(body)

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attributes += [(k, v or "") for k, v in attrs]

    def handle_data(self, data):
        self.texts.append(data)


async def test_hostile_caller_names_are_shown_as_text(world, client):
    browser = Browser(client)
    await browser.sign_in("alice")
    for name in STRINGS:
        call_id = world.add_call("a", caller_name=name[:128], caller_number=name[:64])
        with world.sessions.begin() as session:  # an integrator's note: as hostile
            annotations.add_note(session, call_id, f"note {name[:990]}", "agi")
        search = "/calls?" + urllib.parse.urlencode({"q": name[:2000]})
        for path in ("/calls", f"/calls/{call_id}", search):
            response, body = await browser.get(path)
            if response.status == 400:  # a search term too long is refused, and says why
                assert "at most 100 characters" in body, name
                continue
            assert response.status == 200, (path, name)
            page = Page(body)
            assert page.tags <= TEMPLATE_TAGS, (path, name)
            assert not [k for k, _ in page.attributes if k.startswith("on")], name
            links = [v for k, v in page.attributes if k in ("href", "src", "action")]
            assert not [v for v in links if not v.startswith(("/", "#"))], (links, name)
            shown = name[:128]
            if path.startswith("/calls/") and shown.isprintable() and shown.strip() == shown:
                assert shown in "".join(page.texts), name


async def test_call_page_plays_only_what_the_role_and_tenant_allow(world, client):
    browser = Browser(client)
    await browser.sign_in("viewer-b")
    response, _ = await browser.get(f"/calls/{world.calls['a']}")
    assert response.status == 404
    response, _ = await browser.get(f"/calls/{world.calls['a']}/recording")
    assert response.status == 404
    response, body = await browser.get(f"/calls/{world.calls['b']}")
    assert response.status == 200 and f'src="/calls/{world.calls["b"]}/recording"' in body
    response, _ = await browser.get(
        f"/calls/{world.calls['b']}/recording", headers={"Range": "bytes=0-99"}
    )
    assert response.status == 206 and len(await response.read()) == 100


async def test_csv_export_is_scoped_and_defuses_formulas(world, client):
    for formula in CATEGORIES["csv_formula"]:
        world.add_call("a", caller_name=formula)
    world.add_call("b", caller_name="=secret of client B")
    browser = Browser(client)
    await browser.sign_in("alice")
    response, body = await browser.get("/calls.csv")
    assert response.status == 200
    assert response.headers["Content-Disposition"].startswith("attachment")
    rows = list(csv.DictReader(io.StringIO(body)))
    names = [r["caller_name"] for r in rows]
    assert "=secret of client B" not in " ".join(names) and "'=secret of client B" not in names
    for formula in CATEGORIES["csv_formula"]:
        assert "'" + formula in names
    assert not any(re.match(r"[=+\-@\t\r]", n) for n in names)
    with world.sessions() as session:
        (export,) = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "calls.export")
        ).all()
    assert export.actor == "user:alice" and export.detail == f"{len(rows)} calls"


async def test_the_dashboard_counts_only_what_the_user_may_see(world, client):
    today = dt.datetime.now(dt.UTC).replace(hour=12)
    for days_ago, account, disposition, first in [
        (0, "a", "answered", True),
        (1, "a", "no_answer", False),
        (1, "a", "answered", True),
        (2, "b", "answered", True),
        (200, "a", "answered", True),  # outside the 90 days
    ]:
        world.add_call(
            account,
            started=today - dt.timedelta(days=days_ago),
            disposition=disposition,
            first_time=first,
            tracked=True,
        )
    alice = Browser(client)
    await alice.sign_in("alice")
    response, body = await alice.get("/")
    assert response.status == 200
    page = Page(body)
    text = " ".join(" ".join(page.texts).split())
    # client A: 3 tracked calls + the recorded one of the world (no source), not B's
    assert "4 calls" in text and "75% answered" in text and "2 first-time callers" in text
    assert "Google Ads" in text and "Spring sale" in text and "Billboard" not in text
    assert body.count("<rect ") >= 3  # bars for 3 days, plus the legend
    response, _ = await alice.get(f"/?account={world.accounts['b']}")
    assert response.status == 400
    owner = Browser(client)
    await owner.sign_in("owner")
    _, body = await owner.get(f"/?account={world.accounts['b']}")
    text = " ".join(" ".join(Page(body).texts).split())
    assert "<b>Billboard</b>" in text and "Google Ads" not in text  # markup shown as text
    assert "<b>" not in body
    for bad in (
        "from=2026-13-01",
        "from=2026-02-01&to=2026-01-01",
        "from=2020-01-01&to=2026-01-01",
    ):
        assert (await owner.get(f"/?{bad}"))[0].status == 400


async def test_the_audit_log_is_for_admins_scoped_filtered_and_exportable(world, client):
    from appliance import audit

    with world.sessions.begin() as session:
        audit.record(session, "user:x", "recording.play", "c" * 32, account_id=world.accounts["a"])
        audit.record(
            session, "user:y", "recording.play", "d" * 32, detail="<script>alert(1)</script>",
            account_id=world.accounts["b"],
        )  # fmt: skip
        audit.record(session, "cli:root", "trunk.add", "carrier", detail="=cmd|' /C calc'!A0")
    viewer = Browser(client)
    await viewer.sign_in("alice")
    assert (await viewer.get("/audit"))[0].status == 403
    assert (await viewer.get("/audit.csv"))[0].status == 403
    owner = Browser(client)
    await owner.sign_in("owner")
    response, body = await owner.get("/audit?action=recording.")
    assert response.status == 200
    text = " ".join(Page(body).texts)
    assert "user:x" in text and "user:y" in text and "trunk.add" not in text
    assert "<script>alert(1)</script>" in text and "<script>alert" not in body
    response, body = await owner.get("/audit.csv?actor=cli:root")
    rows = list(csv.DictReader(io.StringIO(body)))
    assert [r["action"] for r in rows] == ["trunk.add"]
    assert rows[0]["detail"] == "'=cmd|' /C calc'!A0"
    for bad in ("from=soon", "before=x", "actor=" + "x" * 101):
        assert (await owner.get(f"/audit?{bad}"))[0].status == 400
    with world.sessions() as session:
        exports = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "audit.export")
        ).all()
    assert [(e.actor, e.detail) for e in exports] == [("user:owner", "1 entries")]


async def test_users_are_managed_within_the_admins_reach(world, client):
    from appliance import admin

    with world.sessions.begin() as session:
        admin.add_user(session, "ada", PASSWORD, "admin").must_change_password = False
    manager = Browser(client)
    await manager.sign_in("manager")
    assert (await manager.get("/users"))[0].status == 403
    ada = Browser(client)
    await ada.sign_in("ada")
    response, body = await ada.get("/users")
    assert response.status == 200 and "viewer-b" in body

    async def act(browser, **form):
        await browser.get("/users")
        return await browser.post("/users", form)

    response, body = await act(
        ada, action="add", username="carol", role="client_viewer", account=world.accounts["a"]
    )
    assert response.status == 200
    one_time = re.search(r"One-time password \(shown once\): (\S+)<", body).group(1)
    assert (await Browser(client).sign_in("carol", one_time)).headers["Location"] == "/password"
    client_a = world.accounts["a"]
    for form, status, words in [
        ({"action": "add", "username": "<b>x</b>", "role": "analyst", "account": "1"}, 400,
         "may only use"),
        ({"action": "add", "username": "dan", "role": "owner", "account": "1"}, 403, "only owners"),
        ({"action": "add", "username": "dan", "role": "admin", "account": client_a}, 400,
         "client account"),
        ({"action": "role", "username": "owner", "role": "analyst"}, 403, "only owners"),
        ({"action": "role", "username": "ada", "role": "analyst"}, 400, "your own user"),
        ({"action": "remove", "username": "nobody"}, 400, "no user"),
        ({"action": "explode", "username": "carol"}, 400, "unknown action"),
    ]:  # fmt: skip
        response, body = await act(ada, **form)
        assert response.status == status, form
        assert words in html.unescape(body), form
    response, _ = await act(ada, action="role", username="carol", role="analyst")
    assert response.status == 200
    response, _ = await act(ada, action="remove", username="carol")
    assert response.status == 200
    with world.sessions() as session:
        actions = session.scalars(
            select(AuditEntry.action).where(AuditEntry.actor == "user:ada")
        ).all()
    assert [a for a in actions if a.startswith("user.")] == ["user.add", "user.role", "user.remove"]


async def test_two_step_sign_in_with_a_totp_code(world, client):
    import time

    import pyotp

    owner = Browser(client)
    await owner.sign_in("owner")
    await owner.get("/account")
    response, body = await owner.post("/account", {"action": "begin"})
    key = re.search(r'name="setup_key" value="([A-Z2-7]{32})"', body).group(1)
    generator = pyotp.TOTP(key)
    response, body = await owner.post(
        "/account",
        {"action": "confirm", "setup_key": key, "code": generator.now(), "password": "wrong"},
    )
    assert response.status == 400 and "current password is not right" in body
    response, body = await owner.post(
        "/account",
        {"action": "confirm", "setup_key": "A" * 31 + "!", "code": "123456", "password": PASSWORD},
    )
    assert response.status == 400 and "set-up key" in body
    enrolled_with = generator.now()
    response, body = await owner.post(
        "/account",
        {"action": "confirm", "setup_key": key, "code": enrolled_with, "password": PASSWORD},
    )
    assert response.status == 200 and "Two-step sign-in is on." in body

    second = Browser(client)
    response = await second.sign_in("owner")
    assert response.headers["Location"].startswith("/login/code")
    for path in ("/calls", "/password", f"/calls/{world.calls['a']}/recording"):
        response, _ = await second.get(path)
        assert response.status == 303 and response.headers["Location"] == "/login/code", path
    await second.get("/login/code")
    for wrong in ("000000", "12345", "<script>", enrolled_with):  # the last: used already
        if wrong == generator.now() and wrong != enrolled_with:
            continue
        response, body = await second.post("/login/code", {"code": wrong, "next": "/calls"})
        assert response.status == 401, wrong
    later = generator.at(time.time() + 30)  # the next step's code, within the window
    response, _ = await second.post("/login/code", {"code": later, "next": "/calls"})
    assert response.status == 303 and response.headers["Location"] == "/calls"
    assert (await second.get("/calls"))[0].status == 200

    # the attempts above used this client's share
    client.server.app[THROTTLE].buckets._buckets.clear()
    third = Browser(client)
    await third.sign_in("owner")
    for _ in range(5):
        response, _ = await third.post("/login/code", {"code": "000000", "next": "/calls"})
        assert response.status == 401
    response, _ = await third.get("/calls")
    assert response.status == 303 and response.headers["Location"].startswith("/login")
    with world.sessions() as session:
        refusals = session.scalars(
            select(AuditEntry.detail).where(AuditEntry.action == "signin.refused")
        ).all()
    assert refusals.count("wrong code") == 4 + 5


async def test_numbers_and_routes_are_configured_from_their_pages(world, client):
    from appliance import admin
    from appliance.calls.store import CallStore
    from appliance.secrets import SecretBox

    with world.sessions.begin() as session:
        admin.add_trunk(
            session, SecretBox(b"k" * 32), admin.TrunkRequest("carrier", "ip", "127.0.0.1")
        )
    for name, status in (("alice", 403), ("viewer-a", 403), ("analyst", 200)):
        browser = Browser(client)
        await browser.sign_in(name)
        assert (await browser.get("/numbers"))[0].status == status, name
        assert (await browser.get("/routes"))[0].status == status, name
        if status == 200:
            response, _ = await browser.post(
                "/numbers", {"action": "release", "number": "+12025550123"}
            )
            assert response.status == 403
    owner = Browser(client)
    await owner.sign_in("owner")

    async def post(path, **form):
        await owner.get(path)
        return await owner.post(path, form)

    agency = str(world.accounts["agency"])
    response, body = await post(
        "/routes", action="add", name="<i>Front</i> desk", account=agency,
        forward="+1 202 555 0199, (202) 555-0198", trunk="carrier", ring_timeout="20",
    )  # fmt: skip
    assert response.status == 200, body
    assert "&lt;i&gt;Front&lt;/i&gt; desk" in body and "<i>Front" not in body
    response, body = await post(
        "/routes", action="add", name="Bad", account=agency, forward="+12025550199",
        trunk="carrier", ring_timeout="ten",
    )  # fmt: skip
    assert response.status == 400 and "ring timeout" in body
    response, body = await post(
        "/numbers", action="add", number="(202) 555-0142", account=agency,
        route="<i>Front</i> desk", source="Radio",
    )  # fmt: skip
    assert response.status == 200 and "+12025550142 added" in body
    response, body = await post("/numbers", action="add", number="<script>", account=agency)
    assert response.status == 400 and "is not a phone number" in html.unescape(body)
    response, body = await post("/numbers", action="add", number="+12025550143", account=str(10**6))
    assert response.status == 403  # an account that is not the owner's
    table = CallStore(world.sessions).routing_table()
    (number,) = [n for n in table.numbers if n.e164 == "+12025550142"]
    assert number.route is not None and [t.value for t in number.route.targets] == [
        "+12025550199",
        "+12025550198",
    ]
    response, body = await post(
        "/numbers", action="edit", number="+12025550142", source="", label="Spring <b>"
    )
    assert response.status == 200
    response, body = await post(
        "/routes", action="remove", name="<i>Front</i> desk", account=agency
    )
    assert response.status == 400 and "numbers take route" in html.unescape(body)
    response, body = await post("/numbers", action="release", number="+12025550142")
    assert response.status == 200 and "released" in body
    response, body = await post(
        "/routes", action="remove", name="<i>Front</i> desk", account=agency
    )
    assert response.status == 200
    with world.sessions() as session:
        actions = session.scalars(
            select(AuditEntry.action).where(AuditEntry.actor == "user:owner")
        ).all()
    assert [a for a in actions if a.split(".")[0] in ("route", "number")] == [
        "route.add", "number.add", "number.edit", "number.release", "route.remove",
    ]  # fmt: skip


async def test_attached_no_trunk_or_phone_is_added_from_the_page(world):
    """The site's own PBX has them: the page refuses in one line and writes nothing."""
    client = TestClient(TestServer(app_for(world, attached=True)))
    await client.start_server()
    try:
        owner = Browser(client)
        await owner.sign_in("owner")
        agency = str(world.accounts["agency"])
        for form in (
            {"action": "add_phone", "name": "desk-9", "account": agency},
            {"action": "add_trunk", "name": "c9", "host": "203.0.113.5", "account": agency},
        ):
            await owner.get("/sip")
            response, body = await owner.post("/sip", form)
            assert response.status == 400 and "attached mode" in html.unescape(body)
        with world.sessions() as session:
            names = session.scalars(select(Endpoint.name)).all()
            names += session.scalars(select(Trunk.name)).all()
        assert "desk-9" not in names and "c9" not in names
    finally:
        await client.close()


async def test_trunks_and_phones_are_added_from_their_page(world, client):
    analyst = Browser(client)
    await analyst.sign_in("analyst")
    assert (await analyst.get("/sip"))[0].status == 200
    assert (await analyst.post("/sip", {"action": "add_phone", "name": "x"}))[0].status == 403
    owner = Browser(client)
    await owner.sign_in("owner")

    async def post(**form):
        await owner.get("/sip")
        return await owner.post("/sip", form)

    agency = str(world.accounts["agency"])
    response, body = await post(
        action="add_phone", name="desk-1", label="<b>Desk</b>", account=agency
    )
    assert response.status == 200
    secret = re.search(r'<code class="key">([^<]+)</code>', body).group(1)
    assert len(secret) >= 30
    response, body = await owner.get("/sip")
    assert secret not in body and "&lt;b&gt;Desk&lt;/b&gt;" in body  # shown once, as text
    for form, words in [
        ({"action": "add_phone", "name": "desk-1", "account": agency}, "already exists"),
        ({"action": "add_phone", "name": "Desk 2;", "account": agency}, "lowercase letters"),
        ({"action": "add_phone", "name": "desk-1-auth", "account": agency}, "not ending in"),
        ({"action": "add_trunk", "name": "any", "host": "203.0.113.5", "match": "0.0.0.0/0",
          "account": agency}, "from anywhere"),
        ({"action": "add_trunk", "name": "desk-1", "host": "203.0.113.5", "account": agency},
         "an endpoint 'desk-1' already exists"),
        ({"action": "remove_phone", "name": "nobody"}, "no phone"),
    ]:  # fmt: skip
        response, body = await post(**form)
        assert response.status == 400, form
        assert words in html.unescape(body), form
    response, body = await post(action="phone_password", name="desk-1")
    assert response.status == 200
    assert re.search(r'<code class="key">([^<]+)</code>', body).group(1) != secret
    response, _ = await post(
        action="add_trunk", name="carrier", host="203.0.113.5", match="203.0.113.0/24",
        account=agency,
    )  # fmt: skip
    assert response.status == 200
    response, _ = await post(action="remove_trunk", name="carrier")
    assert response.status == 200
    response, _ = await post(action="remove_phone", name="desk-1")
    assert response.status == 200


PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99"
    b"=\x1d\x00\x00\x00\x00IEND\xaeB`\x82"
)


async def test_the_agency_brand_is_what_its_clients_see(world, client):
    import aiohttp

    owner = Browser(client)
    await owner.sign_in("owner")

    async def save(name, colour, logo=None, kind="image/png"):
        await owner.get("/settings")
        form = aiohttp.FormData()
        form.add_field("csrf", owner.csrf)
        form.add_field("name", name)
        form.add_field("colour", colour)
        if logo is not None:
            form.add_field("logo", logo, filename="logo", content_type=kind)
        response = await client.post(
            "/settings", data=form, headers=owner._headers(), allow_redirects=False
        )
        return response.status, await response.text()

    for name, colour, logo, words in [
        ("Acme", "red;} body{display:none", None, "#rrggbb"),
        ("Acme", "#123456", b"<svg onload=alert(1)>", "png or jpeg"),
        ("Acme", "#123456", PNG + b"x" * 210_000, "at most 200 kb"),
        ("A\x07cme", "#123456", None, "printable"),
    ]:
        status, body = await save(name, colour, logo)
        assert status == 400 and words in html.unescape(body).lower(), name
    status, _ = await save("<b>Acme</b> Marketing", "#AA3300", PNG)
    assert status == 200
    viewer = Browser(client)
    await viewer.sign_in("viewer-b")
    _, body = await viewer.get("/calls")
    assert "&lt;b&gt;Acme&lt;/b&gt; Marketing" in body and '<img class="logo"' in body
    response = await viewer.client.get("/brand.css", headers=viewer._headers())
    assert await response.text() == ":root { --accent: #aa3300; }\n"
    response = await viewer.client.get("/brand/logo", headers=viewer._headers())
    assert response.headers["Content-Type"] == "image/png" and await response.read() == PNG
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    anonymous = await client.get("/brand.css")
    assert "#1f5fbf" in await anonymous.text()  # nobody's brand before signing in
    assert (await client.get("/brand/logo", allow_redirects=False)).status == 303
    alice = Browser(client)
    await alice.sign_in("alice")  # a client's analyst may not set the agency's brand
    assert (await alice.get("/settings"))[0].status == 403


async def test_review_fixes_hold(world, client):
    """Turning the second step on ends the other sessions; numbers that only look like digits
    are a clear 400; /health tells anonymous callers no version and no counters."""
    import pyotp

    other = Browser(client)
    await other.sign_in("owner")
    owner = Browser(client)
    await owner.sign_in("owner")
    await owner.get("/account")
    _, body = await owner.post("/account", {"action": "begin"})
    key = re.search(r'name="setup_key" value="([A-Z2-7]{32})"', body).group(1)
    response, _ = await owner.post(
        "/account",
        {
            "action": "confirm",
            "setup_key": key,
            "code": pyotp.TOTP(key).now(),
            "password": PASSWORD,
        },
    )
    assert response.status == 200
    assert (await owner.get("/calls"))[0].status == 200  # this session stays
    assert (await other.get("/calls"))[0].status == 303  # the other one ended
    # RUF001: the Arabic-Indic digit is on purpose (int() reads it as 1)
    for path in ("/?account=²", "/audit?before=²", "/calls?account=١"):  # noqa: RUF001
        response, body = await owner.get(path)
        assert response.status == 400, path
    anonymous = await (await client.get("/health")).json()
    assert set(anonymous) == {"status", "checks"}
    token = world.tokens["analyst"]
    known = await (await client.get("/health", headers={"Authorization": f"Bearer {token}"})).json()
    assert "version" in known and "counters" in known
    _, body = await Browser(client).get("/login")
    assert "version" not in body


async def test_every_page_as_every_role_of_two_tenants_shows_only_their_own(world, client):
    """Walks every page the application serves (a call's pages with each tenant's call) as each
    role: a client's user never sees the other client's marker, and pages are 200 or a refusal,
    never an error."""
    from tests.web_world import PEOPLE, app_for

    marker = {"a": "Caller a", "b": "Caller b"}  # the world's recorded calls' caller names
    pages = set()
    for route in app_for(world).router.routes():
        path = route.resource.canonical if route.resource else ""
        if (
            route.method != "GET"
            or path.startswith(("/api/", "/static/"))
            or path
            in (
                "/health",
                "/brand.css",
            )
        ):
            continue
        pages.add(path)
    assert {"/", "/calls", "/calls/{call_id}", "/users", "/audit", "/sip"} <= pages
    for username, (_, account) in PEOPLE.items():
        browser = Browser(client)
        await browser.sign_in(username)
        for path in sorted(pages):
            for tenant, call_id in world.calls.items():
                concrete = path.replace("{call_id}", call_id).replace("{token}", "x" * 43)
                response, body = await browser.get(concrete)
                assert response.status in (200, 206, 303, 403, 404), (username, concrete)
                if account in ("a", "b"):
                    other = "b" if account == "a" else "a"
                    assert marker[other] not in body, (username, concrete)
                    if "{call_id}" in path and tenant not in ("", account):
                        assert response.status == 404, (username, concrete)
                if "{" not in path:
                    break  # one visit is enough for pages without a call in them


async def test_a_route_is_changed_from_its_page_and_keeps_what_the_page_does_not_show(
    world, client
):
    from appliance import admin
    from appliance.secrets import SecretBox

    agency = world.accounts["agency"]
    with world.sessions.begin() as session:
        admin.add_trunk(
            session, SecretBox(b"k" * 32), admin.TrunkRequest("carrier", "ip", "127.0.0.1")
        )
        request = admin.RouteRequest(
            "Desk", forward_to=["+12025550199"], trunk="carrier", whisper="beep"
        )
        admin.add_route(session, request, agency)
    owner = Browser(client)
    await owner.sign_in("owner")
    response, body = await owner.get(f"/routes?edit=Desk&account={agency}")
    assert response.status == 200 and 'name="original" value="Desk"' in body
    assert 'value="+12025550199"' in body
    response, body = await owner.post(
        "/routes",
        {"action": "edit", "original": "Desk", "account": str(agency), "name": "Front desk",
         "forward": "+12025550198", "trunk": "carrier", "ring_timeout": "25",
         "strategy": "sequential", "recording": "never", "timezone": "UTC", "whisper": "beep"},
    )  # fmt: skip
    assert response.status == 200 and "Route Front desk changed" in body
    with world.sessions() as session:
        route = admin.route_by_name(session, "Front desk", agency)
        assert (route.ring_timeout, route.strategy, route.whisper) == (25, "sequential", "beep")
        assert [t.value for t in route.targets] == ["+12025550198"]
    assert (await owner.get(f"/routes?edit=Nope&account={agency}"))[0].status == 404
    viewer = Browser(client)
    await viewer.sign_in("alice")
    assert (await viewer.get(f"/routes?edit=Front%20desk&account={agency}"))[0].status == 403


async def test_sources_are_listed_added_and_removed_when_unused(world, client):
    owner = Browser(client)
    await owner.sign_in("owner")

    async def post(**form):
        await owner.get("/sources")
        return await owner.post("/sources", form)

    agency = str(world.accounts["agency"])
    response, body = await post(
        action="add", name="<i>Radio</i>", medium="broadcast", account=agency
    )
    assert response.status == 200 and "&lt;i&gt;Radio&lt;/i&gt;" in body
    response, body = await post(action="add", name="<i>Radio</i>", account=agency)
    assert response.status == 400 and "already exists" in html.unescape(body)
    with world.sessions() as session:
        from appliance.db.models import Source

        ids = {s.name: s.id for s in session.scalars(select(Source))}
    response, body = await post(action="remove", id=str(ids["Google Ads"]))  # a number uses it
    assert response.status == 400 and "numbers have source" in html.unescape(body)
    response, _ = await post(action="remove", id=str(ids["<i>Radio</i>"]))
    assert response.status == 200
    alice = Browser(client)
    await alice.sign_in("alice")
    assert (await alice.get("/sources"))[0].status == 403
