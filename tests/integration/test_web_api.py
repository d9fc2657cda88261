"""The REST API as every role of two unrelated client accounts and the agency above them, with
every kind of authorisation failure, over the real application and a real database and vault."""

import datetime as dt
import json

import pytest
from sqlalchemy import select, update

from appliance.calls import annotations
from appliance.db.models import ApiKey, AuditEntry
from appliance.web import openapi
from tests.web_world import AUDIO, PEOPLE

pytestmark = pytest.mark.usefixtures("cheap_passwords")  # users are set-up here

SEES = {
    "owner": {"a", "b", ""},
    "manager": {"a", "b", ""},
    "analyst": {"a", "b", ""},
    "alice": {"a"},
    "viewer-a": {"a"},
    "viewer-b": {"b"},
}
# every API route, and how a test reaches it for a call (path template, method)
API_ROUTES = {
    ("GET", "/api/v1/calls"),
    ("GET", "/api/v1/calls/{call_id}"),
    ("GET", "/api/v1/calls/{call_id}/recording"),
    ("GET", "/api/v1/calls/{call_id}/transcript"),
    ("GET", "/api/v1/transcripts/search"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/v1/numbers"),
    ("GET", "/api/v1/sources"),
    ("GET", "/api/v1/routes"),
    ("GET", "/api/v1/endpoints"),
    ("GET", "/api/v1/sites"),
    ("GET", "/api/v1/leads"),
    ("GET", "/metrics"),  # documented with the API, tested in test_metrics_web.py
}


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_every_api_route_is_covered_here(world):
    from tests.web_world import app_for

    app = app_for(world)
    routes = {
        (r.method, r.resource.canonical)
        for r in app.router.routes()
        if r.resource is not None
        and r.resource.canonical.startswith(("/api/", "/metrics"))
        and r.method != "HEAD"
    }
    assert routes == API_ROUTES  # a new route needs its place in the matrix below


async def test_the_openapi_document_names_exactly_the_served_routes(world, client):
    from tests.web_world import app_for

    response = await client.get("/api/v1/openapi.json", headers=bearer(world.tokens["alice"]))
    document = await response.json()
    assert document["openapi"].startswith("3.1")
    documented = {
        (method.upper(), path) for path, item in document["paths"].items() for method in item
    }
    assert documented == API_ROUTES
    for live in (True, False):  # with live control (the controller), its route is documented
        app = app_for(world, live=live)
        served = {
            (r.method, r.resource.canonical)
            for r in app.router.routes()
            if r.resource is not None
            and r.resource.canonical.startswith(("/api/", "/metrics"))
            and r.method != "HEAD"
        }
        spec = app[openapi.DOCUMENT]
        assert served == {(m.upper(), p) for p, item in spec["paths"].items() for m in item}
    for item in document["paths"].values():
        for operation in item.values():
            for status, answer in operation["responses"].items():
                if int(status) >= 400:
                    schema = answer["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}


@pytest.mark.parametrize("username", sorted(PEOPLE))
async def test_each_role_sees_exactly_its_accounts_calls(world, client, username):
    token = world.tokens[username]
    response = await client.get("/api/v1/calls", headers=bearer(token))
    assert response.status == 200
    listed = {c["id"] for c in (await response.json())["calls"]}
    assert listed == {world.calls[k] for k in SEES[username]}
    for key, call_id in world.calls.items():
        visible = key in SEES[username]
        for path in (
            f"/api/v1/calls/{call_id}",
            f"/api/v1/calls/{call_id}/recording",
            f"/api/v1/calls/{call_id}/transcript",
        ):
            response = await client.get(path, headers=bearer(token))
            body = await response.read()
            assert response.status == (200 if visible else 404), (username, key, path)
            if not visible:  # another tenant's call reads exactly like one that does not exist
                assert json.loads(body)["error"]["code"] == "not_found"
            elif path.endswith("/recording"):
                assert body[44:] == AUDIO


async def test_unauthenticated_and_forged_tokens_are_refused_as_json(world, client):
    path = f"/api/v1/calls/{world.calls['a']}/recording"
    with world.sessions.begin() as session:
        keys = {k.user.username: k for k in session.scalars(select(ApiKey))}
    for headers in (
        {},
        {"Authorization": "Basic b3duZXI6cGFzc3dvcmQ="},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer apk_forged"},
        {"Authorization": "Bearer " + "x" * 5000},
        {"Authorization": "Bearer " + world.tokens["owner"][:-1]},
    ):
        response = await client.get(path, headers=headers)
        assert response.status == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert (await response.json())["error"]["code"] == "unauthenticated"
    # revoked and expired tokens stop working at once
    with world.sessions.begin() as session:
        session.execute(
            update(ApiKey)
            .where(ApiKey.id == keys["viewer-a"].id)
            .values(revoked_at=dt.datetime.now(dt.UTC))
        )
        session.execute(
            update(ApiKey)
            .where(ApiKey.id == keys["alice"].id)
            .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )
    for username in ("viewer-a", "alice"):
        response = await client.get(path, headers=bearer(world.tokens[username]))
        assert response.status == 401, username


async def test_scopes_narrow_what_a_token_may_do(world, client):
    from appliance import admin

    with world.sessions.begin() as session:
        _, calls_only = admin.add_api_key(session, "owner", "test", ["calls:read"])
    headers = bearer(calls_only)
    assert (await client.get("/api/v1/calls", headers=headers)).status == 200
    response = await client.get(f"/api/v1/calls/{world.calls['a']}/recording", headers=headers)
    assert response.status == 403
    error = (await response.json())["error"]
    assert error["code"] == "forbidden" and "recordings:read" in error["message"]


async def test_refused_requests_are_audited(world, client):
    call_a = world.calls["a"]
    await client.get(f"/api/v1/calls/{call_a}/recording")
    await client.get(f"/api/v1/calls/{call_a}", headers=bearer(world.tokens["viewer-b"]))
    with world.sessions() as session:
        refused = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "request.refused")
        ).all()
    assert [(e.actor, e.detail.split(" ")[0]) for e in refused] == [
        ("anonymous", "401"),
        ("user:viewer-b", "404"),
    ]
    assert refused[1].account_id == world.accounts["b"]
    assert all(e.client == "127.0.0.1" for e in refused)


