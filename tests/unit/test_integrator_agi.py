"""The integrator AGI scripts against a real SQLite database, with the channel played by the
test: arguments are checked once, anything hostile sets APPLIANCE_STATUS (never raises, never
reaches a dial string), and the ready flag is cleared first and set last, only on success."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from appliance.asterisk.agi_protocol import AgiRequest
from appliance.calls import variables as var
from appliance.calls.annotations import TAG
from appliance.calls.follow import CallFollower
from appliance.calls.model import NumberInfo, RoutingTable
from appliance.calls.routing import RoutePlan, Target
from appliance.calls.store import CallStore
from appliance.calls.writer import CallWriter
from appliance.db.engine import session_factory
from appliance.db.models import (
    Account,
    Call,
    CallAnalysis,
    CallNote,
    CallTag,
    DniSite,
    Lead,
    Recording,
    Source,
    TrackingNumber,
    Transcript,
    Visit,
)
from appliance.events import EventBus
from appliance.integrator import agi, args
from appliance.integrator.context import Services
from appliance.vocabulary import RingStrategy, TargetKind, is_call_id
from tests.hostile import STRINGS
from tests.made_once import migrated_sqlite

TRACKED = "+12025550123"
LINKEDID = "1700000000.1"
NOON = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)  # a Monday
NIGHT = RoutePlan(9, "Night", (Target(TargetKind.ENDPOINT, "night-desk"),))
SALES = RoutePlan(
    7,
    "Sales",
    (Target(TargetKind.NUMBER, "+12025550199", "carrier"), Target(TargetKind.ENDPOINT, "desk-1")),
    ring_timeout=20,
    strategy=RingStrategy.SEQUENTIAL,
    hours="mon-fri 09:00-17:00",
    timezone="UTC",
    after_hours=NIGHT,
)


class Channel:
    """Asterisk's side of the FastAGI connection: answers the linkedid, keeps what is set."""

    def __init__(self, linkedid: str | None = LINKEDID) -> None:
        self.linkedid = linkedid
        self.set: list[tuple[str, str]] = []

    async def set_variable(self, name: str, value: str) -> bool:
        self.set.append((name, value))
        return True

    async def get_full_variable(self, expression: str) -> str | None:
        assert expression == "${CHANNEL(linkedid)}"
        return self.linkedid


@pytest.fixture
def services(tmp_path):
    engine = migrated_sqlite(tmp_path / "agi.db")
    sessions = session_factory(engine)
    with sessions.begin() as session:
        account = Account(name="Clinic")
        session.add(account)
        session.flush()
        source = Source(account_id=account.id, name="Google Ads", medium="cpc")
        session.add(source)
        session.flush()
        session.add(TrackingNumber(account_id=account.id, e164=TRACKED, source_id=source.id))
    store = CallStore(sessions)
    writer = CallWriter(store, EventBus())
    table = RoutingTable(numbers=(NumberInfo(1, 1, TRACKED, SALES),), default=None)
    yield Services(sessions, writer, CallFollower(writer), lambda: table, lambda: NOON)
    engine.dispose()


async def run(services, script: str, *arguments: str, channel: Channel | None = None, **headers):
    channel = channel or Channel()
    request = AgiRequest(script, {f"agi_{k}": v for k, v in headers.items()}, tuple(arguments))
    answer = await agi.answer(services, script, request, channel)
    assert channel.set[0] == (var.READY, "")  # cleared before anything else
    assert set(answer) <= {*agi.SETS[script], var.STATUS, var.READY}  # as documented
    assert list(answer)[-1] == (var.READY if answer.get(var.STATUS) == "ok" else var.STATUS)
    return answer


def count(services, model) -> int:
    with services.sessions() as session:
        return session.query(model).count()


# track ----------------------------------------------------------------------------------------
async def test_agi_track_writes_the_record_once_and_answers_its_marketing(services):
    first = await run(services, "track", dnid=TRACKED, callerid="13125550111")
    again = await run(services, "track", TRACKED)
    assert first[var.STATUS] == "ok" and is_call_id(first[var.CALL_ID])
    assert first[var.SOURCE] == "Google Ads" and first[var.MEDIUM] == "cpc"
    assert first[var.NUMBER] == "1" and first[var.FIRST_TIME] == "1" and first[var.DNID] == TRACKED
    assert again[var.CALL_ID] == first[var.CALL_ID] and count(services, Call) == 1
    with services.sessions() as session:
        call = session.get(Call, first[var.CALL_ID])
        assert call.linkedid == LINKEDID and call.caller_number == "13125550111"


