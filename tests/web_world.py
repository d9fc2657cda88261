"""A small appliance for web tests: a real SQLite database, a real recording vault with sealed
recordings, two unrelated client accounts under an agency, users of every role, and the real
aiohttp application served on loopback by aiohttp's test server."""

from __future__ import annotations

import atexit
import datetime as dt
import http.cookies
import os
import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from appliance import admin, secrets
from appliance.access import SCOPES
from appliance.db.engine import make_engine, session_factory
from appliance.db.models import Call, Campaign
from appliance.forwarded import parse_proxies
from appliance.recordings import keys
from appliance.recordings.live import LiveRecordings
from appliance.recordings.spool_files import done_name, raw_name
from appliance.recordings.vault import RecordingVault
from appliance.web.app import init_app
from appliance.web.auth import COOKIE
from tests.made_once import migrated_sqlite

PASSWORD = "correct horse battery"
# who is who: username -> (role, account key)
PEOPLE = {
    "owner": ("owner", "agency"),
    "manager": ("manager", "agency"),
    "analyst": ("analyst", "agency"),
    "alice": ("analyst", "a"),
    "viewer-a": ("client_viewer", "a"),
    "viewer-b": ("client_viewer", "b"),
}
SOURCES = {"a": "Google Ads", "b": "<b>Billboard</b>"}  # of each client's tracking number
CAMPAIGNS = {"a": "Spring sale", "b": None}
# what every WAV recording in the world holds (before the 44-byte header)
AUDIO = bytes(range(256)) * 400


@dataclass
class World:
    sessions: object
    vault: RecordingVault
    spool: Path
    accounts: dict[str, int]
    calls: dict[str, str] = field(default_factory=dict)  # account key -> recorded call id
    tokens: dict[str, str] = field(default_factory=dict)  # username -> API token (all scopes)
    numbers: dict[str, int] = field(default_factory=dict)  # account key -> tracking number id

    def add_call(
        self,
        account: str | None,
        caller_name: str = "Pat",
        caller_number: str = "+12025550100",
        started: dt.datetime | None = None,
        record: bool = False,
        disposition: str = "answered",
        first_time: bool | None = None,
        tracked: bool = False,
    ) -> str:
        """A finished call; `tracked`: to the account's tracking number (source, campaign)."""
        call_id = uuid.uuid4().hex
        linkedid = f"{uuid.uuid4().int % 10**10}.1"
        with self.sessions.begin() as session:  # type: ignore[attr-defined]
            session.add(
                Call(
                    id=call_id,
                    linkedid=linkedid,
                    account_id=self.accounts[account] if account else None,
                    dialled="+12025550123",
                    caller_number=caller_number,
                    caller_name=caller_name,
                    started_at=started or dt.datetime.now(dt.UTC),
                    disposition=disposition,
                    talk_seconds=42.0,
                    first_time=first_time,
                    tracking_number_id=self.numbers[account] if tracked and account else None,
                    source_name=SOURCES[account] if tracked and account else None,
                    campaign_name=CAMPAIGNS[account] if tracked and account else None,
                )
            )
        if record:
            spool = self.spool
            (spool / raw_name(linkedid)).write_bytes(AUDIO)
            (spool / done_name(linkedid)).touch()
            self.vault.seal(spool / raw_name(linkedid), linkedid)
        return call_id


_TEMPLATE: tuple[Path, World] | None = None


def build_world(tmp_path: Path) -> World:
    """A fresh copy of the world (built once: bcrypt makes its users slow to create)."""
    global _TEMPLATE
    if _TEMPLATE is None:
        base = Path(tempfile.mkdtemp(prefix="appliance-web-world-"))
        atexit.register(shutil.rmtree, base, ignore_errors=True)
        template = _build(base)
        template.sessions.kw["bind"].dispose()  # type: ignore[attr-defined]
        _TEMPLATE = (base, template)
    base, template = _TEMPLATE
    for name in ("keys", "web.db"):
        shutil.copy2(base / name, tmp_path / name)
    for name in ("store", "spool"):
        shutil.copytree(base / name, tmp_path / name)
    sessions = session_factory(make_engine(f"sqlite:///{tmp_path}/web.db"))
    vault = RecordingVault(
        sessions, tmp_path / "store", tmp_path / "keys", spool_owners={os.getuid()}
    )
    return World(
        sessions,
        vault,
        tmp_path / "spool",
        dict(template.accounts),
        dict(template.calls),
        dict(template.tokens),
        dict(template.numbers),
    )


