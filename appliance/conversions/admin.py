"""Conversion rules and destinations, changed the same way from the admin pages and the
command line, every change audited. Secrets (a webhook's signing secret, ad platform
tokens) are stored sealed and never shown again after they are set."""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from appliance import audit
from appliance.admin import AdminError, get_account
from appliance.conversions import reach
from appliance.conversions.platforms import masked_url
from appliance.conversions.store import EVENTS
from appliance.db.models import ConversionRule, Delivery, Destination
from appliance.secrets import SecretBox

CURRENCY = re.compile(r"[A-Z]{3}")
DIGITS = re.compile(r"[0-9]{1,20}")
KINDS = ("webhook", "google_ads", "meta", "microsoft")
# what each kind needs: settings (shown) and secrets (sealed)
NEEDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "webhook": ((), ()),
    "meta": (("pixel_id",), ("token",)),
    "google_ads": (
        ("customer_id", "client_id"),
        ("developer_token", "client_secret", "refresh_token"),
    ),
    "microsoft": (
        ("customer_id", "account_id", "client_id"),
        ("developer_token", "client_secret", "refresh_token"),
    ),
}


@dataclass(frozen=True)
class RuleRequest:
    name: str
    applies_to: str = "call"
    answered: bool = False
    min_talk_seconds: int | None = None
    first_time: bool = False
    source_contains: str | None = None
    form: str | None = None
    value: float | None = None
    currency: str = "USD"


def add_rule(
    session: Session, request: RuleRequest, account_id: int | None, actor: str
) -> ConversionRule:
    account = get_account(session, account_id)
    name = " ".join(request.name.split())
    if not name or len(name) > 100 or name.startswith(("=", "+", "-", "@")):
        raise AdminError(
            "a conversion name is 1 to 100 characters, as the ad platform has it (not starting "
            "with = + - @)"
        )
    if request.applies_to not in ("call", "lead"):
        raise AdminError("a rule applies to calls or to leads")
    if request.min_talk_seconds is not None and not 0 <= request.min_talk_seconds <= 86400:
        raise AdminError("talk time: 0 to 86400 seconds")
    if request.value is not None and not 0 <= request.value <= 1e9:
        raise AdminError("value: 0 to 1,000,000,000")
    if not CURRENCY.fullmatch(request.currency):
        raise AdminError("currency: three capital letters (ISO 4217), e.g. USD")
    if session.scalar(
        select(ConversionRule.id).where(
            ConversionRule.account_id == account.id, ConversionRule.name == name
        )
    ):
        raise AdminError(f"conversion rule {name!r} already exists")
    rule = ConversionRule(
        account_id=account.id,
        name=name,
        applies_to=request.applies_to,
        answered=request.answered,
        min_talk_seconds=request.min_talk_seconds,
        first_time=request.first_time,
        source_contains=" ".join((request.source_contains or "").split())[:120] or None,
        form=(request.form or "").strip()[:60] or None,
        value=request.value,
        currency=request.currency,
    )
    session.add(rule)
    session.flush()
    audit.record(session, actor, "conversion.rule.add", name[:64], account_id=account.id)
    return rule


def describe(rule: ConversionRule) -> str:
    """A rule's conditions in words."""
    said = []
    if rule.answered:
        said.append("answered")
    if rule.min_talk_seconds is not None:
        said.append(f"talk >= {rule.min_talk_seconds} s")
    if rule.first_time:
        said.append("first-time caller")
    if rule.source_contains:
        said.append(f"source contains {rule.source_contains!r}")
    if rule.form:
        said.append(f"form {rule.form!r}")
    return ", ".join(said) or f"every {rule.applies_to}"


def remove_rule(session: Session, rule: ConversionRule, actor: str) -> None:
    audit.record(
        session, actor, "conversion.rule.remove", rule.name[:64], account_id=rule.account_id
    )
    session.delete(rule)


def webhook_url(text: str, allowed: Sequence[reach.Network] = ()) -> str:
    """https, or http to an address in destinations.allowed_networks (a receiver the admin
    named by its address); never this machine or a private network unless allowed there."""
    parts = urlsplit(text.strip())
    host = parts.hostname or ""
    plain_allowed = reach.is_allowed_literal(host, allowed)
    if (
        parts.scheme not in ("https", "http")
        or (parts.scheme == "http" and not plain_allowed)
        or not host
        or "@" in parts.netloc
        or len(text) > 500
        or any(c.isspace() for c in text.strip())
    ):
        raise AdminError(
            f"{text[:80]!r}: a webhook address is https://... (http only to an address in "
            "destinations.allowed_networks)"
        )
    why = reach.host_refusal(host, allowed)
    if why is not None:
        raise AdminError(
            f"{host[:80]!r} is a {why} address: webhooks may not reach this machine or its "
            "networks (the server's destinations.allowed_networks lists exceptions)"
        )
    return text.strip()


@dataclass(frozen=True)
class DestinationRequest:
    name: str
    kind: str
    url: str | None = None
    events: tuple[str, ...] = ("conversion.created",)
    settings: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)


