"""Pages about websites and what they bring: the sites that show tracking numbers (settings,
pool and how full it is, swap rules, the snippet to paste), calls and leads per source and
campaign, and the leads list with its export."""

from __future__ import annotations

import datetime as dt
import urllib.parse
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from appliance import admin, audit
from appliance.access import Denied, Permission, Principal, account_names
from appliance.attribution import report, sites
from appliance.calls import dashboard
from appliance.db.models import DniSite, TrackingNumber
from appliance.forms import whole
from appliance.numbers import InvalidNumber
from appliance.web.auth import SESSIONS
from appliance.web.hardening import Refused
from appliance.web.keys import PRINCIPAL
from appliance.web.offload import EXPORTS, offload
from appliance.web.render import account_zone, csv_response, csv_text, render, zone_named

TRACKING_URL: web.AppKey[str] = web.AppKey("tracking_url", str)
Form = dict[str, str]
LEAD_COLUMNS = (
    "id",
    "created_at",
    "site",
    "form",
    "fields",
    "page",
    "source",
    "medium",
    "campaign",
)


# sites ------------------------------------------------------------------------------------
def _sites(sessions: sessionmaker[Session], principal: Principal) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC)
    with sessions() as session:
        shown = []
        for site in sites.sites(session, set(principal.accounts)):
            pool = sites.pool(session, site)
            shown.append(
                {
                    "id": site.id,
                    "name": site.name,
                    "account_id": site.account_id,
                    "key": site.key,
                    "origins": site.origins,
                    "replace": site.replace_numbers,
                    "consent": site.consent_required,
                    "hold": site.hold_minutes,
                    "forms": site.forms,
                    "pool": [n.e164 for n in pool],
                    "use": report.pool_use(session, site, now),
                    "rules": [(r.id, r.field, r.value, r.number.e164) for r in site.rules],
                }
            )
        free = session.scalars(
            select(TrackingNumber)
            .where(
                TrackingNumber.account_id.in_(sorted(principal.accounts)),
                TrackingNumber.released_at.is_(None),
            )
            .order_by(TrackingNumber.e164)
        )
        numbers: dict[int, list[str]] = {}
        for number in free:
            numbers.setdefault(number.account_id, []).append(number.e164)
        return {
            "sites": shown,
            "numbers": numbers,
            "accounts": account_names(session, principal),
            "fields": sites.RULE_FIELDS,
        }


async def sites_page(request: web.Request, status: int = 200, **shown: Any) -> web.Response:
    principal: Principal = request[PRINCIPAL]
    principal.require(Permission.CONFIG_READ)
    values = await offload(request, _sites, request.app[SESSIONS], principal)
    return render(
        request, "sites.html", status, tracking_url=request.app[TRACKING_URL], **values, **shown
    )


def _lines(text: str) -> tuple[str, ...]:
    return tuple(part for part in text.replace(",", " ").split() if part)


def _request(form: Form) -> sites.SiteRequest:
    hold = form.get("hold", "30")
    if not whole(hold):
        raise admin.AdminError("hold: a number of minutes")
    return sites.SiteRequest(
        name=form.get("name", ""),
        origins=_lines(form.get("origins", "")),
        replace=tuple(n for n in form.get("replace", "").split(",") if n.strip()),
        consent_required=form.get("consent") == "yes",
        hold_minutes=int(hold),
        forms=_lines(form.get("forms", "")),
    )


def _site(session: Session, principal: Principal, form: Form) -> DniSite:
    text = form.get("site", "")
    site = session.get(DniSite, int(text)) if whole(text) else None
    if site is None or site.account_id not in principal.accounts:
        raise admin.AdminError("no such site")
    return site


