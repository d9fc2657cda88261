"""The transcript on the call page and in the API: as private as the recording (another
tenant's call is not found, a token without recordings:read is refused), every read audited,
every word escaped, and each state of the transcription said plainly."""

from __future__ import annotations

import datetime as dt
import threading
import urllib.parse

import pytest
from sqlalchemy import select

from appliance import admin
from appliance.db.models import AnalysisRule, AuditEntry, Job
from appliance.jobs import queue
from appliance.jobs.runner import Runner
from appliance.transcription import analysis_store, service
from appliance.transcription.analysis import Weights
from appliance.transcription.words import Word
from tests.web_world import Browser, client_for

MARKUP = '<img src=x onerror="alert(1)">'
WORDS = [
    Word(0, 0.5, 0.9, 0.98, "hello"),
    Word(0, 1.0, 1.4, 0.91, "appointment"),
    Word(1, 2.0, 2.5, 0.4, MARKUP),
    Word(1, 2.6, 3.0, 0.95, "tuesday"),
]


def transcribe(world, call_id: str, words=WORDS) -> None:
    with world.sessions.begin() as session:
        service.store(session, call_id, service.Result("ko", 3.2, list(words)))


def reads(world, call_id: str) -> list[AuditEntry]:
    with world.sessions() as session:
        return list(
            session.scalars(
                select(AuditEntry).where(
                    AuditEntry.action == "transcript.read", AuditEntry.subject == call_id
                )
            )
        )


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


async def test_the_call_page_shows_the_dialogue_escaped_and_audits_the_read(world, client):
    call_id = world.calls["a"]
    transcribe(world, call_id)
    browser = Browser(client)
    await browser.sign_in("alice")
    response, page = await browser.get(f"/calls/{call_id}")
    assert response.status == 200
    assert 'data-start="1.00" data-end="1.40">appointment</span>' in page
    assert MARKUP not in page and "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in page
    assert 'class="word unsure"' in page  # the low-confidence word
    assert page.index("hello") < page.index("tuesday")
    assert '<script src="/static/transcript.js" defer></script>' in page
    (entry,) = reads(world, call_id)
    assert entry.actor.endswith("alice") or "alice" in entry.actor
    assert entry.account_id == world.accounts["a"]

    script = await client.get("/static/transcript.js")
    assert script.status == 200 and "timeupdate" in await script.text()


async def test_another_tenants_transcript_is_not_found(world, client):
    transcribe(world, world.calls["a"])
    browser = Browser(client)
    await browser.sign_in("viewer-b")
    response, _ = await browser.get(f"/calls/{world.calls['a']}")
    assert response.status == 404
    api = await client.get(
        f"/api/v1/calls/{world.calls['a']}/transcript", headers=bearer(world.tokens["viewer-b"])
    )
    assert api.status == 404
    assert reads(world, world.calls["a"]) == []


async def test_the_api_gives_words_and_turns_and_needs_recordings_read(world, client):
    call_id = world.calls["a"]
    transcribe(world, call_id)
    response = await client.get(
        f"/api/v1/calls/{call_id}/transcript", headers=bearer(world.tokens["alice"])
    )
    assert response.status == 200
    body = await response.json()
    assert body["state"] == "done" and body["error"] is None and body["off"] is None
    found = body["transcript"]
    assert found["model"] == "ko" and found["seconds"] == 3.2
    assert [w["word"] for w in found["words"]] == [w.text for w in WORDS]
    assert found["words"][1] == {
        "speaker": 0, "start": 1.0, "end": 1.4, "confidence": 0.91, "word": "appointment"
    }  # fmt: skip
    assert [(t["speaker"], t["text"]) for t in found["turns"]] == [
        (0, "hello appointment"),
        (1, f"{MARKUP} tuesday"),
    ]
    assert len(reads(world, call_id)) == 1

    with world.sessions.begin() as session:
        _, calls_only = admin.add_api_key(session, "owner", "test", ["calls:read"])
    refused = await client.get(f"/api/v1/calls/{call_id}/transcript", headers=bearer(calls_only))
    assert refused.status == 403
    assert len(reads(world, call_id)) == 1


