"""Conversions and the outbox in the database: a finished call or a new lead is checked
against its account's rules; each conversion (and the call or lead itself, for webhooks that
ask for it) becomes one delivery per destination that can use it. The call's other events
(started, answered, recording and transcript ready) are queued where their fact is written
(conversions/call_events.py). Blocking: called off the
event loop."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from appliance.conversions import call_events, platforms
from appliance.conversions.deliveries import enqueue
from appliance.conversions.rules import Facts, Rule
from appliance.db.models import (
    Call,
    Conversion,
    ConversionRule,
    Lead,
    Visit,
)
from appliance.plugins import checks
from appliance.plugins.calldata import lead_data
from appliance.plugins.manager import PluginManager

EVENTS = (
    "call.started",
    "call.answered",
    "call.ended",
    "recording.ready",
    "transcript.ready",
    "lead.created",
    "conversion.created",
)  # what a webhook may subscribe to (docs/integrator-guide.md "Webhooks" says when and what)
CALL_JOB = "conversions.call"  # a finished call's conversions and events (key: the call id)
LEAD_JOB = "conversions.lead"  # a new lead's (key: the lead id)


def rule_of(row: ConversionRule) -> Rule:
    return Rule(
        id=row.id,
        name=row.name,
        applies_to=row.applies_to,
        answered=row.answered,
        min_talk_seconds=row.min_talk_seconds,
        first_time=row.first_time,
        source_contains=row.source_contains,
        form=row.form,
        value=row.value,
        currency=row.currency,
    )


def _rules(session: Session, account_id: int, kind: str) -> list[Rule]:
    rows = session.scalars(
        select(ConversionRule)
        .where(ConversionRule.account_id == account_id, ConversionRule.applies_to == kind)
        .order_by(ConversionRule.id)
    )
    return [rule_of(r) for r in rows]


def lead_email(fields: Mapping[str, str]) -> str | None:
    for name, value in fields.items():
        if "mail" in name.lower() and "@" in value:
            return value.strip()
    return None


def on_call(session: Session, call_id: str, plugins: PluginManager | None = None) -> int:
    """A finished call: its conversions and deliveries; how many deliveries were queued."""
    call = session.get(Call, call_id)
    if call is None or call.account_id is None or call.disposition is None:
        return 0
    # an ambiguous attribution is no ground to credit an ad click; a restricted caller's
    # call is credited to no click at all (see `deliveries.enqueue`)
    sure = call.attribution in ("held", "after") and not call.restricted
    visit = session.get(Visit, call.visit_id) if call.visit_id and sure else None
    facts = Facts(
        "call",
        answered=call.disposition == "answered",
        talk_seconds=call.talk_seconds or 0.0,
        first_time=bool(call.first_time),
        source=call.source_name,
    )
    base = {
        "call_id": call.id,
        "lead_id": None,
        "occurred_at": call.started_at.isoformat(),
        "source": call.source_name,
        "medium": call.medium,
        "campaign": call.campaign_name,
        "click_id_type": visit.click_id_type if visit else None,
        "click_id": visit.click_id if visit else None,
        "clicked_at": visit.started_at.isoformat() if visit else None,
        "caller_number": None if call.restricted else call.caller_number,
        "email": None,
    }
    ads = not call.restricted
    queued = call_events.ended(session, call)
    for rule in _rules(session, call.account_id, "call"):
        if rule.matches(facts):
            queued += _convert(
                session, call.account_id, rule, base, call_id=call.id, ads=ads, plugins=plugins
            )
    return queued


def on_lead(session: Session, lead_id: int, plugins: PluginManager | None = None) -> int:
    lead = session.get(Lead, lead_id)
    if lead is None:
        return 0
    if plugins is not None and plugins.implemented("lead_captured"):
        plugins.call("lead_captured", lead=lead_data(lead))
    visit = session.get(Visit, lead.visit_id) if lead.visit_id else None
    fields = json.loads(lead.fields)
    facts = Facts("lead", source=lead.source_name, form=lead.form)
    base = {
        "call_id": None,
        "lead_id": lead.id,
        "occurred_at": lead.created_at.isoformat(),
        "source": lead.source_name,
        "medium": lead.medium,
        "campaign": lead.campaign_name,
        "click_id_type": visit.click_id_type if visit else None,
        "click_id": visit.click_id if visit else None,
        "clicked_at": visit.started_at.isoformat() if visit else None,
        "caller_number": None,
        "email": lead_email(fields),
    }
    event = {
        "event": "lead.created",
        "id": f"lead-{lead.id}",
        "occurred_at": base["occurred_at"],
        "data": {"lead_id": lead.id, "form": lead.form, "fields": fields, "page": lead.page}
        | {k: base[k] for k in ("source", "medium", "campaign", "click_id_type", "click_id")},
    }
    queued = enqueue(session, lead.account_id, "lead.created", event)
    for rule in _rules(session, lead.account_id, "lead"):
        if rule.matches(facts) and not _converted_visit(session, rule, lead.visit_id):
            queued += _convert(
                session, lead.account_id, rule, base, lead_id=lead.id, plugins=plugins
            )
    return queued


def _converted_visit(session: Session, rule: Rule, visit_id: str | None) -> bool:
    """A visit's leads convert once per rule: more forms from it are not more conversions."""
    if visit_id is None:
        return False
    earlier = (
        select(Conversion.id)
        .join(Lead, Lead.id == Conversion.lead_id)
        .where(Conversion.rule_id == rule.id, Lead.visit_id == visit_id)
    )
    return session.scalar(earlier.limit(1)) is not None


