"""The public tracking endpoints (the only listener meant for the internet) and the pure
functions behind them: any body, header and address gives a 2xx or 4xx answer with the usual
headers, never a 500, and never another site's numbers or origin."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import example, given
from hypothesis import strategies as st

from appliance.admin import NumberRequest, add_number
from appliance.attribution import sites
from appliance.attribution.dni import Dni
from appliance.attribution.leads import MAX_FIELDS, MAX_NAME, MAX_VALUE, clean_fields, sensitive
from appliance.attribution.touch import HIDDEN, MAX_URL, BadInput, classify, web_address
from appliance.config import TrackingConfig
from appliance.web.tracking import MAX_BODY, tracking_app
from tests.fuzz.harness import Finding, examples, probe, refuses
from tests.fuzz.web import Loop, answer, check_answer
from tests.hostile import STRINGS
from tests.web_world import build_world

ORIGINS = {"a": "https://www.shop-a.example", "b": "https://www.shop-b.example"}
POOLS = {"a": ("+12025550130", "+12025550131"), "b": ("+12025550140", "+12025550141")}
SHOWN = {"a": "+12025550100", "b": "+12025550101"}
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'",
    "Vary": "Origin",
}

addresses = st.one_of(
    st.sampled_from(
        [
            f"{ORIGINS['a']}/",
            f"{ORIGINS['a']}/p?utm_source=x&gclid=abc",
            f"{ORIGINS['b']}/",
            "http://[::1",
            "http://[abc]/",
            "https://a:99999/",
            "javascript:alert(1)",
            "https://x.example/\x00",
            "https://" + "a" * MAX_URL,
            "https://www.google.com/search?q=x",
        ]
    ),
    st.builds(
        lambda o, p: o + "/" + p, st.sampled_from(list(ORIGINS.values())), st.text(max_size=40)
    ),
    st.text(max_size=60),
)
anything = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=40),
    st.sampled_from(STRINGS), st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=3),
)  # fmt: skip


# pure -------------------------------------------------------------------------------------
@given(addresses | anything)
@example("http://[::1")
@example("http://[abc]/")
def test_an_address_is_a_checked_http_address_or_bad_input(text):
    with probe("tracking addresses (pure)", BadInput):
        address = web_address(text, "url")
        if not isinstance(address, str) or len(address) > MAX_URL or " " in address:
            raise Finding(f"accepted {address!r}")
        touch = classify(address, address)
        for value in (touch.source, touch.medium, touch.campaign, touch.keyword, touch.click_id):
            hidden = value and any(unicodedata.category(c) in HIDDEN for c in value)
            if value is not None and (hidden or len(value) > 999):
                raise Finding(f"classified as {value!r}")


@given(
    st.dictionaries(
        st.text(max_size=MAX_NAME + 20), st.text(max_size=60) | anything, max_size=MAX_FIELDS + 5
    )
    | anything
)
def test_form_fields_are_kept_bounded_and_never_secrets_or_refused(raw):
    with probe("tracking lead fields (pure)", BadInput):
        kept = json.loads(clean_fields(raw))
        if len(kept) > MAX_FIELDS:
            raise Finding(f"{len(kept)} fields kept")
        for name, value in kept.items():
            if len(name) > MAX_NAME or len(value) > MAX_VALUE or sensitive(name, value):
                raise Finding(f"kept {name!r}: {value!r}")
            if any(unicodedata.category(c) in HIDDEN for c in name + value):
                raise Finding(f"kept control characters in {name!r}: {value!r}")


def test_regression_an_address_with_a_broken_ipv6_host_is_bad_input():
    for text in ("http://[::1", "http://[abc]/"):
        refuses(lambda text=text: web_address(text, "url"), BadInput)


# the listener -----------------------------------------------------------------------------
class Tracking:
    def __init__(self, tmp_path) -> None:  # type: ignore[no-untyped-def]
        self.loop = Loop()
        self.world = build_world(tmp_path)
        self.keys: dict[str, str] = {}
        with self.world.sessions.begin() as session:
            for tenant in ("a", "b"):
                for number in POOLS[tenant]:
                    request = NumberRequest(number, source="Website")
                    add_number(session, request, self.world.accounts[tenant])
                site = sites.add_site(
                    session,
                    sites.SiteRequest(
                        f"Shop {tenant}",
                        (ORIGINS[tenant],),
                        (SHOWN[tenant],),
                        consent_required=tenant == "b",
                        forms=("contact",),
                    ),
                    self.world.accounts[tenant],
                    "test",
                )
                sites.set_pool(session, site, list(POOLS[tenant]), "test")
                self.keys[tenant] = site.key
        self.dni = Dni(self.world.sessions)
        configs = self.dni.read_sites()
        self.dni.apply(configs, self.dni.read_holds(configs))
        config = TrackingConfig(
            trusted_proxies="127.0.0.1", requests_per_minute=10**6, new_visits_per_hour=10**6
        )
        self.client = self.loop.run(_client(tracking_app(self.dni, config)), bound=600)

    def close(self) -> None:
        self.loop.run(self.dni.flush(), bound=600)
        self.loop.run(self.client.close())
        self.loop.close()


async def _client(app) -> TestClient:  # type: ignore[no-untyped-def]
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


@pytest.fixture(scope="module")
def tracking(tmp_path_factory) -> Iterator[Tracking]:  # type: ignore[no-untyped-def]
    site = Tracking(tmp_path_factory.mktemp("tracking"))
    yield site
    site.close()


# what a client can put in a header (aiohttp's client refuses control characters)
header_text = st.text(st.characters(codec="latin-1", exclude_categories=("Cc",)), max_size=30)


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, bytes, dict[str, str], str]:
    tenant = draw(st.sampled_from(["a", "b"]))
    key = draw(st.sampled_from(["a", "b", "unknown"]))
    body: dict[str, object] = {
        "site": key,  # replaced by the site's key below
        "visitor": draw(st.sampled_from(["1" * 32, "f" * 32]) | anything),
        "url": draw(addresses | anything),
    }
    for name in draw(
        st.lists(st.sampled_from(["referrer", "beat", "consent", "form", "fields"]), max_size=5)
    ):
        body[name] = draw(
            {
                "referrer": addresses | anything,
                "beat": st.booleans() | anything,
                "consent": st.booleans() | anything,
                "form": st.sampled_from(["contact", "other"]) | anything,
                "fields": st.dictionaries(st.text(max_size=20), st.text(max_size=40), max_size=4)
                | anything,
            }[name]
        )
    raw = draw(
        st.one_of(
            st.just(b"json"),
            st.binary(max_size=200),
            st.just(b"x" * (MAX_BODY + 1)),
            st.integers(1, 400).map(lambda n: b"[" * n * 10),
        )
    )
    headers = {
        "Content-Type": draw(
            st.sampled_from(["text/plain", "application/json", "multipart/form-data", "x/y"])
        )
    }
    origin = draw(
        st.sampled_from([ORIGINS[tenant], ORIGINS["a"], "null", "https://evil.example"])
        | header_text
    )
    headers["Origin"] = origin
    for name in draw(st.lists(st.sampled_from(["X-Forwarded-For", "DNT", "Sec-GPC"]), max_size=3)):
        headers[name] = draw(
            st.sampled_from(["1", "0", "203.0.113.9", ",,,", "::1, 10.0.0.1"]) | header_text
        )
    path = draw(st.sampled_from(["/t/v1/number", "/t/v1/lead"]))
    method = draw(st.sampled_from(["POST", "POST", "POST", "OPTIONS", "GET"]))
    return method, path, (json.dumps(body).encode() if raw == b"json" else raw), headers, key


@given(requests())
@examples(ci=80)
def test_any_request_gets_a_2xx_or_4xx_with_the_usual_headers_and_only_its_own_site(
    tracking, request
):
    method, path, body, headers, key = request
    if key in tracking.keys and body.startswith(b"{"):
        body = body.replace(f'"site": "{key}"'.encode(), f'"site": "{tracking.keys[key]}"'.encode())
    with probe("tracking endpoints (HTTP)", hang=40):
        status, answered, text = tracking.loop.run(_send(tracking, method, path, body, headers))
        check_answer(status, answered, text, HEADERS)
        own = key if key in tracking.keys else None
        foreign = [t for t in ("a", "b") if t != own]
        if status == 200 and path.endswith("/number"):
            number = json.loads(text)["number"]
            allowed = set(POOLS[own]) | {None} if own else {None}
            if number not in allowed:
                raise Finding(f"site {own} was given {number!r}")
        for tenant in foreign:
            for marker in (*POOLS[tenant], SHOWN[tenant]):
                if marker in text:
                    raise Finding(f"the answer for site {own} shows site {tenant}'s {marker}")
            # (a preflight reads no body: it allows any site's origin, as documented)
            allowed_origin = answered.get("Access-Control-Allow-Origin")
            if allowed_origin == ORIGINS[tenant] and own and method != "OPTIONS":
                raise Finding(f"site {own}'s answer allows site {tenant}'s origin")


async def _send(tracking: Tracking, method: str, path: str, body: bytes, headers: dict[str, str]):  # type: ignore[no-untyped-def]
    response = await tracking.client.request(method, path, data=body, headers=headers)
    return await answer(response)
