"""Pages that configure calls: tracking numbers, sources, routes, trunks and phones. A change
is saved and reaches Asterisk within five seconds (the controller rewrites its routes and
PJSIP files and has it reload them), without a restart and without touching calls in
progress."""

from __future__ import annotations

import dataclasses
from typing import Any

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from appliance import admin
from appliance.access import Denied, Permission, Principal, account_names
from appliance.asterisk.registrations import Registrations
from appliance.db.models import Endpoint, Route, Source, TrackingNumber, Trunk
from appliance.forms import whole
from appliance.numbers import InvalidNumber, to_e164
from appliance.secrets import SecretBox
from appliance.vocabulary import RecordingMode, RingStrategy, values
from appliance.web.auth import BOX, REGISTRATIONS, SESSIONS
from appliance.web.hardening import Refused
from appliance.web.keys import PRINCIPAL
from appliance.web.offload import offload
from appliance.web.render import render

Form = dict[str, str]


def _own(principal: Principal, account_id: int) -> None:
    if account_id not in principal.accounts:
        raise Denied("that account is not yours")


def _account_field(form: Form, principal: Principal) -> int:
    text = form.get("account", "")
    if not whole(text):
        raise admin.AdminError("choose an account")
    _own(principal, int(text))
    return int(text)


# numbers ----------------------------------------------------------------------------------
def _numbers(sessions: sessionmaker[Session], principal: Principal) -> dict[str, Any]:
    with sessions() as session:
        numbers = [
            {
                "e164": n.e164,
                "account_id": n.account_id,
                "label": n.label or "",
                "source": n.source.name if n.source else "",
                "route": n.route.name if n.route else "",
                "released": n.released_at is not None,
            }
            for n in session.scalars(
                select(TrackingNumber)
                .where(TrackingNumber.account_id.in_(sorted(principal.accounts)))
                .order_by(TrackingNumber.released_at.is_not(None), TrackingNumber.e164)
            )
        ]
        routes: dict[int, list[str]] = {}
        for account_id, name in session.execute(
            select(Route.account_id, Route.name)
            .where(Route.account_id.in_(sorted(principal.accounts)))
            .order_by(Route.name)
        ):
            routes.setdefault(account_id, []).append(name)
        return {"numbers": numbers, "routes": routes, "accounts": account_names(session, principal)}


async def numbers_page(request: web.Request, status: int = 200, **shown: Any) -> web.Response:
    principal: Principal = request[PRINCIPAL]
    principal.require(Permission.CONFIG_READ)
    values = await offload(request, _numbers, request.app[SESSIONS], principal)
    return render(request, "numbers.html", status, **values, **shown)


def _change_number(sessions: sessionmaker[Session], principal: Principal, form: Form) -> str:
    action, actor = form.get("action", ""), principal.actor
    with sessions.begin() as session:
        if action == "add":
            account_id = _account_field(form, principal)
            request = admin.NumberRequest(
                number=form.get("number", ""),
                label=form.get("label") or None,
                source=form.get("source") or None,
                route=form.get("route") or None,
            )
            number = admin.add_number(session, request, account_id, actor=actor)
            return f"Tracking number {number.e164} added; it takes calls within 5 seconds."
        e164 = to_e164(form.get("number", ""), "US")
        number_row = session.scalar(select(TrackingNumber).where(TrackingNumber.e164 == e164))
        if number_row is None or number_row.account_id not in principal.accounts:
            raise admin.AdminError(f"no tracking number {e164}")
        if action == "edit":
            admin.edit_number(
                session,
                e164,
                actor,
                route=form.get("route") or None,  # no route chosen: the route stays
                source=form.get("source", ""),
                label=form.get("label", ""),
            )
            return f"Tracking number {e164} changed."
        if action == "release":
            admin.release_number(session, e164, actor)
            return f"Tracking number {e164} released: it takes no calls; its calls stay."
    raise admin.AdminError("unknown action")


