"""The Plugins page over the real application: the agency's owners and admins see every
plugin, its origin, hooks, state and counters, all escaped; nobody else sees it."""

from __future__ import annotations

import html

import pytest
from aiohttp.test_utils import TestClient, TestServer

from appliance.web.app import init_app
from tests.hostile import STRINGS
from tests.web_world import Browser

HOSTILE = "<script>alert(1)</script>"


def listing() -> list[dict]:
    common = {"calls": 3, "failures": 1, "timeouts": 2, "skipped": 0, "invalid": 0}
    return [
        {"name": "routing", "origin": "built-in", "hooks": ["call_started"], "state": "loaded",
         "reason": ""} | common,
        {"name": "evil", "origin": f"/etc/appliance/plugins.d/{HOSTILE}.py", "hooks": [],
         "state": "refused", "reason": f"failed to load: {STRINGS[0]}"} | common,
    ]  # fmt: skip


@pytest.fixture
async def plugin_client(world):
    app = init_app(
        {"database": lambda: True},
        lambda: {},
        world.sessions,
        world.vault,
        base_url="https://calls.example.com:8443",
        plugins=listing,
    )
    client = TestClient(TestServer(app))
    await client.start_server()
    yield client
    await client.close()


async def test_the_owner_sees_every_plugin_escaped(world, plugin_client):
    owner = Browser(plugin_client)
    await owner.sign_in("owner")
    response, body = await owner.get("/plugins")
    assert response.status == 200
    assert "<td>routing</td>" in body and "<td>built-in</td>" in body
    assert "<td>call_started</td>" in body and "refused: failed to load" in body
    assert HOSTILE not in body and html.escape(HOSTILE) in body
    _, home = await owner.get("/")
    assert '<a href="/plugins">Plugins</a>' in home


@pytest.mark.parametrize("who", ["manager", "analyst", "alice", "viewer-a"])
async def test_nobody_else_sees_the_plugins(world, plugin_client, who):
    person = Browser(plugin_client)
    await person.sign_in(who)
    response, body = await person.get("/plugins")
    assert response.status in (403, 404) and "routing" not in body
    _, home = await person.get("/")
    assert 'href="/plugins"' not in home


async def test_signed_out_the_page_leads_to_sign_in(plugin_client):
    response = await plugin_client.get("/plugins", allow_redirects=False)
    assert response.status in (302, 303, 401) and "routing" not in await response.text()
