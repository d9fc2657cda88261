"""Conversion rules, webhook signatures, backoff and the shapes sent to each destination."""

import datetime as dt
import hashlib
import json
import xml.etree.ElementTree as ET

import pytest

from appliance.conversions import platforms
from appliance.conversions.outbox import MAX_ATTEMPTS, backoff
from appliance.conversions.rules import Facts, Rule
from appliance.conversions.signing import signature, verify

QUALIFIED = Rule(1, "Qualified call", "call", answered=True, min_talk_seconds=60)


@pytest.mark.parametrize(
    ("rule", "facts", "expected"),
    [
        (QUALIFIED, Facts("call", answered=True, talk_seconds=60), True),
        (QUALIFIED, Facts("call", answered=True, talk_seconds=59.9), False),
        (QUALIFIED, Facts("call", answered=False, talk_seconds=300), False),
        (QUALIFIED, Facts("lead"), False),
        (Rule(2, "New", "call", first_time=True), Facts("call", first_time=False), False),
        (Rule(3, "G", "call", source_contains="GOOGLE"), Facts("call", source="google"), True),
        (Rule(3, "G", "call", source_contains="google"), Facts("call", source=None), False),
        (Rule(4, "Quote", "lead", form="quote"), Facts("lead", form="quote"), True),
        (Rule(4, "Quote", "lead", form="quote"), Facts("lead", form="contact"), False),
        (Rule(5, "Any", "lead"), Facts("lead", form="contact"), True),
    ],
)
def test_every_condition_of_a_rule_must_hold(rule, facts, expected):
    assert rule.matches(facts) is expected


def test_a_signature_verifies_only_for_its_body_secret_and_a_recent_time():
    body = b'{"event":"conversion.created"}'
    signed = signature("s3cret", 1_000_000, body)
    assert signed.startswith("sha256=") and len(signed) == 7 + 64
    assert verify("s3cret", "1000000", body, signed, now=1_000_100)
    assert not verify("s3cret", "1000000", body + b" ", signed, now=1_000_100)
    assert not verify("other", "1000000", body, signed, now=1_000_100)
    assert not verify("s3cret", "1000000", body, signed, now=1_000_000 + 301)  # a replay
    assert not verify("s3cret", "１０００", body, signed, now=1_000)  # noqa: RUF001 - fullwidth
    assert not verify("s3cret", "1000000", body, "sha256=ü" + signed[8:], now=1_000_100)


def test_retries_back_off_from_30_seconds_to_6_hours():
    waits = [backoff(n) for n in range(1, MAX_ATTEMPTS + 1)]
    assert waits[:3] == [30, 60, 120] and max(waits) <= 6 * 3600


CONVERSION = {
    "id": 7,
    "name": "Qualified call",
    "occurred_at": "2026-11-29T17:00:05+00:00",
    "value": 50.0,
    "currency": "USD",
    "call_id": "c" * 32,
    "lead_id": None,
    "click_id_type": "gclid",
    "click_id": "Cj0KCQ",
    "caller_number": "+13125550111",
    "email": None,
}


def test_google_ads_gets_an_upload_click_conversions_request():
    event = platforms.conversion_event(CONVERSION)
    settings = {"customer_id": "1234567890", "actions": {"Qualified call": "555"}}
    request = platforms.google_ads("https://g/v19", settings, "tok", "dev", event)
    assert request.url == "https://g/v19/customers/1234567890:uploadClickConversions"
    assert request.headers["developer-token"] == "dev"
    assert request.headers["Authorization"] == "Bearer tok"
    assert json.loads(request.body) == {
        "conversions": [
            {
                "gclid": "Cj0KCQ",
                "conversionAction": "customers/1234567890/conversionActions/555",
                "conversionDateTime": "2026-11-29 17:00:05+00:00",
                "conversionValue": 50.0,
                "currencyCode": "USD",
            }
        ],
        "partialFailure": True,
    }
    with pytest.raises(platforms.NotForThisDestination, match="conversion action"):
        platforms.google_ads("https://g", {"customer_id": "1"}, "t", "d", event)
    other = platforms.conversion_event(CONVERSION | {"click_id_type": "msclkid"})
    with pytest.raises(platforms.NotForThisDestination, match="Google click id"):
        platforms.google_ads("https://g", settings, "t", "d", other)


def test_meta_gets_a_server_event_with_the_phone_hashed_and_nothing_else_about_the_caller():
    event = platforms.conversion_event(CONVERSION | {"click_id_type": "fbclid"})
    request = platforms.meta("https://m/v21.0", {"pixel_id": "42"}, "tok", event)
    assert request.url == "https://m/v21.0/42/events"
    body = json.loads(request.body)
    (sent,) = body["data"]
    assert sent["user_data"]["ph"] == [hashlib.sha256(b"13125550111").hexdigest()]
    occurred = dt.datetime(2026, 11, 29, 17, 0, 5, tzinfo=dt.UTC).timestamp()
    assert sent["user_data"]["fbc"] == f"fb.1.{int(occurred * 1000)}.Cj0KCQ"
    assert (sent["action_source"], sent["event_id"], sent["event_time"]) == (
        "phone_call",
        "conversion-7",
        int(dt.datetime(2026, 11, 29, 17, 0, 5, tzinfo=dt.UTC).timestamp()),
    )
    assert body["access_token"] == "tok" and "13125550111" not in request.body.decode()


def test_microsoft_gets_an_apply_offline_conversions_envelope_with_markup_escaped():
    event = platforms.conversion_event(
        CONVERSION | {"click_id_type": "msclkid", "name": "<b>Call</b> & more"}
    )
    settings = {"customer_id": "1", "account_id": "2"}
    request = platforms.microsoft("https://ms/soap", settings, "tok", "dev", event)
    assert request.headers["SOAPAction"] == "ApplyOfflineConversions"
    root = ET.fromstring(request.body)
    ns = {"s": "http://schemas.xmlsoap.org/soap/envelope/", "m": platforms.MS_NS}
    assert root.find("s:Header/m:DeveloperToken", ns).text == "dev"
    assert root.find("s:Header/m:CustomerAccountId", ns).text == "2"
    found = root.find("s:Body/m:ApplyOfflineConversionsRequest/m:OfflineConversions/"
                      "m:OfflineConversion", ns)  # fmt: skip
    assert found.find("m:ConversionName", ns).text == "<b>Call</b> & more"
    assert found.find("m:ConversionTime", ns).text == "2026-11-29T17:00:05Z"
    assert found.find("m:MicrosoftClickId", ns).text == "Cj0KCQ"


def test_offline_conversion_files_keep_only_their_platform_clicks():
    rows = [CONVERSION, CONVERSION | {"click_id_type": "msclkid", "click_id": "ms1", "value": None}]
    google = platforms.offline_csv("google_ads", rows).splitlines()
    assert google == [
        "Parameters:TimeZone=+0000",
        "Google Click ID,Conversion Name,Conversion Time,Conversion Value,Conversion Currency",
        "Cj0KCQ,Qualified call,2026-11-29 17:00:05,50,USD",
    ]
    microsoft = platforms.offline_csv("microsoft", rows).splitlines()
    assert microsoft[1].startswith("Microsoft Click ID,") and microsoft[2] == (
        "ms1,Qualified call,2026-11-29 17:00:05,,USD"
    )