async def numbers_change(request: web.Request) -> web.Response:
    principal: Principal = request[PRINCIPAL]
    principal.require(Permission.CONFIG_WRITE)
    form = {k: str(v)[:500] for k, v in (await request.post()).items()}
    try:
        said = await offload(request, _change_number, request.app[SESSIONS], principal, form)
    except (admin.AdminError, InvalidNumber) as exc:
        return await numbers_page(request, 400, error=str(exc))
    return await numbers_page(request, notice=said)


# sources ----------------------------------------------------------------------------------
def _sources(sessions: sessionmaker[Session], principal: Principal) -> dict[str, Any]:
    with sessions() as session:
        used = dict(
            session.execute(
                select(TrackingNumber.source_id, func.count())
                .where(TrackingNumber.source_id.is_not(None))
                .group_by(TrackingNumber.source_id)
            ).all()
        )
        found = [
            {"id": s.id, "name": s.name, "medium": s.medium or "", "numbers": used.get(s.id, 0)}
            for s in admin.sources(session)
            if s.account_id in principal.accounts
        ]
        return {"sources": found, "accounts": account_names(session, principal)}


async def sources_page(request: web.Request, status: int = 200, **shown: Any) -> web.Response:
    principal: Principal = request[PRINCIPAL]
    principal.require(Permission.CONFIG_READ)
    values_ = await offload(request, _sources, request.app[SESSIONS], principal)
    return render(request, "sources.html", status, **values_, **shown)


def _change_source(sessions: sessionmaker[Session], principal: Principal, form: Form) -> str:
    action = form.get("action", "")
    with sessions.begin() as session:
        if action == "add":
            account_id = _account_field(form, principal)
            source = admin.add_source(
                session, form.get("name", ""), form.get("medium"), account_id, principal.actor
            )
            return f"Source {source.name} added."
        if action == "remove":
            text = form.get("id", "")
            owner = (
                session.scalar(select(Source.account_id).where(Source.id == int(text)))
                if whole(text)
                else None
            )
            if owner is None:
                raise admin.AdminError("no such source")
            _own(principal, owner)
            source = admin.remove_source(session, int(text), principal.actor)
            return f"Source {source.name} removed."
    raise admin.AdminError("unknown action")


async def sources_change(request: web.Request) -> web.Response:
    principal: Principal = request[PRINCIPAL]
    principal.require(Permission.CONFIG_WRITE)
    form = {k: str(v)[:500] for k, v in (await request.post()).items()}
    try:
        said = await offload(request, _change_source, request.app[SESSIONS], principal, form)
    except admin.AdminError as exc:
        return await sources_page(request, 400, error=str(exc))
    return await sources_page(request, notice=said)


# routes -----------------------------------------------------------------------------------
def _routes(
    sessions: sessionmaker[Session], principal: Principal, editing: tuple[str, int] | None = None
) -> dict[str, Any]:
    with sessions() as session:
        current = None
        if editing is not None:
            name, account_id = editing
            _own(principal, account_id)
            route = admin.route_by_name(session, name, account_id)
            current = dataclasses.asdict(admin.route_request(session, route))
            current["account_id"] = account_id
        routes = [
            {
                "name": r.name,
                "account_id": r.account_id,
                "targets": ", ".join(t.value for t in r.targets),
                "strategy": r.strategy,
                "hours": f"{r.hours} ({r.timezone})" if r.hours else "",
                "recording": r.recording,
                "default": r.is_default,
                "dynamic": r.dynamic,
            }
            for r in session.scalars(
                select(Route)
                .where(Route.account_id.in_(sorted(principal.accounts)))
                .order_by(Route.account_id, Route.name)
            )
        ]
        trunks = list(session.scalars(select(Trunk.name).order_by(Trunk.name)))
        return {
            "editing": current,
            "routes": routes,
            "trunks": trunks,
            "accounts": account_names(session, principal),
            "strategies": values(RingStrategy),
            "recordings": values(RecordingMode),
        }