def _convert(
    session: Session,
    account_id: int,
    rule: Rule,
    base: dict[str, Any],
    call_id: str | None = None,
    lead_id: int | None = None,
    ads: bool = True,
    plugins: PluginManager | None = None,
) -> int:
    """Once per rule and call or lead: a replayed event converts nothing twice. Plugins see
    the conversion before it is queued: a veto stops its deliveries (the conversion stays,
    as a record), extra fields go under data.plugins.<name>."""
    done = select(Conversion.id).where(
        Conversion.rule_id == rule.id,
        Conversion.call_id == call_id if call_id else Conversion.lead_id == lead_id,
    )
    if session.scalar(done) is not None:
        return 0
    conversion = Conversion(
        account_id=account_id,
        rule_id=rule.id,
        name=rule.name,
        call_id=call_id,
        lead_id=lead_id,
        occurred_at=dt.datetime.fromisoformat(base["occurred_at"]),
        value=rule.value,
        currency=rule.currency,
        source_name=base["source"],
        medium=base["medium"],
        campaign_name=base["campaign"],
        click_id_type=base["click_id_type"],
        click_id=base["click_id"],
    )
    session.add(conversion)
    session.flush()
    data = base | {
        "id": conversion.id,
        "name": rule.name,
        "value": rule.value,
        "currency": rule.currency,
    }
    extra = before_send(plugins, data)
    if extra is None:
        return 0
    event = platforms.conversion_event(data)
    if extra:
        event["data"]["plugins"] = extra
    return enqueue(session, account_id, "conversion.created", event, ads)


def before_send(plugins: PluginManager | None, data: dict[str, Any]) -> dict[str, Any] | None:
    """conversion_before_send: None when a plugin vetoed, else the plugins' extra fields
    (checked) by plugin name."""
    if plugins is None or not plugins.implemented("conversion_before_send"):
        return {}
    extra: dict[str, Any] = {}
    for name, value in plugins.call("conversion_before_send", conversion=data):
        try:
            answer = checks.conversion_answer(value)
        except checks.PluginValueError as exc:
            plugins.invalid(name, "conversion_before_send", str(exc))
            continue
        if answer.veto:
            return None
        if answer.extra:
            extra[name] = answer.extra
    return extra


def convert_lead(session: Session, key: str) -> int:
    return on_lead(session, int(key))


HANDLERS = {CALL_JOB: on_call, LEAD_JOB: convert_lead}  # the jobs, for the job runner


def handlers(plugins: PluginManager) -> dict[str, Callable[[Session, str], object]]:
    """The same jobs, with the plugins' lead_captured and conversion_before_send."""
    return {
        CALL_JOB: lambda session, key: on_call(session, key, plugins),
        LEAD_JOB: lambda session, key: on_lead(session, int(key), plugins),
    }
