"""Dynamic number insertion end to end: a sample landing page on its own origin loads the
snippet from the appliance's tracking listener in a real headless Chromium; the page's number
is swapped in every format it is written in; a call placed by SIPp through the sandbox
Asterisk to the swapped number is attributed to that visit; a second visitor gets another
pool number; a third exhausts the pool; a rule gives newsletter readers a fixed number; a
tracked form is stored as a lead without its secret fields; Global Privacy Control is
honoured."""

from __future__ import annotations

import functools
import http.server
import json
import threading
import time
from typing import ClassVar

import pytest

from appliance.conversions.signing import verify
from tests.harness import Stack, free_port, sipp_call, wait_for
from tests.integration.test_browser import sign_in

SITE_NUMBER = "+12025550100"
POOL = ("+12025550130", "+12025550131")
NEWSLETTER = "+12025550140"
PAGE = """<!doctype html><meta charset="utf-8"><title>Roofing</title>
<p id="plain">Call (202) 555-0100 today</p>
<p id="dots">or 202.555.0100</p>
<p id="intl">abroad: +1 202-555-0100</p>
<p id="other">fax (202) 555-0199</p>
<a id="tel" href="tel:+12025550100">call us</a>
<form name="contact" action="/thanks" method="get">
  <input name="name"><input name="email" type="email"><input name="password" type="password">
  <input name="card_number"><input type="hidden" name="csrf" value="t0ken">
  <button type="submit">Send</button>
</form>
<script src="{snippet}" data-site="{key}" async></script>
"""


@pytest.fixture
def landing(stack: Stack, tmp_path):
    """A site of its own on loopback (http://127.0.0.1:PORT) whose pages carry the snippet."""
    port = free_port()
    root = tmp_path / "site"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield root, f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


class _Hook(http.server.BaseHTTPRequestHandler):
    """A webhook receiver: keeps each request's headers and body."""

    received: ClassVar[list[tuple[dict, bytes]]] = []

    def do_POST(self) -> None:  # the name http.server calls
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def hook():
    _Hook.received = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", _Hook.received
    finally:
        server.shutdown()
        server.server_close()


def dni_stack(stack: Stack, origin: str, hook_url: str) -> tuple[str, str]:
    """A running stack with a site of two pool numbers, a newsletter rule, a conversion rule
    and a webhook; the site's key and the webhook's signing secret. Every browser here comes
    from 127.0.0.1: that one address may hold the whole pool."""
    stack.extra_env["APPLIANCE_TRACKING_POOL_SHARE"] = "100"
    stack.extra_env["APPLIANCE_DESTINATIONS_ALLOWED_NETWORKS"] = "127.0.0.1/32"  # the receiver
    stack.appliance(
        "trunk", "add", "carrier", "--host", "127.0.0.1", "--port", str(stack.phone_port)
    )
    stack.appliance("route", "add", "Website", "--forward", "+12025550199", "--trunk", "carrier")
    for number in POOL:
        stack.appliance("number", "add", number, "--route", "Website", "--source", "Website")
    stack.appliance("number", "add", NEWSLETTER, "--route", "Website", "--source", "Newsletter")
    stack.appliance(
        "site", "add", "Shop", "--origin", origin, "--replace", SITE_NUMBER, "--form", "contact"
    )
    stack.appliance("site", "pool", "Shop", *POOL)
    stack.appliance("site", "rule", "add", "Shop", "source=newsletter", NEWSLETTER)
    stack.appliance("conversion", "add", "Web call", "--answered", "--value", "20")
    added = stack.appliance("destination", "add", "CRM", "webhook", "--url", hook_url)
    secret = added.stdout.split("signing secret (shown once): ")[1].strip()
    stack.appliance("config", "render")
    stack.start_asterisk()
    stack.start_controller()
    stack.start_tracking()
    wait_for(lambda: stack.counter("dni_sites") == 1, what="the site loaded")
    return stack.query("SELECT key FROM dni_sites")[0]["key"], secret


def swapped(page) -> str:
    """Wait for the snippet to swap the page's number; the tel: link's number."""
    page.wait_for_function("!document.getElementById('tel').href.endsWith('2025550100')")
    return page.get_attribute("#tel", "href").removeprefix("tel:")


