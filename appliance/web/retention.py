"""Retention and legal holds in the admin UI: an agency's owners and admins set how long each
of their accounts keeps each kind of data (on the settings page) and hold or release a call
(on its page). Another tenant's account or call is not found; every change is audited."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from sqlalchemy.orm import Session, sessionmaker

from appliance.access import Permission, Principal, account_names
from appliance.admin import AdminError
from appliance.calls import log as call_log
from appliance.db.models import Account, Call
from appliance.forms import whole
from appliance.privacy import retention, retention_admin
from appliance.web.auth import SESSIONS
from appliance.web.hardening import Refused
from appliance.web.keys import PRINCIPAL
from appliance.web.offload import offload
from appliance.web.render import see_other

Page = Callable[..., Awaitable[web.Response]]


@dataclass(frozen=True)
class AccountRetention:
    id: int
    name: str
    policy: retention.Policy


def accounts_of(sessions: sessionmaker[Session], principal: Principal) -> list[AccountRetention]:
    """The retention of each account the principal may configure (none without the right)."""
    if not principal.can(Permission.CONFIG_WRITE):
        return []
    with sessions() as session:
        return [
            AccountRetention(i, name, retention.of(session.get_one(Account, i)))
            for i, name in account_names(session, principal)
        ]


def _save(
    sessions: sessionmaker[Session], principal: Principal, account_id: int, fields: dict[str, str]
) -> None:
    """The settings the form sent (an empty field: forever); those it did not send stay."""
    days = [*retention.LABELS, "legal_hold_days"]
    try:
        settings: dict[str, Any] = {
            name: retention.parse_days(fields[name]) for name in days if name in fields
        }
    except retention.RetentionRefused as exc:
        raise AdminError(str(exc)) from None
    if "call_expiry" in fields:
        settings["call_expiry"] = fields["call_expiry"]
    with sessions.begin() as session:
        retention_admin.set_retention(session, account_id, principal.actor, **settings)


def _changer(page: Page) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def change(request: web.Request) -> web.Response:
        principal: Principal = request[PRINCIPAL]
        principal.require(Permission.CONFIG_WRITE)
        form = await request.post()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        account = fields.get("account", "")
        if not whole(account) or int(account) not in principal.accounts:
            raise Refused(404, "no such account")
        try:
            await offload(request, _save, request.app[SESSIONS], principal, int(account), fields)
        except AdminError as exc:
            return await page(request, 400, error=f"Retention not changed: {exc}.")
        return await page(request, notice="Retention saved.")

    return change


def held(sessions: sessionmaker[Session], call_id: str) -> bool:
    with sessions() as session:
        call = session.get(Call, call_id)
        return bool(call and call.legal_hold)


def _hold(sessions: sessionmaker[Session], principal: Principal, call_id: str, keep: bool) -> bool:
    with sessions.begin() as session:
        if call_log.one(session, principal, call_id) is None:
            return False
        retention_admin.hold_call(session, session.get(Call, call_id), keep, principal.actor)
        return True


async def hold_change(request: web.Request) -> web.Response:
    """POST /calls/{call_id}/hold, held=yes|no."""
    principal: Principal = request[PRINCIPAL]
    principal.require(Permission.CONFIG_WRITE)
    call_id = request.match_info["call_id"]
    form = await request.post()
    keep = form.get("held")
    if keep not in ("yes", "no"):
        raise Refused(400, "held: yes or no")
    if not await offload(request, _hold, request.app[SESSIONS], principal, call_id, keep == "yes"):
        raise Refused(404, "no such call")
    return see_other(f"/calls/{call_id}#hold")


def add_routes(app: web.Application, settings_page: Page) -> None:
    app.router.add_post("/settings/retention", _changer(settings_page))
    app.router.add_post("/calls/{call_id}/hold", hold_change)