async def test_agi_track_takes_the_number_from_the_arguments_then_dnid_then_extension(services):
    assert (await run(services, "track", extension=TRACKED))[var.NUMBER] == "1"
    other = await run(services, "track", channel=Channel("1700000000.2"), extension="s")
    assert other == {var.STATUS: "bad-number"}


@pytest.mark.parametrize("linkedid", [None, "", "1.1;x", "x" * 65])
async def test_agi_track_without_a_readable_linkedid_does_nothing(services, linkedid):
    answer = await run(services, "track", TRACKED, channel=Channel(linkedid))
    assert answer == {var.STATUS: "no-channel"} and count(services, Call) == 0


# lookup ---------------------------------------------------------------------------------------
def visited(services, call_id: str) -> None:
    """The call came from a website visit with a keyword and click id, which sent a form."""
    now = dt.datetime.now(dt.UTC)
    with services.sessions.begin() as session:
        site = DniSite(account_id=1, name="site", key="k" * 32, origins="https://a.example",
                       replace_numbers=TRACKED)  # fmt: skip
        session.add(site)
        session.flush()
        session.add(Visit(id="v" * 32, site_id=site.id, account_id=1, visitor="w" * 32,
                          started_at=now, last_seen_at=now, source_name="google", medium="cpc",
                          keyword="braces, (cheap)", click_id_type="gclid",
                          landing_page="https://a.example/offer?x=${SHELL(id)}"))  # fmt: skip
        session.flush()
        fields = {"Your-Name": "Pat", "Email": "pat@example.com", "message": "hi"}
        session.add(Lead(account_id=1, site_id=site.id, visit_id="v" * 32, form="contact",
                         fields=json.dumps(fields)))  # fmt: skip
        call = session.get(Call, call_id)
        call.visit_id, call.attribution = "v" * 32, "held"
        session.add(Recording(call_id=call_id, file_name="f", file_id="f" * 32, key_id="k",
                              wrapped_key="w", audio_format="ulaw", plaintext_bytes=1,
                              seconds=1.0))  # fmt: skip
        session.flush()
        session.add(Transcript(call_id=call_id, model="m", seconds=1.0, words="[]"))
        session.flush()
        session.add(CallAnalysis(call_id=call_id, score=50, tags="[]", details="{}"))


async def test_agi_lookup_answers_visit_lead_tags_and_score_without_dialplan_syntax(services):
    call_id = (await run(services, "track", TRACKED))[var.CALL_ID]
    visited(services, call_id)
    await run(services, "tag", "vip", "sales")
    await run(services, "score", "+10")
    answer = await run(services, "lookup")
    assert answer[var.STATUS] == "ok" and answer[var.CALL_ID] == call_id
    assert answer[var.ATTRIBUTION] == "held" and answer[var.VISIT] == "v" * 32
    assert answer[var.KEYWORD] == "braces cheap" and answer[var.CLICK_ID_TYPE] == "gclid"
    assert answer[var.LANDING_PAGE] == "https://a.example/offer?x=SHELLid"
    assert answer[var.TAGS] == "sales,vip" and answer[var.SCORE] == "60"
    assert answer[var.LEAD_FORM] == "contact" and answer[var.LEAD_NAME] == "Pat"
    assert answer[var.LEAD_EMAIL] == "pat@example.com"
    given = await run(services, "lookup", call_id, channel=Channel("elsewhere.1"))
    assert given[var.CALL_ID] == call_id


async def test_agi_lookup_of_an_untracked_or_unknown_call_says_so(services):
    assert await run(services, "lookup") == {var.STATUS: "not-tracked"}
    assert await run(services, "lookup", "0" * 32) == {var.STATUS: "no-call"}
    assert await run(services, "lookup", "0" * 31) == {var.STATUS: "bad-call-id"}
    assert await run(services, "lookup", "0" * 32, "x") == {var.STATUS: "bad-args"}