def _build(tmp_path: Path) -> World:
    sessions = session_factory(migrated_sqlite(tmp_path / "web.db"))
    keys.create(tmp_path / "keys")
    spool = tmp_path / "spool"
    spool.mkdir()
    vault = RecordingVault(
        sessions, tmp_path / "store", tmp_path / "keys", spool_owners={os.getuid()}
    )
    # passwords at bcrypt's lowest cost: every sign-in of a web test checks one, and the web
    # tests prove the sign-in flow, not the work factor (test_secrets pins that)
    with sessions.begin() as session, pytest.MonkeyPatch.context() as patch:
        patch.setattr(secrets, "BCRYPT_COST", 4)
        agency = admin.default_account(session)
        a = admin.add_account(session, "Client A", agency.id)
        b = admin.add_account(session, "Client B", agency.id)
        ids = {"agency": agency.id, "a": a.id, "b": b.id}
        for username, (role, account) in PEOPLE.items():
            user = admin.add_user(session, username, PASSWORD, role, ids[account])
            user.must_change_password = False
    world = World(sessions, vault, spool, ids)
    with sessions.begin() as session:
        for key, number, source, campaign in (
            ("a", "+12025550123", SOURCES["a"], CAMPAIGNS["a"]),
            ("b", "+12025550124", SOURCES["b"], CAMPAIGNS["b"]),
        ):
            tracking = admin.add_number(
                session, admin.NumberRequest(number, source=source), ids[key]
            )
            if campaign:
                row = Campaign(source_id=tracking.source_id, name=campaign)
                session.add(row)
                session.flush()
                tracking.campaign_id = row.id
            world.numbers[key] = tracking.id
    with sessions.begin() as session:
        for username in PEOPLE:
            _, token = admin.add_api_key(session, username, "test", SCOPES)
            world.tokens[username] = token
    for account in ("a", "b"):
        world.calls[account] = world.add_call(account, caller_name=f"Caller {account}", record=True)
    world.calls[""] = world.add_call(None, caller_name="Nobody's number", record=True)
    return world


def app_for(
    world: World,
    checks: dict | None = None,
    live: bool = False,
    mailer=None,
    box=None,
    transcription_off=None,
    attached: bool = False,
    trusted_proxies: str = "",
):
    """The application as the controller builds it; `live` adds the control of recordings in
    progress (which needs Asterisk: tests of it run the whole stack); `attached`: as in
    asterisk.mode = attached; `trusted_proxies` as in http.trusted_proxies."""
    return init_app(
        checks or {"database": lambda: True},
        lambda: {"ami_logins": 1},
        world.sessions,  # type: ignore[arg-type]
        world.vault,
        LiveRecordings(None, None, None, "") if live else None,  # type: ignore[arg-type]
        tls=True,
        mailer=mailer,
        box=box,
        base_url="https://calls.example.com:8443",
        transcription_off=transcription_off,
        attached=attached,
        trusted_proxies=parse_proxies(trusted_proxies),
    )


async def client_for(world: World, mailer=None, transcription_off=None) -> TestClient:
    client = TestClient(
        TestServer(app_for(world, mailer=mailer, transcription_off=transcription_off))
    )
    await client.start_server()
    return client


CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


class Browser:
    """A signed-in browser: keeps the session cookie and sends the page's CSRF token."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.cookie: str | None = None
        self.csrf = ""

    def _headers(self, extra: dict | None = None) -> dict:
        headers = dict(extra or {})
        if self.cookie:
            headers["Cookie"] = f"{COOKIE}={self.cookie}"
        return headers

    def _keep(self, response: ClientResponse) -> None:
        for raw in response.headers.getall("Set-Cookie", []):
            jar = http.cookies.SimpleCookie(raw)
            if COOKIE in jar:
                self.cookie = jar[COOKIE].value or None

    async def get(self, path: str, headers: dict | None = None) -> tuple[ClientResponse, str]:
        response = await self.client.get(
            path, headers=self._headers(headers), allow_redirects=False
        )
        body = await response.text(errors="replace")
        self._keep(response)
        found = CSRF.search(body)
        if found:
            self.csrf = found.group(1)
        return response, body

    async def post(
        self, path: str, data: dict, csrf: bool = True, headers: dict | None = None
    ) -> tuple[ClientResponse, str]:
        form = {**data, **({"csrf": self.csrf} if csrf and self.csrf else {})}
        response = await self.client.post(
            path, data=form, headers=self._headers(headers), allow_redirects=False
        )
        self._keep(response)
        return response, await response.text(errors="replace")

    async def sign_in(self, username: str, password: str = PASSWORD) -> ClientResponse:
        await self.get("/login")
        response, _ = await self.post("/login", {"username": username, "password": password})
        if response.status == 303:  # open the page it leads to, as a browser does
            await self.get(response.headers["Location"])
        return response
