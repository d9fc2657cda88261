"""The people page (/privacy/people): an owner or admin finds what is stored about a person in
their accounts, downloads it as one archive, corrects a name or number, or erases it all
after a confirmation step."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from appliance.access import Denied, Permission, Principal, account_names
from appliance.admin import AdminError
from appliance.db.models import Call
from appliance.forms import whole
from appliance.privacy import correction, erasure, export
from appliance.privacy.person import Found, find
from appliance.privacy.subject import InvalidSubject, Subject, parse
from appliance.recordings.vault import RecordingVault
from appliance.secrets import SecretBox
from appliance.web.auth import BOX, SESSIONS
from appliance.web.keys import PRINCIPAL
from appliance.web.offload import EXPORTS, offload
from appliance.web.playback import VAULT
from appliance.web.render import render

PATH = "/privacy/people"
NEEDS = Permission.USERS_MANAGE  # owners and admins of the agency
SHOWN_CALLS = 200
ARCHIVE = "person.zip"
CHUNK = 256 * 1024
Row = tuple[dt.datetime, str | None, str | None, bool]  # a call: at, number, name, held


@dataclass(frozen=True)
class Asked:
    """What the page's forms and query name: the subject, as typed, and the account."""

    text: str
    account: str

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> Asked:
        return cls(str(values.get("subject", ""))[:300], str(values.get("account", ""))[:12])

    def who(self, session: Session, principal: Principal) -> tuple[Principal, Subject]:
        """The scope (the principal's accounts, or one of them) and the subject; an account
        that is not the principal's is refused."""
        try:
            subject = parse(self.text)
        except InvalidSubject as exc:
            raise AdminError(str(exc)) from None
        if not self.account:
            return principal, subject
        if not whole(self.account) or int(self.account) not in principal.accounts:
            raise Denied("that account is not yours")
        return erasure.scope_of(session, int(self.account), principal.username), subject


@dataclass(frozen=True)
class Shown:
    subject: str
    counts: dict[str, int]
    calls: list[Row]


def _found(sessions: sessionmaker[Session], principal: Principal, asked: Asked) -> Shown:
    with sessions() as session:
        scope, subject = asked.who(session, principal)
        found = find(session, scope, subject)
        return Shown(str(subject), found.counts(), _calls(session, found))


def _calls(session: Session, found: Found) -> list[Row]:
    held = set(found.held)
    query = select(Call).where(Call.id.in_(found.calls)).order_by(Call.started_at.desc())
    return [
        (c.started_at, c.caller_number, c.caller_name, c.id in held)
        for c in session.scalars(query.limit(SHOWN_CALLS))
    ]


async def people_page(request: web.Request, status: int = 200, **shown: Any) -> web.Response:
    principal: Principal = request[PRINCIPAL]
    principal.require(NEEDS)
    asked = shown.pop("asked", None) or Asked.of(request.query)
    sessions = request.app[SESSIONS]
    found = None
    if asked.text and "error" not in shown:
        try:
            found = await offload(request, _found, sessions, principal, asked)
        except AdminError as exc:
            status, shown["error"] = 400, str(exc)
    choices = await offload(request, _accounts, sessions, principal)
    return render(request, "people.html", status, asked=asked, found=found, accounts=choices,
                  **shown)  # fmt: skip


def _accounts(sessions: sessionmaker[Session], principal: Principal) -> list[tuple[int, str]]:
    with sessions() as session:
        return account_names(session, principal)


def _export(
    sessions: sessionmaker[Session], vault: RecordingVault, principal: Principal, asked: Asked
) -> BinaryIO:
    """The archive, written to a new file (0600) in a new directory (0700) under the
    service's private temporary directory, opened, then removed from the disk: only the open
    file is left, read once and gone when closed."""
    with sessions() as session:
        scope, subject = asked.who(session, principal)
    place = Path(tempfile.mkdtemp(prefix="person-export-"))
    try:
        export.to_file(place / ARCHIVE, sessions, vault, scope, subject, principal.actor)
        return (place / ARCHIVE).open("rb")
    finally:
        shutil.rmtree(place, ignore_errors=True)


async def people_export(request: web.Request) -> web.StreamResponse:
    principal: Principal = request[PRINCIPAL]
    principal.require(NEEDS)
    asked = Asked.of(await request.post())
    try:
        async with request.app[EXPORTS]:
            archive = await offload(
                request, _export, request.app[SESSIONS], request.app[VAULT], principal, asked
            )
    except AdminError as exc:
        return await people_page(request, 400, asked=asked, error=str(exc))
    try:
        response = web.StreamResponse(
            headers={
                "Content-Type": "application/zip",
                "Content-Disposition": f'attachment; filename="{ARCHIVE}"',
                "Cache-Control": "no-store",
            }
        )
        response.content_length = os.fstat(archive.fileno()).st_size
        await response.prepare(request)
        while chunk := await asyncio.to_thread(archive.read, CHUNK):
            await response.write(chunk)
        await response.write_eof()
        return response
    finally:
        archive.close()


def _correct(
    sessions: sessionmaker[Session], principal: Principal, asked: Asked, form: Mapping[str, str]
) -> str:
    name, number = form.get("name", "").strip() or None, form.get("number", "").strip() or None
    with sessions.begin() as session:
        scope, subject = asked.who(session, principal)
        change = correction.checked(name, number)
        counts = correction.correct(session, scope, subject, change, principal.actor)
    return f"Corrected {counts['calls']} call(s) and {counts['leads']} lead(s)."


async def people_correct(request: web.Request) -> web.Response:
    principal: Principal = request[PRINCIPAL]
    principal.require(NEEDS)
    form = {k: str(v)[:300] for k, v in (await request.post()).items()}
    asked = Asked.of(form)
    try:
        said = await offload(request, _correct, request.app[SESSIONS], principal, asked, form)
    except AdminError as exc:
        return await people_page(request, 400, asked=asked, error=str(exc))
    return await people_page(request, asked=asked, notice=said)


def _erase(
    sessions: sessionmaker[Session],
    vault: RecordingVault,
    box: SecretBox,
    principal: Principal,
    asked: Asked,
) -> str:
    with sessions() as session:
        scope, subject = asked.who(session, principal)
    request_id = erasure.start(sessions, box, scope, subject, principal.actor)
    return str(erasure.run(sessions, vault, box, request_id)).capitalize() + "."


async def people_erase(request: web.Request) -> web.Response:
    principal: Principal = request[PRINCIPAL]
    principal.require(NEEDS)
    form = await request.post()
    asked = Asked.of(form)
    if form.get("confirm") != "yes":
        return await people_page(request, asked=asked, confirm=True)
    app = request.app
    try:
        said = await offload(request, _erase, app[SESSIONS], app[VAULT], app[BOX], principal, asked)
    except AdminError as exc:
        return await people_page(request, 400, asked=asked, error=str(exc))
    return await people_page(request, asked=Asked("", ""), notice=said)


def add_routes(app: web.Application) -> None:
    app.router.add_get(PATH, people_page)
    app.router.add_post(PATH + "/export", people_export)
    app.router.add_post(PATH + "/correct", people_correct)
    app.router.add_post(PATH + "/erase", people_erase)