def test_a_visit_gets_a_pool_number_and_the_call_to_it_is_attributed(
    stack: Stack, phone, browser, landing, hook
):
    root, origin = landing
    hook_url, received = hook
    key, secret = dni_stack(stack, origin, hook_url)
    snippet = f"https://127.0.0.1:{stack.tracking_port}/t/v1/snippet.js"
    (root / "index.html").write_text(PAGE.format(snippet=snippet, key=key))
    (root / "more.html").write_text(PAGE.format(snippet=snippet, key=key))
    (root / "thanks").write_text("thanks")
    campaign = "?utm_source=google&utm_medium=cpc&utm_campaign=spring&utm_term=roof+repair"

    first = browser.new_context().new_page()
    first.goto(f"{origin}/index.html{campaign}&gclid=CjwKCAtest", referer="https://www.google.com/")
    number = swapped(first)
    assert number in POOL
    national = number[2:]
    written = f"({national[:3]}) {national[3:6]}-{national[6:]}"
    # every way the page wrote its number, in the same format; other numbers untouched
    assert first.inner_text("#plain") == f"Call {written} today"
    assert first.inner_text("#dots") == f"or {national[:3]}.{national[3:6]}.{national[6:]}"
    assert first.inner_text("#intl") == f"abroad: +1 {national[:3]}-{national[3:6]}-{national[6:]}"
    assert first.inner_text("#other") == "fax (202) 555-0199"
    cookies = first.context.cookies()
    assert [c["name"] for c in cookies] == ["_ctv"] and cookies[0]["domain"] == "127.0.0.1"

    # the same visitor on another page keeps its number
    first.goto(f"{origin}/more.html")
    assert swapped(first) == number
    (visit,) = wait_for(lambda: stack.query("SELECT * FROM visits"), what="the visit written")
    assert (visit["source_name"], visit["medium"], visit["campaign_name"]) == (
        "google",
        "cpc",
        "spring",
    )
    assert (visit["keyword"], visit["click_id_type"], visit["click_id"]) == (
        "roof repair",
        "gclid",
        "CjwKCAtest",
    )
    assert visit["ip"] == "127.0.0.0"  # truncated by default
    wait_for(lambda: len(stack.query("SELECT * FROM visit_pages")) == 2, what="both pages")

    phone(calls=2)
    result = sipp_call(stack, number[1:], "13125550111", "Visitor", talk_ms=500)
    assert result.returncode == 0, result.output
    (call,) = stack.finished(1)
    assert (call["visit_id"], call["attribution"]) == (visit["id"], "held")
    assert (call["source_name"], call["medium"], call["campaign_name"]) == (
        "google",
        "cpc",
        "spring",
    )
    # the conversion reaches the webhook, signed, with the visit's click id
    wait_for(lambda: len(received) >= 1, what="the conversion webhook")
    headers, body = received[0]
    assert verify(
        secret, headers["X-Appliance-Timestamp"], body, headers["X-Appliance-Signature"],
        time.time(),
    )  # fmt: skip
    sent = json.loads(body)
    assert sent["event"] == "conversion.created"
    assert (sent["data"]["call_id"], sent["data"]["click_id"], sent["data"]["value"]) == (
        call["id"],
        "CjwKCAtest",
        20.0,
    )

    # a second visitor gets the other pool number; a third exhausts the pool and takes the
    # number of the visitor seen longest ago: calls to it are now ambiguous, tied to neither
    # visit, with the number's own source
    second = browser.new_context().new_page()
    second.goto(f"{origin}/index.html")
    other = swapped(second)
    assert {number, other} == set(POOL)
    third = browser.new_context().new_page()
    third.goto(f"{origin}/index.html?utm_source=bing")
    assert swapped(third) == number
    wait_for(
        lambda: stack.query("SELECT * FROM number_holds WHERE recycled"), what="the recycled hold"
    )
    result = sipp_call(stack, number[1:], "13125550112", "Another", talk_ms=500)
    assert result.returncode == 0, result.output
    latest = stack.finished(2)
    (again,) = [c for c in latest if c["caller_name"] == "Another"]
    assert (again["attribution"], again["visit_id"]) == ("ambiguous", None)
    assert (again["source_name"], again["campaign_name"]) == ("Website", None)

    # newsletter readers see the rule's fixed number, and take nothing from the pool
    reader = browser.new_context().new_page()
    reader.goto(f"{origin}/index.html?utm_source=Newsletter&utm_medium=email")
    assert swapped(reader) == NEWSLETTER
    assert len(stack.query("SELECT * FROM number_holds")) == 3

    # a tracked form: a lead with the visit's attribution, and none of its secrets
    third.fill("input[name=name]", "Ada <b>Lovelace</b>")
    third.fill("input[name=email]", "ada@example.com")
    third.fill("input[name=password]", "hunter2")
    third.fill("input[name=card_number]", "4111 1111 1111 1111")
    third.click("button[type=submit]")
    (lead,) = wait_for(lambda: stack.query("SELECT * FROM leads"), what="the lead written")
    assert json.loads(lead["fields"]) == {"name": "Ada <b>Lovelace</b>", "email": "ada@example.com"}
    assert (lead["form"], lead["source_name"]) == ("contact", "bing")

    # Global Privacy Control: the page keeps its own number and nothing is asked
    private = browser.new_context()
    private.add_init_script(
        "Object.defineProperty(navigator, 'globalPrivacyControl', {value: true})"
    )
    asked: list[str] = []
    page = private.new_page()
    page.on("request", lambda request: asked.append(request.url))
    page.goto(f"{origin}/index.html")
    page.wait_for_load_state("networkidle")
    assert page.get_attribute("#tel", "href") == f"tel:{SITE_NUMBER}"
    assert not [url for url in asked if "/t/v1/number" in url]

    # the admin sees the visit on the call's page, and it fits a phone's screen
    admin = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
    base = f"https://127.0.0.1:{stack.http_port}"
    sign_in(admin, base, stack)
    admin.goto(f"{base}/calls/{call['id']}")
    assert "roof repair" in admin.inner_text("main")
    assert admin.locator("ol.timeline li").count() == 3  # two pages, then the call
    assert admin.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    admin.goto(f"{base}/sites")
    assert admin.inner_text(".pool-use") == "2 of 2"
    assert admin.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    admin.goto(f"{base}/conversions")
    assert "POST http://127.0.0.1:" in admin.inner_text("pre.preview")
    assert admin.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_a_site_that_needs_consent_tracks_nothing_until_the_page_says_so(
    stack: Stack, browser, landing
):
    root, origin = landing
    stack.appliance("number", "add", POOL[0])
    added = stack.appliance(
        "site", "add", "Clinic", "--origin", origin, "--replace", SITE_NUMBER, "--consent"
    )
    assert 'data-consent="required"' in added.stdout  # the line to paste says so
    stack.appliance("site", "pool", "Clinic", POOL[0])
    stack.start_controller(wait_ami=False)  # the tracking listener needs no Asterisk
    stack.start_tracking()
    wait_for(lambda: stack.counter("dni_sites") == 1, what="the site loaded")
    key = stack.query("SELECT key FROM dni_sites")[0]["key"]
    snippet = f"https://127.0.0.1:{stack.tracking_port}/t/v1/snippet.js"
    banner = '<button id="agree" onclick="CallTracking.consent()">I agree</button>'
    page = PAGE.format(snippet=snippet, key=key).replace("async></script>", "></script>")
    (root / "waits.html").write_text(
        page.replace("data-site=", 'data-consent="required" data-site=') + banner
    )
    (root / "forgot.html").write_text(page)  # pasted without data-consent

    visitor = browser.new_context().new_page()
    asked: list[str] = []
    visitor.on("request", lambda request: asked.append(request.url))
    visitor.goto(f"{origin}/waits.html")
    visitor.wait_for_load_state("networkidle")
    assert not [url for url in asked if "/t/v1/number" in url]
    assert visitor.context.cookies() == []  # no cookie before consent either
    visitor.click("#agree")
    assert swapped(visitor) == POOL[0]

    other = browser.new_context().new_page()
    with other.expect_response(lambda r: r.url.endswith("/t/v1/number")) as answered:
        other.goto(f"{origin}/forgot.html")
    assert answered.value.json()["tracking"] is False  # the appliance refuses without consent
    assert other.get_attribute("#tel", "href") == f"tel:{SITE_NUMBER}"
    assert len(stack.query("SELECT * FROM visits")) <= 1