@pytest.mark.parametrize(
    ("state", "shown"),
    [
        ("queued", "Being transcribed (queued)"),
        ("running", "Being transcribed (running)"),
        ("parked", "Transcription failed: <span class=\"wrap\">the recording cannot be read: "
                   "&lt;b&gt;chunk 0&lt;/b&gt; fails its tag</span>"),
    ],
)  # fmt: skip
async def test_each_state_of_the_transcription_is_said(world, client, state, shown):
    call_id = world.calls["a"]
    with world.sessions.begin() as session:
        queue.enqueue(session, service.KIND, call_id)
        job = session.scalar(select(Job).where(Job.key == call_id))
        job.state = state
        job.last_error = "the recording cannot be read: <b>chunk 0</b> fails its tag"
    browser = Browser(client)
    await browser.sign_in("alice")
    _, page = await browser.get(f"/calls/{call_id}")
    assert shown in page
    assert reads(world, call_id) == []


async def test_with_transcription_off_the_page_says_why(world):
    client = await client_for(world, transcription_off=lambda: "no model is installed")
    try:
        browser = Browser(client)
        await browser.sign_in("alice")
        _, page = await browser.get(f"/calls/{world.calls['a']}")
        assert "Not transcribed: no model is installed." in page
    finally:
        await client.close()


async def test_the_analysis_shows_its_score_trace_and_tags_escaped(world, client):
    call_id = world.calls["a"]
    transcribe(world, call_id)
    with world.sessions.begin() as session:
        analysis_store.add_rule(
            session,
            world.accounts["a"],
            analysis_store.RuleRequest("appointment", ["appointment"], "caller", 25, "sales"),
            "test",
        )
        session.add(  # a rule an older version let in: shown as text whatever it holds
            AnalysisRule(account_id=world.accounts["a"], tag="odd", phrases=MARKUP, points=5)
        )
    runner = Runner(world.sessions, analysis_store.handlers(Weights()), "controller")
    assert runner.drain(threading.Event()) == 1
    browser = Browser(client)
    await browser.sign_in("alice")
    _, page = await browser.get(f"/calls/{call_id}")
    assert "Lead score <strong>57</strong> / 100 · sales" in page
    assert (
        'data-start="1.00" title="Caller said &quot;appointment&quot;">appointment · 0:01' in page
    )
    assert '<td>tag:appointment</td><td class="num">+25</td>' in page
    assert MARKUP not in page
    response = await client.get(
        f"/api/v1/calls/{call_id}/transcript", headers=bearer(world.tokens["alice"])
    )
    seen = (await response.json())["analysis"]
    assert seen["tags"] == ["appointment", "odd"] and seen["category"] == "sales"
    assert [s["name"] for s in seen["trace"]] == [
        "answered",
        "talk_time",
        "tag:appointment",
        "tag:odd",
    ]
    assert seen["score"] == 20 + 7 + 25 + 5  # 42 s of talk: 7 points
    assert seen["hits"][1]["phrase"] == MARKUP


async def test_another_tenants_rules_do_not_touch_a_call(world):
    call_a = world.calls["a"]
    transcribe(world, call_a)
    with world.sessions.begin() as session:
        queued = analysis_store.add_rule(
            session,
            world.accounts["b"],
            analysis_store.RuleRequest("appointment", ["appointment"], "any", 50),
            "test",
        )
        assert queued == 0  # client B has no transcribed call; client A's is not B's
    runner = Runner(world.sessions, analysis_store.handlers(Weights()), "controller")
    runner.drain(threading.Event())
    with world.sessions() as session:
        seen = analysis_store.read(session, call_a)
    assert seen is not None and seen.tags == [] and seen.score == 27