def _change_site(
    sessions: sessionmaker[Session], principal: Principal, form: Form, pool: list[str]
) -> str:
    action, actor = form.get("action", ""), principal.actor
    with sessions.begin() as session:
        if action == "add":
            account = form.get("account", "")
            if not whole(account) or int(account) not in principal.accounts:
                raise Denied("that account is not yours")
            site = sites.add_site(session, _request(form), int(account), actor)
            return f"Site {site.name} added: paste its snippet into its pages."
        site = _site(session, principal, form)
        if action == "edit":
            sites.edit_site(session, site, _request(form), actor)
            return f"Site {site.name} changed; pages get the change within 5 seconds."
        if action == "pool":
            sites.set_pool(session, site, pool, actor)
            return f"Site {site.name} has {len(pool)} pool numbers."
        if action == "rule":
            sites.add_rule(
                session, site, form.get("field", ""), form.get("value", ""),
                form.get("number", ""), actor,
            )  # fmt: skip
            return f"Rule added to {site.name}."
        if action == "unrule":
            text = form.get("rule", "")
            sites.remove_rule(session, site, int(text) if whole(text) else -1, actor)
            return f"Rule removed from {site.name}."
        if action == "remove":
            name = site.name
            sites.remove_site(session, site, actor)
            return f"Site {name} removed; its numbers are ordinary numbers again."
    raise admin.AdminError("unknown action")


async def sites_change(request: web.Request) -> web.Response:
    principal: Principal = request[PRINCIPAL]
    principal.require(Permission.CONFIG_WRITE)
    posted = await request.post()
    form = {k: str(v)[:2000] for k, v in posted.items()}
    pool = [str(v)[:40] for v in posted.getall("pool", [])][:500]
    try:
        said = await offload(request, _change_site, request.app[SESSIONS], principal, form, pool)
    except (admin.AdminError, InvalidNumber) as exc:
        return await sites_page(request, 400, error=str(exc))
    return await sites_page(request, notice=said)


# sources and campaigns -------------------------------------------------------------------------
def _by_source(
    sessions: sessionmaker[Session], principal: Principal, start: dt.datetime, stop: dt.datetime
) -> list[report.SourceRow]:
    with sessions() as session:
        return report.by_source(session, principal, start, stop)


async def sources_report(request: web.Request) -> web.Response:
    """Calls, answered calls, first-time callers and leads per source, medium and campaign,
    over days of the user's account's time zone."""
    principal: Principal = request[PRINCIPAL]
    principal.require(Permission.CALLS_READ)
    zone = zone_named(await offload(request, account_zone, request.app[SESSIONS], principal))
    try:
        today = dt.datetime.now(zone).date()
        since, until = dashboard.date_range(
            request.query.get("from"), request.query.get("to"), today
        )
    except dashboard.BadRange as exc:
        raise Refused(400, str(exc)) from None
    start = dt.datetime.combine(since, dt.time(), zone).astimezone(dt.UTC)
    stop = dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), zone).astimezone(dt.UTC)
    rows = await offload(request, _by_source, request.app[SESSIONS], principal, start, stop)
    return render(request, "report.html", rows=rows, since=since, until=until, zone=zone.key)


# leads ------------------------------------------------------------------------------------
def _leads(sessions: sessionmaker[Session], principal: Principal) -> list[report.LeadRow]:
    with sessions() as session:
        return list(report.leads(session, principal))


async def leads_page(request: web.Request) -> web.Response:
    principal: Principal = request[PRINCIPAL]
    principal.require(Permission.CALLS_READ)
    rows = await offload(request, _leads, request.app[SESSIONS], principal)
    zone = await offload(request, account_zone, request.app[SESSIONS], principal)
    return render(request, "leads.html", rows=rows, zone=zone_named(zone))


def _leads_csv(sessions: sessionmaker[Session], principal: Principal, client: str | None) -> str:
    with sessions.begin() as session:
        rows = (
            row.as_json() | {"fields": urllib.parse.urlencode(row.fields)}
            for row in report.leads(session, principal, limit=100_000)
        )
        text, count = csv_text(LEAD_COLUMNS, rows)
        audit.record(
            session,
            principal.actor,
            "leads.export",
            client=client,
            detail=f"{count} leads",
            account_id=principal.account_id,
        )
    return text


async def leads_csv(request: web.Request) -> web.Response:
    principal: Principal = request[PRINCIPAL]
    principal.require(Permission.CALLS_READ)
    async with request.app[EXPORTS]:
        text = await offload(request, _leads_csv, request.app[SESSIONS], principal, request.remote)
    return csv_response(text, "leads.csv")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/sites", sites_page)
    app.router.add_post("/sites", sites_change)
    app.router.add_get("/reports/sources", sources_report)
    app.router.add_get("/leads", leads_page)
    app.router.add_get("/leads.csv", leads_csv)
