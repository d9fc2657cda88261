"""The admin application of a test world, served on loopback from a thread of its own, for
clients that speak plain synchronous HTTP (schemathesis) and for the form fuzzing."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from aiohttp import web

from appliance import admin
from appliance.access import SCOPES
from tests.web_world import PASSWORD, World, app_for, build_world

# tokens of every role: the agency's owner, admin, manager and analyst, and client users
AGENCY = ("owner", "admin", "manager", "analyst")
CLIENTS = {"alice": "a", "viewer-a": "a", "viewer-b": "b"}


class Served:
    def __init__(self, tmp_path: Path) -> None:
        self.world: World = build_world(tmp_path)
        with self.world.sessions.begin() as session:  # type: ignore[attr-defined]
            user = admin.add_user(
                session, "admin", PASSWORD, "admin", self.world.accounts["agency"]
            )
            user.must_change_password = False
        with self.world.sessions.begin() as session:  # type: ignore[attr-defined]
            _, self.world.tokens["admin"] = admin.add_api_key(session, "admin", "test", SCOPES)
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        if not self.ready.wait(60):
            raise RuntimeError("the admin application did not start")
        self.base_url = f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.runner = web.AppRunner(app_for(self.world))
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.ready.set()
        self.loop.run_forever()

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)
        self.loop.close()

    def markers(self, tenant: str) -> tuple[str, ...]:
        """What of `tenant` no other client account may ever see."""
        from tests.web_world import SOURCES

        # not the tracking numbers: every call of the world dialled a's (+12025550123)
        return (self.world.calls[tenant], f"Caller {tenant}", SOURCES[tenant])

    def foreign(self, username: str) -> tuple[str, ...]:
        """Another tenant's markers for `username` (none for the agency, which sees all)."""
        own = CLIENTS.get(username)
        if own is None:
            return ()
        others = [t for t in ("a", "b") if t != own]
        return (
            *(m for t in others for m in self.markers(t)),
            self.world.calls[""],
            "Nobody's number",
        )
