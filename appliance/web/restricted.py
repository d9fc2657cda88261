"""The restrict list page (/privacy/restricted): the callers each account must never record,
transcribe, analyse or send to an ad platform. Owners and admins of the agency only (it
lists people's numbers), each account only by someone who holds it."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy.orm import Session, sessionmaker

from appliance import admin
from appliance.access import Denied, Permission, Principal, account_names
from appliance.forms import whole
from appliance.privacy import restricted_store
from appliance.web.auth import SESSIONS
from appliance.web.keys import PRINCIPAL
from appliance.web.offload import offload
from appliance.web.render import render

PATH = "/privacy/restricted"


def _listed(sessions: sessionmaker[Session], principal: Principal) -> dict[str, Any]:
    with sessions() as session:
        accounts = account_names(session, principal)
        rows = restricted_store.listed(session, [account for account, _ in accounts])
        return {"accounts": accounts, "names": dict(accounts), "rows": rows}


async def restricted_page(request: web.Request, status: int = 200, **shown: Any) -> web.Response:
    principal: Principal = request[PRINCIPAL]
    principal.require(Permission.CONFIG_WRITE)
    values = await offload(request, _listed, request.app[SESSIONS], principal)
    return render(request, "restricted.html", status, **values, **shown)


def _change(sessions: sessionmaker[Session], principal: Principal, form: dict[str, str]) -> str:
    action, account, number = form.get("action", ""), form.get("account", ""), form.get("number")
    if not whole(account) or int(account) not in principal.accounts:
        raise Denied("that account is not yours")
    with sessions.begin() as session:
        if action == "add":
            e164 = restricted_store.add(session, int(account), number or "", principal.actor)
            return f"{e164} is restricted: from its next call on, it is never recorded."
        if action == "remove":
            e164 = restricted_store.remove(session, int(account), number or "", principal.actor)
            return f"{e164} is no longer restricted."
    raise admin.AdminError("unknown action")


async def restricted_change(request: web.Request) -> web.Response:
    principal: Principal = request[PRINCIPAL]
    principal.require(Permission.CONFIG_WRITE)
    form = {k: str(v)[:200] for k, v in (await request.post()).items()}
    try:
        said = await offload(request, _change, request.app[SESSIONS], principal, form)
    except admin.AdminError as exc:
        return await restricted_page(request, 400, error=str(exc))
    return await restricted_page(request, notice=said)


def add_routes(app: web.Application) -> None:
    app.router.add_get(PATH, restricted_page)
    app.router.add_post(PATH, restricted_change)