async def test_a_flood_of_refusals_is_audited_in_bounded_rows(world, client):
    for _ in range(60):
        await client.get("/api/v1/calls", headers={"Authorization": "Bearer nope"})
    with world.sessions() as session:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "request.refused")
        ).all()
    assert len(rows) == 30


async def test_every_response_carries_the_security_headers(world, client):
    call_a = world.calls["a"]
    owner = bearer(world.tokens["owner"])
    for path, headers, status in [
        ("/api/v1/calls", owner, 200),
        (f"/api/v1/calls/{call_a}/recording", owner, 200),
        (f"/api/v1/calls/{call_a}/recording", {**owner, "Range": "bytes=10-20"}, 206),
        (f"/api/v1/calls/{call_a}/recording", {**owner, "Range": "bytes=999999-"}, 416),
        ("/api/v1/calls", {}, 401),
        ("/api/v1/nothing-here", owner, 404),
        ("/health", {}, 200),
        ("/login", {}, 200),
        ("/calls", {}, 303),
        ("/static/app.css", {}, 200),
        ("/static/no-such.css", {}, 404),
    ]:
        response = await client.get(path, headers=headers, allow_redirects=False)
        await response.read()
        assert response.status == status, path
        h = response.headers
        assert "frame-ancestors 'none'" in h["Content-Security-Policy"], path
        assert "'unsafe-inline'" not in h["Content-Security-Policy"]
        assert h["X-Content-Type-Options"] == "nosniff"
        assert h["Strict-Transport-Security"].startswith("max-age=")
        assert h["Server"] == "appliance", path
        if not path.startswith("/static/"):
            assert h["Cache-Control"] == "no-store", path