# tag, score, note -----------------------------------------------------------------------------
async def test_agi_tag_score_and_note_on_a_given_call(services):
    call_id = (await run(services, "track", TRACKED))[var.CALL_ID]
    other = Channel("elsewhere.1")  # e.g. the agent's leg of another call
    assert (await run(services, "tag", "hot lead", call_id, channel=other))[var.TAGS] == "hot,lead"
    assert (await run(services, "score", "-20", call_id, channel=other))[var.SCORE] == "0"
    assert (await run(services, "note", "called, back", call_id, channel=other))[var.STATUS] == "ok"
    with services.sessions() as session:
        assert {t.tag for t in session.query(CallTag)} == {"hot", "lead"}
        assert [n.text for n in session.query(CallNote)] == ["called, back"]
        assert session.get(Call, call_id).score_adjustment == -20


async def test_agi_score_refuses_anything_but_points(services):
    await run(services, "track", TRACKED)
    assert await run(services, "score") == {var.STATUS: "bad-score"}
    assert await run(services, "score", "1.5") == {var.STATUS: "bad-score"}
    assert await run(services, "score", "5", "not-a-call") == {var.STATUS: "bad-call-id"}


async def test_agi_note_refuses_an_empty_note(services):
    await run(services, "track", TRACKED)
    assert await run(services, "note", " ") == {var.STATUS: "bad-note"}
    assert count(services, CallNote) == 0


# route ----------------------------------------------------------------------------------------
async def test_agi_route_answers_the_route_plan_s_dial_string(services):
    answer = await run(services, "route", "2025550123")
    assert answer == {
        var.CONNECT: "7",
        var.DIAL: "PJSIP/+12025550199@carrier",  # ringing in turn: its first attempt
        var.RING_TIMEOUT: "20",
        var.AFTER_HOURS: "",
        var.STATUS: "ok",
        var.READY: "1",
    }


async def test_agi_route_after_hours_follows_the_chain(services):
    night = Services(
        services.sessions,
        services.writer,
        services.calls,
        services.table,
        lambda: NOON.replace(hour=22),
    )
    answer = await run(night, "route", dnid=TRACKED)
    assert answer[var.CONNECT] == "9" and answer[var.DIAL] == "PJSIP/night-desk"
    assert answer[var.AFTER_HOURS] == "yes"


async def test_agi_route_of_an_unknown_number_without_a_default_route(services):
    assert await run(services, "route", "+12025550100") == {var.STATUS: "no-route"}


# hostile arguments ----------------------------------------------------------------------------
@pytest.mark.parametrize("raw", STRINGS)
async def test_hostile_arguments_set_a_status_and_reach_no_dial_string(services, raw):
    await run(services, "track", TRACKED)
    for script in agi.SCRIPTS:
        for arguments in [(raw,), (raw, raw), ("vip", raw)]:
            answer = await run(services, script, *arguments, dnid=raw, extension=raw)
            assert answer[var.STATUS]  # 'ok' only when the value is a fair one
            dial = answer.get(var.DIAL, "PJSIP/+12025550199@carrier")
            assert dial == "PJSIP/+12025550199@carrier"
            for name in (var.SOURCE, var.DNID, var.LEAD_NAME, var.CALL_ID):
                assert not set(answer.get(name, "")) & args.DIALPLAN_SPECIAL
            assert all(TAG.fullmatch(t) for t in (answer.get(var.TAGS) or "vip").split(","))


@pytest.mark.parametrize(
    ("text", "clean"),
    [
        ("a,b", "ab"),
        ("x\r\ny", "xy"),
        ("${SHELL(id)}", "SHELLid"),
        (None, ""),
        ("é" * 300, "é" * 200),
    ],
)
def test_free_text_for_the_channel_keeps_no_dialplan_syntax(text, clean):
    assert args.inert(text) == clean


async def test_a_script_that_fails_sets_error_and_never_raises(services, monkeypatch):
    def broken(*_):
        raise RuntimeError("database gone")

    monkeypatch.setattr("appliance.integrator.facts.call_of", broken)
    assert await run(services, "tag", "vip") == {var.STATUS: "error"}
