"""What each destination is sent for an event, pure: the signed webhook request, and the
requests of the ad platforms' conversion APIs in the shapes their documentation gives (Google
Ads uploadClickConversions, Meta Conversions API, Microsoft Advertising
ApplyOfflineConversions), plus the offline-conversion files Google Ads and Microsoft
Advertising import. The admin page's preview is built by these same functions, so it shows
exactly what leaves the box."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

from appliance.conversions.signing import signature

GOOGLE_CLICKS = ("gclid", "gbraid", "wbraid")
MS_NS = "https://bingads.microsoft.com/CampaignManagement/v13"


class NotForThisDestination(ValueError):
    """The event carries nothing this destination can use (e.g. no click id of its own)."""


@dataclass(frozen=True)
class Request:
    url: str
    headers: Mapping[str, str]
    body: bytes


def conversion_event(conversion: Mapping[str, Any]) -> dict[str, Any]:
    """The event a conversion makes, as stored in the outbox and sent to webhooks."""
    return {
        "event": "conversion.created",
        "id": f"conversion-{conversion['id']}",
        "occurred_at": conversion["occurred_at"],
        "data": dict(conversion),
    }


def webhook(url: str, secret: str, event: Mapping[str, Any], delivery_id: int, now: int) -> Request:
    """The event, with its delivery's number inside the signed body (the same on a retry)."""
    signed = {**event, "delivery": delivery_id}
    body = json.dumps(signed, separators=(",", ":"), sort_keys=True).encode()
    return Request(
        url,
        {
            "Content-Type": "application/json",
            "User-Agent": "appliance-webhooks",
            "X-Appliance-Event": str(event["event"]),
            "X-Appliance-Delivery": str(delivery_id),
            "X-Appliance-Timestamp": str(now),
            "X-Appliance-Signature": signature(secret, now, body),
        },
        body,
    )


def _conversion(event: Mapping[str, Any]) -> Mapping[str, Any]:
    if event.get("event") != "conversion.created":
        raise NotForThisDestination("ad platforms take conversions only")
    data: Mapping[str, Any] = event["data"]  # the conversion, as conversions.store made it
    return data


