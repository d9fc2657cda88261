"""The admin UI's forms, as the pages render them for each user: any value in any field, the
ids of another tenant's objects included, gives a 2xx, 3xx or 4xx answer with the security
headers, never a 500, and a client account's user never sees another tenant's data."""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given
from hypothesis import strategies as st

from appliance import accounts
from appliance.web.hardening import CSP
from tests.fuzz.harness import examples, probe
from tests.fuzz.served import Served
from tests.fuzz.web import Loop, check_answer
from tests.hostile import STRINGS
from tests.web_world import Browser, app_for

pytestmark = pytest.mark.usefixtures("cheap_passwords")  # users are set-up here

PAGES = ("/numbers", "/sources", "/routes", "/sip", "/sites", "/conversions", "/settings",
         "/users", "/privacy", "/privacy/people", "/privacy/restricted", "/calls", "/search",
         "/leads", "/reports/sources")  # fmt: skip
SKIPPED = ("/logout", "/password", "/account", "/login", "/reset", "/link")  # the session's own
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": CSP,
}
USERS = ("owner", "alice", "viewer-b")
SETUP = 600.0  # seconds: signing in (bcrypt) and reading every page, on a loaded machine


class Forms(HTMLParser):
    """Each POST form of a page: its action and its fields with the values the page gives."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, dict[str, list[str]]]] = []
        self._fields: dict[str, list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("method", "").lower() == "post":
            self._fields = {}
            self.forms.append((a.get("action", ""), self._fields))
        elif (
            tag in ("input", "select", "textarea", "option", "button") and self._fields is not None
        ):
            if tag == "option":
                if self._select:
                    self._fields.setdefault(self._select, []).append(a.get("value", ""))
                return
            if "name" in a:
                self._fields.setdefault(a["name"], []).append(a.get("value", ""))
            self._select = a.get("name", "") if tag == "select" else ""

    _select = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._fields = None


class Admin:
    def __init__(self, tmp_path) -> None:  # type: ignore[no-untyped-def]
        self.served = Served.__new__(Served)
        self.loop = Loop()
        Served.__init__(self.served, tmp_path)  # the world; its own server thread is not used
        self.served.close()
        world = self.served.world
        self.ids = [str(i) for i in (*world.accounts.values(), *world.numbers.values())]
        self.ids += [world.calls[t] for t in world.calls]
        self.browsers: dict[str, Browser] = {}
        self.forms: dict[str, list[tuple[str, dict[str, list[str]]]]] = {}
        self.client: TestClient = self.loop.run(self._start(), bound=SETUP)

    async def _start(self) -> TestClient:
        client = TestClient(TestServer(app_for(self.served.world)))
        await client.start_server()
        for username in USERS:
            browser = Browser(client)
            response = await browser.sign_in(username)
            assert response.status == 303, username
            self.browsers[username] = browser
            found: list[tuple[str, dict[str, list[str]]]] = []
            pages = [*PAGES, *(f"/calls/{c}" for c in self.served.world.calls.values())]
            for page in pages:
                _, body = await browser.get(page)
                parser = Forms()
                parser.feed(body)
                found += [(action or page, f) for action, f in parser.forms
                          if not (action or page).startswith(SKIPPED)]  # fmt: skip
            self.forms[username] = found
        return client

    def close(self) -> None:
        self.loop.run(self.client.close())
        self.loop.close()


@pytest.fixture(scope="module")
def admin_ui(tmp_path_factory) -> Iterator[Admin]:  # type: ignore[no-untyped-def]
    ui = Admin(tmp_path_factory.mktemp("forms"))
    yield ui
    ui.close()


def test_the_pages_give_forms_to_fuzz(admin_ui):
    assert len(admin_ui.forms["owner"]) >= 20, admin_ui.forms["owner"]


values = st.one_of(
    st.text(max_size=30),
    st.sampled_from(STRINGS),
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(["", "0", "-1", "99999999999", "1e3", "nan", "on", "yes", "\u00b2", "\u0661"]),
    st.text(max_size=3).map(lambda t: t * 3000),
)


@st.composite
def submissions(draw: st.DrawFn, ui: Admin) -> tuple[str, dict[str, str]]:
    """A form of the owner's pages (a client's user, shown none, forges them)."""
    action, fields = draw(st.sampled_from(ui.forms["owner"]))
    form = {
        name: draw(st.sampled_from(options)) if options else "" for name, options in fields.items()
    }
    form.pop("csrf", None)
    for name in draw(st.lists(st.sampled_from(sorted(form) or ["x"]), max_size=4)):
        form[name] = draw(values | st.sampled_from(ui.ids))
    if draw(st.booleans()):
        form[draw(st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=10))] = draw(
            values
        )
    return action, form


@pytest.mark.parametrize("username", USERS)
def test_any_value_in_any_form_gets_no_500_and_nothing_of_another_tenant(admin_ui, username):
    browser = admin_ui.browsers[username]
    foreign = admin_ui.served.foreign(username)

    @given(submissions(admin_ui))
    @examples(ci=60)
    def fuzz(submission: tuple[str, dict[str, str]]) -> None:
        action, form = submission
        with probe("admin forms (HTTP)", hang=60):
            response, body = admin_ui.loop.run(browser.post(action, form))
            check_answer(response.status, dict(response.headers), body, HEADERS, foreign, str(form))
            if response.status == 303 and response.headers.get("Location", "").startswith("/login"):
                raise AssertionError(f"{username} was signed out by {action}")

    fuzz()


PUBLIC_FORMS = {
    "/login": ("username", "password", "next"),
    "/reset": ("username", "email"),
    "/login/code": ("code",),
}


@given(st.sampled_from(sorted(PUBLIC_FORMS)), st.data())
@examples(ci=20)
def test_any_value_in_the_sign_in_forms_gets_no_500(admin_ui, path, data):
    """Anyone can post these: no session, no CSRF token; sign-in attempts are throttled."""
    form = {name: data.draw(values) for name in PUBLIC_FORMS[path] if data.draw(st.booleans())}
    with probe("sign-in forms (HTTP)", hang=60):
        response, body = admin_ui.loop.run(Browser(admin_ui.client).post(path, form))
        check_answer(response.status, dict(response.headers), body, HEADERS)


# what the fuzzing found, kept -------------------------------------------------------------
def test_regression_a_csrf_token_that_is_not_ascii_is_refused_not_a_500(admin_ui):
    assert accounts.csrf_ok("session", "\u00e9" * 64) is False
    browser = admin_ui.browsers["owner"]
    response, _ = admin_ui.loop.run(browser.post("/sources", {"csrf": "\u00e9"}, csrf=False))
    assert response.status == 403


def test_regression_an_account_of_other_digits_than_ascii_is_refused_not_a_500(admin_ui):
    """'²'.isdigit() is true, and int('²') fails: the privacy page's account field."""
    browser = admin_ui.browsers["owner"]
    for account in ("\u00b2", "\u0661"):
        response, _ = admin_ui.loop.run(
            browser.post("/privacy", {"action": "delete", "account": account})
        )
        assert response.status == 403