async def test_error_bodies_tell_no_internals(world, client, monkeypatch):
    from appliance.recordings import vault as vault_module

    def broken(*args, **kwargs):
        raise vault_module.RecordingError(f"sealed file {world.vault.store_dir}/x.enc is missing")

    monkeypatch.setattr(world.vault, "load", broken)
    response = await client.get(
        f"/api/v1/calls/{world.calls['a']}/recording", headers=bearer(world.tokens["owner"])
    )
    body = await response.text()
    assert response.status == 503
    assert str(world.vault.store_dir) not in body and ".enc" not in body
    assert json.loads(body)["error"]["code"] == "unavailable"


@pytest.mark.parametrize(
    ("range_", "status", "part"),
    [
        (None, 200, slice(None)),
        ("bytes=0-43", 206, slice(0, 44)),
        ("bytes=100-", 206, slice(100, None)),
        ("bytes=-100", 206, slice(-100, None)),
        ("bytes=-999999", 206, slice(None)),
        ("bytes=100-999999", 206, slice(100, None)),
        ("bytes=abc", 200, slice(None)),
        ("bytes=100-50", 200, slice(None)),
        ("bytes=0-1,5-9", 200, slice(None)),
        ("items=0-10", 200, slice(None)),
        ("bytes=-0", 416, None),
        ("bytes=999999-", 416, None),
    ],
)
async def test_ranges_follow_rfc_9110(world, client, range_, status, part):
    headers = bearer(world.tokens["analyst"])
    whole = await (
        await client.get(f"/api/v1/calls/{world.calls['a']}/recording", headers=headers)
    ).read()
    if range_:
        headers["Range"] = range_
    response = await client.get(f"/api/v1/calls/{world.calls['a']}/recording", headers=headers)
    body = await response.read()
    assert response.status == status
    if part is None:
        assert response.headers["Content-Range"] == f"bytes */{len(whole)}"
        assert json.loads(body)["error"]["code"] == "range_not_satisfiable"
    else:
        assert body == whole[part]
        assert response.headers["Cache-Control"] == "no-store"


async def test_listening_is_audited_with_the_account(world, client):
    call_b = world.calls["b"]
    await client.get(f"/api/v1/calls/{call_b}/recording", headers=bearer(world.tokens["viewer-b"]))
    await client.get(
        f"/api/v1/calls/{call_b}/recording?download=1", headers=bearer(world.tokens["owner"])
    )
    with world.sessions() as session:
        rows = session.scalars(
            select(AuditEntry).where(
                AuditEntry.action.in_(["recording.play", "recording.download"])
            )
        ).all()
    assert [(r.actor, r.action, r.subject, r.account_id) for r in rows] == [
        ("user:viewer-b", "recording.play", call_b, world.accounts["b"]),
        ("user:owner", "recording.download", call_b, world.accounts["b"]),
    ]