async def test_search_finds_what_was_said_in_ones_own_calls_and_keeps_no_query(world, client):
    transcribe(world, world.calls["a"])
    transcribe(world, world.calls["b"], [Word(0, 7.5, 8.0, 0.9, "appointment"), WORDS[2]])
    browser = Browser(client)
    await browser.sign_in("alice")
    _, page = await browser.get("/search?q=Appointment")
    assert f'href="/calls/{world.calls["a"]}#t=0.50"' in page  # the turn starts at 0.5 s
    assert world.calls["b"] not in page  # client B's call
    assert "<mark>appointment</mark>" in page
    _, page = await browser.get("/search?q=" + urllib.parse.quote(MARKUP))
    assert MARKUP not in page and "Nobody said that" not in page  # it was said, as words
    assert "<mark>&lt;img</mark>" in page
    _, page = await browser.get("/search?q=" + "x" * 300)
    assert "at most 200 characters" in page
    with world.sessions() as session:
        searches = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "transcripts.search")
        ).all()
    assert len(searches) == 2 and all("appointment" not in (e.detail or "") for e in searches)
    assert searches[0].detail == "1 result(s)"
    shown = reads(world, world.calls["a"])  # the call whose words both searches showed
    assert [(e.detail, e.account_id) for e in shown] == [
        ("a search result", world.accounts["a"])
    ] * 2

    owner = bearer(world.tokens["owner"])
    response = await client.get("/api/v1/transcripts/search?q=appointment", headers=owner)
    found = (await response.json())["results"]
    assert {r["call_id"] for r in found} == {world.calls["a"], world.calls["b"]}
    (theirs,) = [r for r in found if r["call_id"] == world.calls["b"]]
    assert theirs["start"] == 7.5 and theirs["matches"] == ["appointment"]
    assert all(dt.datetime.fromisoformat(r["started_at"]).utcoffset() == dt.timedelta(0)
               for r in found)  # with its zone, on SQLite as on PostgreSQL  # fmt: skip
    for bad in ("", "q=", "q=%20", "q=ok&limit=0", "q=ok&limit=x"):
        refused = await client.get(f"/api/v1/transcripts/search?{bad}", headers=owner)
        assert refused.status == 400, bad
    with world.sessions.begin() as session:
        _, calls_only = admin.add_api_key(session, "owner", "test", ["calls:read"])
    refused = await client.get("/api/v1/transcripts/search?q=a", headers=bearer(calls_only))
    assert refused.status == 403


async def test_the_status_page_says_whether_calls_are_transcribed(world):
    for off, said in (
        ("no model is installed <b>(x)</b>", "Off: no model is installed &lt;b&gt;(x)&lt;/b&gt;."),
        (None, "On: every sealed recording is transcribed"),
    ):
        client = await client_for(world, transcription_off=lambda off=off: off)
        try:
            browser = Browser(client)
            await browser.sign_in("analyst")
            _, page = await browser.get("/status")
            assert said in page
        finally:
            await client.close()


async def test_the_call_log_api_and_csv_carry_the_lead_score_and_tags(world, client):
    call_id = world.calls["a"]
    transcribe(world, call_id)
    with world.sessions.begin() as session:
        analysis_store.add_rule(
            session,
            world.accounts["a"],
            analysis_store.RuleRequest("appointment", ["appointment"], "caller", 25),
            "test",
        )
    Runner(world.sessions, analysis_store.handlers(Weights()), "controller").drain(
        threading.Event()
    )
    browser = Browser(client)
    await browser.sign_in("alice")
    _, page = await browser.get("/calls")
    assert '<span class="score">52</span> <span class="tag">appointment</span>' in page
    response = await client.get(f"/api/v1/calls/{call_id}", headers=bearer(world.tokens["alice"]))
    found = await response.json()
    assert (found["score"], found["tags"]) == (52, ["appointment"])
    _, csv = await browser.get("/calls.csv")
    header, *rows = csv.splitlines()
    assert header.endswith(",attribution,score")
    assert any(r.startswith(call_id) and r.endswith(",52") for r in rows)
    with world.sessions.begin() as session:  # derived from what was said: not for calls:read
        _, calls_only = admin.add_api_key(session, "owner", "test", ["calls:read"])
    narrow = await client.get(f"/api/v1/calls/{call_id}", headers=bearer(calls_only))
    assert ((await narrow.json())["score"], (await narrow.json())["tags"]) == (None, [])