def add_destination(
    session: Session, box: SecretBox, request: DestinationRequest, account_id: int | None,
    actor: str, allowed: Sequence[reach.Network] = (),
) -> tuple[Destination, str | None]:  # fmt: skip
    """The destination, and for a webhook the signing secret (shown this once). `allowed`:
    destinations.allowed_networks, the private addresses a webhook may name."""
    account = get_account(session, account_id)
    name = _destination_name(request.name)
    if request.kind not in KINDS:
        raise AdminError(f"a destination is one of: {', '.join(KINDS)}")
    events = _destination_events(request)
    settings = _destination_settings(request)
    url, shown, sealed = _destination_secrets(request, allowed)
    destination = Destination(
        account_id=account.id,
        name=name,
        kind=request.kind,
        url=url,
        events=" ".join(events),
        settings=json.dumps(settings, sort_keys=True),
        secret_sealed=box.seal(json.dumps(sealed)) if sealed else None,
    )
    session.add(destination)
    session.flush()
    detail = f"{request.kind} {masked_url(url)} events={' '.join(events)}".strip()
    audit.record(session, actor, "destination.add", name[:64], detail=detail, account_id=account.id)
    return destination, shown


def _destination_name(wanted: str) -> str:
    name = " ".join(wanted.split())
    if not name or len(name) > 80:
        raise AdminError("a destination name is 1 to 80 characters")
    return name


def _destination_events(request: DestinationRequest) -> tuple[str, ...]:
    """The events sent, each once; ad platforms only take conversions."""
    events = tuple(dict.fromkeys(request.events))
    if not events or any(e not in EVENTS for e in events):
        raise AdminError(f"events: one or more of {', '.join(EVENTS)}")
    if request.kind != "webhook" and events != ("conversion.created",):
        raise AdminError("ad platforms take conversion.created only")
    return events


def _destination_settings(request: DestinationRequest) -> dict[str, str]:
    """The settings given (stripped, empty ones dropped): every one the kind needs, and the
    platforms' account ids as digits (dashes dropped)."""
    settings_needed, _ = NEEDS[request.kind]
    settings = {k: str(v).strip() for k, v in request.settings.items() if str(v).strip()}
    for key in settings_needed:
        if not settings.get(key) or len(settings[key]) > 100:
            raise AdminError(f"{request.kind} needs its {key.replace('_', ' ')}")
    for key in ("customer_id", "account_id", "pixel_id", "login_customer_id"):
        if key in settings and not DIGITS.fullmatch(settings[key].replace("-", "")):
            raise AdminError(f"{key.replace('_', ' ')}: digits")
        if key in settings:
            settings[key] = settings[key].replace("-", "")
    return settings


def _destination_secrets(
    request: DestinationRequest, allowed: Sequence[reach.Network]
) -> tuple[str | None, str | None, dict[str, str]]:
    """The URL, the secret shown once and what is sealed: a platform's credentials, or for a
    webhook (checked against `allowed`) a new signing secret."""
    _, secrets_needed = NEEDS[request.kind]
    for key in secrets_needed:
        if not request.secrets.get(key):
            raise AdminError(f"{request.kind} needs its {key.replace('_', ' ')}")
    if request.kind == "webhook":
        url = webhook_url(request.url or "", allowed)
        shown = "whsec_" + secrets.token_urlsafe(32)
        return url, shown, {"secret": shown}
    return None, None, {k: request.secrets[k] for k in secrets_needed}


def actions(settings: dict[str, Any]) -> dict[str, str]:
    return dict(settings.get("actions") or {})


def set_google_action(
    session: Session, destination: Destination, conversion: str, action_id: str, actor: str
) -> None:
    """Which Google Ads conversion action a conversion name is uploaded as."""
    if destination.kind != "google_ads":
        raise AdminError("conversion actions are for Google Ads destinations")
    if not DIGITS.fullmatch(action_id):
        raise AdminError("a conversion action id is digits")
    settings = json.loads(destination.settings)
    settings["actions"] = actions(settings) | {conversion[:100]: action_id}
    destination.settings = json.dumps(settings, sort_keys=True)
    detail = f"{conversion[:100]!r} -> {action_id}"
    audit.record(
        session, actor, "destination.action", destination.name[:64], detail=detail,
        account_id=destination.account_id,
    )  # fmt: skip


def remove_destination(session: Session, destination: Destination, actor: str) -> None:
    audit.record(
        session, actor, "destination.remove", destination.name[:64],
        account_id=destination.account_id,
    )  # fmt: skip
    session.delete(destination)


def retry(session: Session, delivery: Delivery, actor: str) -> None:
    """A parked delivery goes out again now, with a fresh set of attempts."""
    if delivery.state != "parked":
        raise AdminError("only a parked delivery is retried")
    delivery.state, delivery.attempts = "pending", 0
    delivery.next_attempt_at = dt.datetime.now(dt.UTC)
    destination = session.get(Destination, delivery.destination_id)
    account_id = destination.account_id if destination else None
    audit.record(session, actor, "delivery.retry", str(delivery.id), account_id=account_id)