async def test_call_log_pages_filters_and_rejects_bad_filters(world, client):
    base = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
    made = [
        world.add_call(
            "a", caller_number=f"+1202555{i:04d}", started=base + dt.timedelta(minutes=i)
        )
        for i in range(7)
    ]
    headers = bearer(world.tokens["alice"])
    seen, cursor = [], None
    while True:
        query = "from=2026-03-01&to=2026-03-01&limit=3" + (f"&cursor={cursor}" if cursor else "")
        body = await (await client.get(f"/api/v1/calls?{query}", headers=headers)).json()
        seen += [c["id"] for c in body["calls"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == made[::-1]
    body = await (await client.get("/api/v1/calls?number=5550003", headers=headers)).json()
    assert [c["id"] for c in body["calls"]] == [made[3]]
    for bad in ("from=yesterday", "disposition=<b>", "cursor=Zm9v", "limit=x", "q=" + "x" * 101):
        response = await client.get(f"/api/v1/calls?{bad}", headers=headers)
        assert response.status == 400, bad
        assert (await response.json())["error"]["code"] == "bad_request"


@pytest.fixture
async def live_client(world):
    from aiohttp.test_utils import TestClient, TestServer

    from tests.web_world import app_for

    client = TestClient(TestServer(app_for(world, live=True)))
    await client.start_server()
    yield client
    await client.close()


@pytest.mark.parametrize("verb", ["pause", "resume", "start"])
async def test_live_control_refuses_before_touching_the_call(world, live_client, verb):
    """Refusals come before Asterisk is asked anything (this app has no Asterisk behind it);
    the allowed case runs against the real stack in test_recordings."""
    path = f"/api/v1/calls/{world.calls['a']}/recording/{verb}"
    assert (await live_client.post(path)).status == 401
    for username in ("analyst", "alice", "viewer-a"):
        response = await live_client.post(path, headers=bearer(world.tokens[username]))
        assert response.status == 403, username
        assert "recordings:control" in (await response.json())["error"]["message"]
    unknown = f"/api/v1/calls/{'0' * 32}/recording/{verb}"
    response = await live_client.post(unknown, headers=bearer(world.tokens["manager"]))
    assert response.status == 404
    response = await live_client.get(path, headers=bearer(world.tokens["manager"]))
    assert response.status == 405
    assert (await response.json())["error"]["code"] == "method_not_allowed"


@pytest.mark.parametrize("kind", ["numbers", "sources", "routes", "endpoints"])
async def test_configuration_lists_are_scoped_and_need_config_read(world, client, kind):
    from appliance import admin
    from appliance.secrets import SecretBox

    with world.sessions.begin() as session:
        admin.add_endpoint(session, SecretBox(b"k" * 32), "desk-b", "B", world.accounts["b"])
        admin.add_route(
            session, admin.RouteRequest("B desk", endpoints=["desk-b"]), world.accounts["b"]
        )
    response = await client.get(f"/api/v1/{kind}", headers=bearer(world.tokens["analyst"]))
    items = (await response.json())[kind]
    assert response.status == 200 and {i["account_id"] for i in items} >= {world.accounts["b"]}
    assert "password" not in json.dumps(items).lower()
    for username in ("alice", "viewer-b"):  # client accounts read calls, not configuration
        response = await client.get(f"/api/v1/{kind}", headers=bearer(world.tokens[username]))
        assert response.status == 403
    from appliance import admin as admin_module

    with world.sessions.begin() as session:
        _, narrow = admin_module.add_api_key(session, "owner", "test", ["calls:read"])
    response = await client.get(f"/api/v1/{kind}", headers=bearer(narrow))
    assert response.status == 403


async def test_even_requests_aiohttp_cannot_parse_name_no_server_version(client):
    import asyncio

    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(b"GET /" + b"A" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    answer = (await reader.read(4096)).decode("latin-1")
    writer.close()
    assert answer.startswith("HTTP/1.") and " 400 " in answer.split("\r\n")[0]
    assert "Server: appliance" in answer
    assert "Python" not in answer and "aiohttp" not in answer.lower()


async def test_a_call_carries_what_integrators_added_to_whoever_may_read_it(world, client):
    """Tags, notes and the score adjustment from AGI scripts and plugins: with calls:read,
    in the caller's tenant only."""
    call_id = world.calls["a"]
    with world.sessions.begin() as session:
        annotations.add_tags(session, call_id, ["vip", "spanish"], "agi")
        annotations.add_note(session, call_id, "<b>call back</b>", "plugin:crm")
        annotations.adjust_score(session, call_id, 15)
    response = await client.get(f"/api/v1/calls/{call_id}", headers=bearer(world.tokens["alice"]))
    found = await response.json()
    assert found["labels"] == ["spanish", "vip"]
    assert found["notes"] == [{"origin": "plugin:crm", "text": "<b>call back</b>"}]
    assert found["score_adjustment"] == 15 and found["score"] == 15  # not analysed yet
    response = await client.get(
        f"/api/v1/calls/{call_id}", headers=bearer(world.tokens["viewer-b"])
    )
    assert response.status == 404