async def routes_page(request: web.Request, status: int = 200, **shown: Any) -> web.Response:
    principal: Principal = request[PRINCIPAL]
    principal.require(Permission.CONFIG_READ)
    editing = None
    name, account = request.query.get("edit", ""), request.query.get("account", "")
    if name and whole(account) and status == 200:
        editing = (name[:120], int(account))
    try:
        values_ = await offload(request, _routes, request.app[SESSIONS], principal, editing)
    except admin.AdminError as exc:
        raise Refused(404, str(exc)) from None
    return render(request, "routes.html", status, **values_, **shown)


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.replace("\n", ",").split(",") if part.strip()]


def _change_route(sessions: sessionmaker[Session], principal: Principal, form: Form) -> str:
    action, actor = form.get("action", ""), principal.actor
    with sessions.begin() as session:
        account_id = _account_field(form, principal)
        if action in ("add", "edit"):
            timeout = form.get("ring_timeout", "30")
            if not whole(timeout):
                raise admin.AdminError("ring timeout: a number of seconds")
            request = admin.RouteRequest(
                name=form.get("name", ""),
                forward_to=_split(form.get("forward", "")),
                trunk=form.get("trunk") or None,
                endpoints=_split(form.get("endpoints", "")),
                ring_timeout=int(timeout),
                strategy=form.get("strategy", RingStrategy.SIMULTANEOUS),
                hours=form.get("hours") or None,
                timezone=form.get("timezone") or "UTC",
                after_hours=form.get("after_hours") or None,
                default=form.get("default") == "yes",
                recording=form.get("recording", RecordingMode.NEVER),
                consent_prompt=form.get("consent") or None,
                consent_opt_out=form.get("opt_out") == "yes",
                announcement=form.get("announce") or None,
                whisper=form.get("whisper") or None,
            )
            if action == "edit":
                changes = dataclasses.asdict(request)
                changes.pop("dynamic")  # set on the box only: it asks the controller
                route = admin.edit_route(
                    session, form.get("original", ""), changes, account_id, actor=actor
                )
                return f"Route {route.name} changed; calls take it within 5 seconds."
            route = admin.add_route(session, request, account_id, actor=actor)
            return f"Route {route.name} added; calls take it within 5 seconds."
        if action == "remove":
            admin.remove_route(session, form.get("name", ""), account_id, actor)
            return f"Route {form.get('name')} removed."
    raise admin.AdminError("unknown action")


async def routes_change(request: web.Request) -> web.Response:
    principal: Principal = request[PRINCIPAL]
    principal.require(Permission.CONFIG_WRITE)
    form = {k: str(v)[:500] for k, v in (await request.post()).items()}
    try:
        said = await offload(request, _change_route, request.app[SESSIONS], principal, form)
    except (admin.AdminError, InvalidNumber) as exc:
        return await routes_page(request, 400, error=str(exc))
    return await routes_page(request, notice=said)


# trunks and phones -------------------------------------------------------------------------
def _sip(
    sessions: sessionmaker[Session], principal: Principal, registrations: Registrations
) -> dict[str, Any]:
    with sessions() as session:
        trunks = [
            {
                "name": t.name,
                "kind": t.kind,
                "host": t.host,
                "port": t.port,
                "match": t.match,
                "state": _registration(registrations, t),
            }
            for t in admin.trunks(session)
            if t.account_id in principal.accounts
        ]
        phones = [
            {"name": e.name, "label": e.label or "", "account_id": e.account_id}
            for e in admin.endpoints(session)
            if e.account_id in principal.accounts
        ]
        return {"trunks": trunks, "phones": phones, "accounts": account_names(session, principal)}


