"""Queueing an event for the outbox: one delivery per destination of the account that
subscribed to it and can use it, in the caller's transaction (the fact and its deliveries
are committed together, or neither is)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from appliance.conversions import platforms
from appliance.db.models import Delivery, Destination


def accepts(kind: str, event: Mapping[str, Any]) -> bool:
    """Whether a destination of this kind can use the event at all (ad platforms take
    conversions with something to match them by)."""
    if kind == "webhook":
        return True
    if event["event"] != "conversion.created":
        return False
    data = event["data"]
    if kind == "google_ads":
        return data.get("click_id_type") in platforms.GOOGLE_CLICKS
    if kind == "microsoft":
        return data.get("click_id_type") == "msclkid"
    return bool(data.get("caller_number") or data.get("email") or data.get("click_id_type"))


def enqueue(
    session: Session, account_id: int, name: str, event: dict[str, Any], ads: bool = True
) -> int:
    """One delivery per destination that takes the event; how many. `ads` False (a
    restricted caller's call): webhooks only, the admin's own integration, told so by
    data.restricted; never an ad platform."""
    destinations = session.scalars(
        select(Destination).where(Destination.account_id == account_id, Destination.active)
    )
    queued = 0
    payload = json.dumps(event, sort_keys=True)
    for destination in destinations:
        if not ads and destination.kind != "webhook":
            continue
        if name in destination.events.split() and accepts(destination.kind, event):
            session.add(Delivery(destination_id=destination.id, event=name, payload=payload))
            queued += 1
    return queued
