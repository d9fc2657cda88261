"""The conversions page: rules, destinations (with a preview of exactly what each would be
sent), the delivery log with retries, and the offline-conversion files for Google Ads and
Microsoft Advertising."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from appliance import admin, audit
from appliance.access import Denied, Permission, Principal, account_names
from appliance.config import DestinationsConfig
from appliance.conversions import admin as conversions
from appliance.conversions import platforms
from appliance.db.models import Conversion, ConversionRule, Delivery, Destination
from appliance.forms import whole
from appliance.secrets import SecretBox
from appliance.web.auth import BOX, SESSIONS
from appliance.web.hardening import Refused
from appliance.web.keys import PRINCIPAL
from appliance.web.offload import EXPORTS, offload
from appliance.web.render import csv_response, render

DESTINATIONS: web.AppKey[DestinationsConfig] = web.AppKey("destinations", DestinationsConfig)
Form = dict[str, str]
SEALED = "<sealed>"  # what the preview shows for a secret
SAMPLE = {
    "id": 0,
    "name": "(your conversion)",
    "occurred_at": "2026-01-01T12:00:00+00:00",
    "value": 50.0,
    "currency": "USD",
    "call_id": "0" * 32,
    "lead_id": None,
    "source": "google",
    "medium": "cpc",
    "campaign": "spring",
    "click_id_type": "gclid",
    "click_id": "EXAMPLE",
    "caller_number": "+12025550123",
    "email": None,
}


def _latest(session: Session, account_id: int) -> dict[str, Any] | None:
    """The event of the account's latest conversion, as the outbox has it."""
    found = session.scalar(
        select(Delivery.payload)
        .join(Destination, Destination.id == Delivery.destination_id)
        .where(Destination.account_id == account_id, Delivery.event == "conversion.created")
        .order_by(Delivery.id.desc())
        .limit(1)
    )
    return json.loads(found) if found else None


def preview(config: DestinationsConfig, destination: Destination, event: dict[str, Any]) -> str:
    """The request this destination would get for the event, secrets shown as <sealed>."""
    settings = json.loads(destination.settings or "{}")
    try:
        if destination.kind == "webhook":
            request = platforms.webhook(str(destination.url), SEALED, event, 0, 0)
        elif destination.kind == "meta":
            request = platforms.meta(config.meta_api, settings, SEALED, event)
        elif destination.kind == "google_ads":
            request = platforms.google_ads(config.google_ads_api, settings, SEALED, SEALED, event)
        else:
            request = platforms.microsoft(config.microsoft_api, settings, SEALED, SEALED, event)
    except platforms.NotForThisDestination as exc:
        return f"(nothing is sent: {exc})"
    headers = "\n".join(
        f"{k}: {SEALED if k == 'X-Appliance-Signature' else v}" for k, v in request.headers.items()
    )
    url = platforms.masked_url(request.url) if destination.kind == "webhook" else request.url
    return f"POST {url}\n{headers}\n\n{request.body.decode()}"


def _page(
    sessions: sessionmaker[Session], principal: Principal, config: DestinationsConfig
) -> dict[str, Any]:
    mine = sorted(principal.accounts)
    with sessions() as session:
        rules = [
            {
                "id": r.id,
                "name": r.name,
                "account_id": r.account_id,
                "applies_to": r.applies_to,
                "conditions": conversions.describe(r),
                "value": f"{platforms.amount(r.value)} {r.currency}" if r.value is not None else "",
            }
            for r in session.scalars(
                select(ConversionRule)
                .where(ConversionRule.account_id.in_(mine))
                .order_by(ConversionRule.name)
            )
        ]
        destinations = []
        for d in session.scalars(
            select(Destination).where(Destination.account_id.in_(mine)).order_by(Destination.name)
        ):
            event = _latest(session, d.account_id) or platforms.conversion_event(SAMPLE)
            settings = json.loads(d.settings or "{}")
            destinations.append(
                {
                    "id": d.id,
                    "name": d.name,
                    "kind": d.kind,
                    "url": platforms.masked_url(d.url),
                    "events": d.events,
                    "settings": {k: v for k, v in settings.items() if k != "actions"},
                    "actions": conversions.actions(settings),
                    "preview": preview(config, d, event),
                }
            )
        log = [
            {
                "id": delivery.id,
                "destination": name,
                "event": delivery.event,
                "state": delivery.state,
                "attempts": delivery.attempts,
                "status": delivery.last_status,
                "error": delivery.last_error or "",
                "created_at": delivery.created_at,
            }
            for delivery, name in session.execute(
                select(Delivery, Destination.name)
                .join(Destination, Destination.id == Delivery.destination_id)
                .where(Destination.account_id.in_(mine))
                .order_by(Delivery.id.desc())
                .limit(50)
            )
        ]
        return {
            "rules": rules,
            "destinations": destinations,
            "deliveries": log,
            "accounts": account_names(session, principal),
            "kinds": conversions.KINDS,
            "events": conversions.EVENTS,
        }


async def page(request: web.Request, status: int = 200, **shown: Any) -> web.Response:
    principal: Principal = request[PRINCIPAL]
    principal.require(Permission.CONFIG_READ)
    config = request.app[DESTINATIONS]
    values = await offload(request, _page, request.app[SESSIONS], principal, config)
    return render(request, "conversions.html", status, **values, **shown)


def _account(form: Form, principal: Principal) -> int:
    text = form.get("account", "")
    if not whole(text) or int(text) not in principal.accounts:
        raise Denied("that account is not yours")
    return int(text)