def _registration(registrations: Registrations, trunk: Trunk) -> str:
    if trunk.kind != "registration":
        return "takes calls from its addresses"
    state = registrations.state_of(trunk.host, trunk.port)
    if state is None:
        return "registration not reported yet"
    return f"{state.status} {state.cause}".strip()


ATTACHED: web.AppKey[bool] = web.AppKey("attached", bool)  # asterisk.mode = attached
NOT_OURS = "Asterisk is the site's own (attached mode): add trunks and phones on that PBX."


async def sip_page(request: web.Request, status: int = 200, **shown: Any) -> web.Response:
    principal: Principal = request[PRINCIPAL]
    principal.require(Permission.CONFIG_READ)
    values_ = await offload(
        request, _sip, request.app[SESSIONS], principal, request.app[REGISTRATIONS]
    )
    return render(request, "sip.html", status, **values_, **shown)


def _change_sip(
    sessions: sessionmaker[Session], box: SecretBox, principal: Principal, form: Form
) -> dict[str, str]:
    """One form of the trunks and phones page; what to show the admin (a phone's password
    once)."""
    action, actor, name = form.get("action", ""), principal.actor, form.get("name", "")
    with sessions.begin() as session:
        if action == "add_phone":
            account_id = _account_field(form, principal)
            endpoint, password = admin.add_endpoint(
                session, box, name, form.get("label") or None, account_id, actor
            )
            return {"notice": f"Phone {endpoint.name} added.", "phone": name, "secret": password}
        if action == "add_trunk":
            account_id = _account_field(form, principal)
            port = form.get("port") or "5060"
            if not whole(port):
                raise admin.AdminError("port: a number")
            request = admin.TrunkRequest(
                name=name,
                kind=form.get("kind", "ip"),
                host=form.get("host", ""),
                port=int(port),
                username=form.get("username") or None,
                password=form.get("password") or None,
                match=_split(form.get("match", "")),
            )
            trunk = admin.add_trunk(session, box, request, account_id, actor)
            return {"notice": f"Trunk {trunk.name} added."}
        owner = _sip_owner(session, action, name)
        _own(principal, owner)
        if action == "phone_password":
            password = admin.new_endpoint_password(session, box, name, actor)
            return {
                "notice": f"Phone {name} has a new password.",
                "phone": name,
                "secret": password,
            }
        if action == "remove_phone":
            admin.remove_endpoint(session, name, actor)
            return {"notice": f"Phone {name} removed."}
        if action == "remove_trunk":
            admin.remove_trunk(session, name, actor)
            return {"notice": f"Trunk {name} removed."}
    raise admin.AdminError("unknown action")


def _sip_owner(session: Session, action: str, name: str) -> int:
    table = Trunk if action == "remove_trunk" else Endpoint
    owner = session.scalar(select(table.account_id).where(table.name == name[:60]))
    if owner is None:
        raise admin.AdminError(f"no {'trunk' if table is Trunk else 'phone'} {name[:60]!r}")
    return owner


async def sip_change(request: web.Request) -> web.Response:
    principal: Principal = request[PRINCIPAL]
    principal.require(Permission.CONFIG_WRITE)
    form = {k: str(v)[:500] for k, v in (await request.post()).items()}
    if request.app[ATTACHED] and form.get("action") in ("add_phone", "add_trunk"):
        return await sip_page(request, 400, error=NOT_OURS)
    try:
        shown = await offload(
            request, _change_sip, request.app[SESSIONS], request.app[BOX], principal, form
        )
    except admin.AdminError as exc:
        return await sip_page(request, 400, error=str(exc))
    return await sip_page(request, 200, **shown)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/sip", sip_page)
    app.router.add_post("/sip", sip_change)
    app.router.add_get("/numbers", numbers_page)
    app.router.add_post("/numbers", numbers_change)
    app.router.add_get("/sources", sources_page)
    app.router.add_post("/sources", sources_change)
    app.router.add_get("/routes", routes_page)
    app.router.add_post("/routes", routes_change)