def _when(iso: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(iso)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def google_ads(
    base: str, settings: Mapping[str, Any], access_token: str, developer_token: str,
    event: Mapping[str, Any],
) -> Request:  # fmt: skip
    """ConversionUploadService.UploadClickConversions over REST, one conversion a request."""
    c = _conversion(event)
    if c.get("click_id_type") not in GOOGLE_CLICKS:
        raise NotForThisDestination("no Google click id (gclid, gbraid or wbraid)")
    action = (settings.get("actions") or {}).get(c["name"])
    if not action:
        raise NotForThisDestination(f"no Google Ads conversion action for {c['name']!r}")
    customer = str(settings["customer_id"])
    upload = {
        c["click_id_type"]: c["click_id"],
        "conversionAction": f"customers/{customer}/conversionActions/{action}",
        "conversionDateTime": _when(c["occurred_at"]).isoformat(sep=" ", timespec="seconds"),
        "currencyCode": c["currency"],
    }
    if c.get("value") is not None:
        upload["conversionValue"] = c["value"]
    headers = {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {access_token}",
        "developer-token": developer_token,
    }
    if settings.get("login_customer_id"):
        headers["login-customer-id"] = str(settings["login_customer_id"])
    body = {"conversions": [upload], "partialFailure": True}
    return Request(
        f"{base}/customers/{customer}:uploadClickConversions", headers, json.dumps(body).encode()
    )


def meta(base: str, settings: Mapping[str, Any], token: str, event: Mapping[str, Any]) -> Request:
    """Conversions API: one server event, matched by the hashed phone number (and the
    Facebook click, when the visit came with one); nothing else about the caller."""
    c = _conversion(event)
    user: dict[str, Any] = {}
    digits = "".join(ch for ch in c.get("caller_number") or "" if ch.isdigit())
    if digits:
        user["ph"] = [_sha256(digits)]
    if c.get("email"):
        user["em"] = [_sha256(str(c["email"]).strip().lower())]
    occurred = _when(c["occurred_at"])
    if c.get("click_id_type") == "fbclid":  # fb.1.<when the click landed, ms>.<fbclid>
        clicked = _when(c.get("clicked_at") or c["occurred_at"])
        user["fbc"] = f"fb.1.{int(clicked.timestamp() * 1000)}.{c['click_id']}"
    if not user:
        raise NotForThisDestination("nothing to match a person by (no phone, e-mail or click)")
    server_event: dict[str, Any] = {
        "event_name": c["name"],
        "event_time": int(occurred.timestamp()),
        "event_id": f"conversion-{c['id']}",
        "action_source": "phone_call" if c.get("call_id") else "other",
        "user_data": user,
    }
    if c.get("value") is not None:
        server_event["custom_data"] = {"value": c["value"], "currency": c["currency"]}
    body: dict[str, Any] = {"data": [server_event], "access_token": token}
    if settings.get("test_event_code"):
        body["test_event_code"] = settings["test_event_code"]
    return Request(
        f"{base}/{settings['pixel_id']}/events",
        {"Content-Type": "application/json"},
        json.dumps(body).encode(),
    )


def microsoft(
    url: str, settings: Mapping[str, Any], access_token: str, developer_token: str,
    event: Mapping[str, Any],
) -> Request:  # fmt: skip
    """Campaign Management ApplyOfflineConversions (SOAP), one conversion a request."""
    c = _conversion(event)
    if c.get("click_id_type") != "msclkid":
        raise NotForThisDestination("no Microsoft click id (msclkid)")
    value = "" if c.get("value") is None else f"<ConversionValue>{c['value']}</ConversionValue>"
    when = _when(c["occurred_at"]).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    envelope = f"""<?xml version="1.0" encoding="utf-8"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">
<s:Header xmlns="{MS_NS}">
<Action mustUnderstand="1">ApplyOfflineConversions</Action>
<AuthenticationToken>{escape(access_token)}</AuthenticationToken>
<CustomerAccountId>{escape(str(settings["account_id"]))}</CustomerAccountId>
<CustomerId>{escape(str(settings["customer_id"]))}</CustomerId>
<DeveloperToken>{escape(developer_token)}</DeveloperToken>
</s:Header>
<s:Body>
<ApplyOfflineConversionsRequest xmlns="{MS_NS}">
<OfflineConversions xmlns:i="http://www.w3.org/2001/XMLSchema-instance">
<OfflineConversion>
<ConversionCurrencyCode>{escape(c["currency"])}</ConversionCurrencyCode>
<ConversionName>{escape(c["name"])}</ConversionName>
<ConversionTime>{when}</ConversionTime>
{value}
<MicrosoftClickId>{escape(str(c["click_id"]))}</MicrosoftClickId>
</OfflineConversion>
</OfflineConversions>
</ApplyOfflineConversionsRequest>
</s:Body>
</s:Envelope>"""
    return Request(
        url,
        {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": "ApplyOfflineConversions"},
        envelope.encode(),
    )


def amount(value: float) -> str:
    """A money amount as written in files and pages: 12345.67, 2500000, 0.5."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def masked_url(url: str | None) -> str:
    """A webhook's address as shown: its host, not its path or query (which often hold a
    secret, e.g. a chat service's hook token)."""
    if not url:
        return ""
    parts = urlsplit(url)
    tail = "/…" if parts.path not in ("", "/") or parts.query else "/"
    return f"{parts.scheme}://{parts.netloc}{tail}"


def offline_csv(platform: str, conversions: Iterable[Mapping[str, Any]]) -> str:
    """The file Google Ads ('google_ads') or Microsoft Advertising ('microsoft') imports as
    offline conversions: times in UTC, only conversions with that platform's click id."""
    clicks, header = (
        (GOOGLE_CLICKS, "Google Click ID")
        if platform == "google_ads"
        else (("msclkid",), "Microsoft Click ID")
    )
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["Parameters:TimeZone=+0000"])
    writer.writerow(
        [header, "Conversion Name", "Conversion Time", "Conversion Value", "Conversion Currency"]
    )
    for c in conversions:
        if c.get("click_id_type") not in clicks:
            continue
        when = _when(c["occurred_at"]).astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        value = "" if c.get("value") is None else amount(c["value"])
        writer.writerow([c["click_id"], c["name"], when, value, c["currency"]])
    return out.getvalue()