def _number(text: str, what: str) -> float | None:
    if not text.strip():
        return None
    try:
        return float(text)
    except ValueError:
        raise admin.AdminError(f"{what}: a number") from None


def _change(
    sessions: sessionmaker[Session], box: SecretBox, principal: Principal, form: Form,
    events: list[str], config: DestinationsConfig,
) -> str:  # fmt: skip
    action, actor = form.get("action", ""), principal.actor
    with sessions.begin() as session:
        if action == "rule":
            talk = form.get("min_talk", "")
            if talk and not whole(talk):
                raise admin.AdminError("talk time: whole seconds")
            request = conversions.RuleRequest(
                name=form.get("name", ""),
                applies_to=form.get("applies_to", "call"),
                answered=form.get("answered") == "yes",
                min_talk_seconds=int(talk) if talk else None,
                first_time=form.get("first_time") == "yes",
                source_contains=form.get("source") or None,
                form=form.get("form") or None,
                value=_number(form.get("value", ""), "value"),
                currency=form.get("currency", "USD").strip().upper() or "USD",
            )
            rule = conversions.add_rule(session, request, _account(form, principal), actor)
            return f"Rule {rule.name} added."
        if action == "destination":
            kind = form.get("kind", "")
            needed_settings, needed_secrets = conversions.NEEDS.get(kind, ((), ()))
            optional = ("login_customer_id", "test_event_code")
            destination, shown = conversions.add_destination(
                session,
                box,
                conversions.DestinationRequest(
                    name=form.get("name", ""),
                    kind=kind,
                    url=form.get("url") or None,
                    events=tuple(events) or ("conversion.created",),
                    settings={k: form.get(k, "") for k in (*needed_settings, *optional)},
                    secrets={k: form.get(k, "") for k in needed_secrets},
                ),
                _account(form, principal),
                actor,
                config.allowed,
            )
            if shown:
                return f"Webhook {destination.name} added. Its signing secret, shown once: {shown}"
            return f"Destination {destination.name} added."
        text = form.get("id", "")
        if action in ("unrule",):
            gone = session.get(ConversionRule, int(text)) if whole(text) else None
            if gone is None or gone.account_id not in principal.accounts:
                raise admin.AdminError("no such rule")
            conversions.remove_rule(session, gone, actor)
            return f"Rule {gone.name} removed; its conversions stay."
        if action in ("remove", "map"):
            target = session.get(Destination, int(text)) if whole(text) else None
            if target is None or target.account_id not in principal.accounts:
                raise admin.AdminError("no such destination")
            if action == "map":
                conversions.set_google_action(
                    session, target, form.get("conversion", ""), form.get("action_id", ""), actor
                )
                return f"{target.name}: conversion action set."
            conversions.remove_destination(session, target, actor)
            return f"Destination {target.name} removed, with its deliveries."
        if action == "retry":
            found = session.execute(
                select(Delivery, Destination.account_id)
                .join(Destination, Destination.id == Delivery.destination_id)
                .where(Delivery.id == (int(text) if whole(text) else -1))
            ).first()
            if found is None or found[1] not in principal.accounts:
                raise admin.AdminError("no such delivery")
            conversions.retry(session, found[0], actor)
            return f"Delivery {text} goes out again now."
    raise admin.AdminError("unknown action")


async def change(request: web.Request) -> web.Response:
    principal: Principal = request[PRINCIPAL]
    principal.require(Permission.CONFIG_WRITE)
    posted = await request.post()
    form = {k: str(v)[:2000] for k, v in posted.items()}
    events = [str(v)[:40] for v in posted.getall("events", [])][:10]
    try:
        said = await offload(
            request, _change, request.app[SESSIONS], request.app[BOX], principal, form, events,
            request.app[DESTINATIONS],
        )  # fmt: skip
    except admin.AdminError as exc:
        return await page(request, 400, error=str(exc))
    return await page(request, notice=said)


def _file(
    sessions: sessionmaker[Session],
    principal: Principal,
    platform: str,
    account_id: int,
    client: str | None,
) -> str:
    with sessions.begin() as session:
        rows = [
            {
                "name": c.name,
                "occurred_at": c.occurred_at.isoformat(),
                "value": c.value,
                "currency": c.currency,
                "click_id_type": c.click_id_type,
                "click_id": c.click_id,
            }
            for c in session.scalars(
                select(Conversion)
                .where(Conversion.account_id == account_id)
                .order_by(Conversion.occurred_at)
                .limit(100_000)
            )
        ]
        text = platforms.offline_csv(platform, rows)
        audit.record(
            session, principal.actor, "conversions.export", platform, client=client,
            account_id=account_id,
        )  # fmt: skip
    return text


async def offline_file(request: web.Request) -> web.Response:
    principal: Principal = request[PRINCIPAL]
    principal.require(Permission.CONFIG_READ)
    platform = request.match_info["platform"]
    if platform not in ("google_ads", "microsoft"):
        raise Refused(404, "no such file")
    # one account's conversions: the file goes into that account's ad account only
    text = request.query.get("account", str(principal.account_id))
    if not whole(text) or int(text) not in principal.accounts:
        raise Refused(404, "no such account")
    async with request.app[EXPORTS]:
        body = await offload(
            request, _file, request.app[SESSIONS], principal, platform, int(text), request.remote
        )
    return csv_response(body, f"{platform}-conversions-{text}.csv")


def add_routes(app: web.Application, config: DestinationsConfig) -> None:
    app[DESTINATIONS] = config
    app.router.add_get("/conversions", page)
    app.router.add_post("/conversions", change)
    app.router.add_get("/conversions/{platform}.csv", offline_file)
