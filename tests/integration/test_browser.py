"""The admin UI in a real headless Chromium (Debian's, driven by Playwright) against the real
appliance: a real recorded call placed by SIPp with markup in its caller ID name, then signing
in with a forced password change, the call log at desktop and phone widths, and the recording
played and sought in the browser's own player."""

from __future__ import annotations

from tests.harness import Stack, sipp_call, wait_for
from tests.integration.test_recordings import consent_stack, query

# markup a caller can put in the SIP From display name (no double quote: that ends it)
HOSTILE_NAME = "<img src=x onerror=document.title='pwned'><script>alert(1)</script>"
NEW_PASSWORD = "a brand new passphrase"


def sign_in(page, base: str, stack: Stack) -> None:
    """As the admin with a one-time password: the call log sends to the sign-in page, which
    asks for a new password before the call log opens."""
    one_time = stack.appliance("user", "passwd", "admin").stdout.split("one-time password: ")[1]
    one_time = one_time.split()[0]
    page.goto(f"{base}/calls")
    assert page.url.startswith(f"{base}/login")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", one_time)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base}/password")
    page.fill("input[name=current]", one_time)
    page.fill("input[name=new]", NEW_PASSWORD)
    page.fill("input[name=again]", NEW_PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base}/calls")


def test_sign_in_call_log_player_and_stored_xss(stack: Stack, phone, browser):
    consent_stack(stack, consent=False)
    phone(scenario="phone_speech.xml")
    result = sipp_call(
        stack,
        "12025550123",
        "13125550111",
        HOSTILE_NAME,
        talk_ms=4000,
        scenario="carrier_speech.xml",
        cwd=stack.data_dir,
    )
    assert result.returncode == 0, result.output
    (recording,) = wait_for(
        lambda: query(stack, "SELECT * FROM recordings"), timeout=20, what="the sealed recording"
    )
    (call,) = query(stack, "SELECT * FROM calls")
    assert "<img" in call["caller_name"]  # the markup reached the database as it was sent
    base = f"https://127.0.0.1:{stack.http_port}"

    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    answers: list[tuple[str, int, str]] = []  # (range asked, status, Content-Range)

    def answered(response) -> None:
        if response.url.endswith("/recording"):
            asked = response.request.headers.get("range", "")
            answers.append((asked, response.status, response.headers.get("content-range", "")))

    page.on("response", answered)

    sign_in(page, base, stack)

    # the caller's markup is text on the page, and nothing of it ran
    row = page.locator("table.calls tbody tr")
    assert row.count() == 1
    assert row.locator(".name").inner_text() == call["caller_name"]
    assert page.locator("main img, main script").count() == 0
    assert page.title() != "pwned" and dialogs == []

    # phone width: the log still fits the screen
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    page.set_viewport_size({"width": 1280, "height": 800})

    row.locator("a").first.click()
    page.wait_for_url(f"{base}/calls/{call['id']}")
    assert page.locator(".caller-name").inner_text() == call["caller_name"]
    assert page.locator("main img, main script").count() == 0
    audio = page.locator("audio")
    duration = audio.evaluate(
        """a => new Promise((ok, fail) => {
            if (a.readyState >= 1) return ok(a.duration);
            a.addEventListener('loadedmetadata', () => ok(a.duration));
            a.addEventListener('error', () => fail(String(a.error && a.error.message)));
        })"""
    )
    assert abs(duration - recording["seconds"]) < 0.5
    middle = duration / 2
    played_to = audio.evaluate(
        """(a, at) => new Promise((ok, fail) => {
            a.addEventListener('error', () => fail(String(a.error && a.error.message)));
            a.addEventListener('seeked', () => {
                const from = a.currentTime;
                a.addEventListener('timeupdate', function tick() {
                    if (a.currentTime > from + 0.3) { a.pause(); ok([from, a.currentTime]); }
                });
                a.play().catch(fail);
            }, {once: true});
            a.currentTime = at;
        })""",
        middle,
    )
    assert abs(played_to[0] - middle) < 0.1 and played_to[1] > played_to[0]
    # the player asked for ranges and got them: that is what lets it seek without the file
    assert answers and all(r.startswith("bytes=") and s == 206 for r, s, _ in answers), answers
    assert answers[0][2].startswith("bytes 0-")
    seekable = audio.evaluate("a => [a.seekable.length, a.seekable.end(0)]")
    assert seekable[0] == 1 and abs(seekable[1] - duration) < 0.1
    assert dialogs == [] and page.title() != "pwned"

    plays = query(stack, "SELECT * FROM audit_log WHERE action = 'recording.play'")
    assert plays and {p["actor"] for p in plays} == {"user:admin"}
    assert {p["subject"] for p in plays} == {call["id"]}
    signins = query(stack, "SELECT * FROM audit_log WHERE action = 'signin'")
    assert len(signins) == 1 and signins[0]["client"] == "127.0.0.1"
    context.close()


def test_live_calls_show_while_they_last(stack: Stack, phone, browser):
    consent_stack(stack, consent=False)
    base = f"https://127.0.0.1:{stack.http_port}"
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    sign_in(page, base, stack)
    phone(scenario="phone_speech.xml")
    caller = stack.sipp_background("12025550123", talk_ms=8000, scenario="carrier_speech.xml")
    try:
        page.goto(f"{base}/live")
        row = page.locator("table.live tbody tr")
        row.wait_for(timeout=15000)  # the page refreshes itself every 5 s
        assert "13125550111" in row.inner_text() and "Clinic" in row.inner_text()
        page.wait_for_function(
            "() => document.querySelector('table.live') &&"
            " document.querySelector('table.live').innerText.includes('talking for')",
            timeout=15000,
        )
    finally:
        assert caller.wait(30) == 0
    page.wait_for_selector("text=No calls right now", timeout=15000)
    context.close()
