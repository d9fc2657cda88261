"""The Privacy page: what can leave the box and whether it is on, and the client accounts
being deleted (an agency's owners and admins delete a client and can cancel in the grace
period). The pages for requests by person and for restricted callers link from here."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from appliance import admin
from appliance.access import Denied, Permission, Principal
from appliance.db.models import Account
from appliance.forms import whole
from appliance.privacy import account_deletion, flows
from appliance.web.auth import MAILER, SESSIONS
from appliance.web.keys import PRINCIPAL
from appliance.web.offload import offload
from appliance.web.render import render


def _require(principal: Principal) -> None:
    principal.require(Permission.USERS_MANAGE)
    if not principal.agency:
        raise Denied("only the agency's owners and admins manage privacy")


def _page(sessions: sessionmaker[Session], principal: Principal, smtp_host: str) -> dict[str, Any]:
    with sessions() as session:
        clients = session.scalars(
            select(Account)
            .where(Account.parent_id.is_not(None), principal.where(Account.id))
            .order_by(Account.name)
        ).all()
        return {
            "flows": flows.flows(session, smtp_host, principal.accounts),
            "clients": [(a.id, a.name, a.erase_after) for a in clients],
            "grace_days": account_deletion.GRACE_DAYS,
        }


async def privacy_page(request: web.Request, status: int = 200, **shown: Any) -> web.Response:
    principal: Principal = request[PRINCIPAL]
    _require(principal)
    host = request.app[MAILER].config.host
    shown |= await offload(request, _page, request.app[SESSIONS], principal, host)
    return render(request, "privacy.html", status, **shown)


def _change(sessions: sessionmaker[Session], principal: Principal, form: dict[str, str]) -> str:
    account = form.get("account", "")
    if not whole(account) or int(account) not in principal.accounts:  # not isdigit: "²"
        raise Denied("that account is not yours")
    with sessions.begin() as session:
        if form.get("action") == "delete":
            if form.get("confirm") != "yes":
                raise admin.AdminError("tick the box to confirm the deletion")
            pending = account_deletion.request(session, int(account), principal.actor)
            return (
                f"{pending.name} is disabled and will be erased after "
                f"{pending.erase_after:%Y-%m-%d %H:%M} UTC."
            )
        if form.get("action") == "undelete":
            account_deletion.cancel(session, int(account), principal.actor)
            return "The deletion is cancelled: the account is enabled again."
    raise admin.AdminError("unknown action")


async def privacy_change(request: web.Request) -> web.Response:
    principal: Principal = request[PRINCIPAL]
    _require(principal)
    form = {k: str(v)[:100] for k, v in (await request.post()).items()}
    try:
        said = await offload(request, _change, request.app[SESSIONS], principal, form)
    except admin.AdminError as exc:
        return await privacy_page(request, 400, error=str(exc))
    return await privacy_page(request, notice=said)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/privacy", privacy_page)
    app.router.add_post("/privacy", privacy_change)
