"""Every hook, called where the appliance calls it, against a real SQLite database: what the
plugin gets (plain data, marked restricted where it is), and what its answer changes."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import pytest
from sqlalchemy import select

from appliance import events
from appliance.asterisk.agi_protocol import AgiRequest
from appliance.calls import variables as var
from appliance.calls.dialplan import Settings, compile_routes
from appliance.calls.dynamic import DynamicRoute
from appliance.calls.model import NumberInfo, RoutingTable
from appliance.calls.routing import RoutePlan, Target
from appliance.conversions import store as conversions
from appliance.db.engine import session_factory
from appliance.db.models import (
    Account,
    Call,
    CallNote,
    CallTag,
    ConversionRule,
    Delivery,
    Destination,
    DniSite,
    Lead,
    Recording,
    Transcript,
)
from appliance.plugins import builtin, hookimpl
from appliance.plugins.claims import RouteClaims
from appliance.plugins.manager import PluginManager
from appliance.plugins.sites import Decided, HookSites
from appliance.transcription import analysis_store
from appliance.transcription.analysis import Weights
from appliance.vocabulary import TargetKind
from tests.made_once import migrated_sqlite

CALL = "c" * 32


@pytest.fixture
def sessions(tmp_path):
    engine = migrated_sqlite(tmp_path / "hooks.db")
    factory = session_factory(engine)
    with factory.begin() as session:
        session.add(Account(id=1, name="Agency"))
        session.flush()
        session.add(
            Call(
                id=CALL,
                linkedid="1.1",
                account_id=1,
                dialled="+12025550123",
                caller_number="+13125550111",
                caller_name="Jane <b>",
                disposition="answered",
                talk_seconds=42.0,
                source_name="Google",
            )
        )
    yield factory
    engine.dispose()


class Recorder:
    """A plugin implementing every hook: remembers what it was given, answers `answers`."""

    def __init__(self, **answers: Any) -> None:
        self.seen: dict[str, dict[str, Any]] = {}
        self.answers = answers

    def _got(self, hook: str, **arguments: Any) -> Any:
        self.seen[hook] = arguments
        return self.answers.get(hook)

    @hookimpl
    def claims_route(self, route):
        return self._got("claims_route", route=route)

    @hookimpl
    def call_started(self, call, deciding):
        return self._got("call_started", call=call, deciding=deciding)

    @hookimpl
    def call_answered(self, call):
        return self._got("call_answered", call=call)

    @hookimpl
    def call_ended(self, call):
        return self._got("call_ended", call=call)

    @hookimpl
    def recording_stored(self, call, recording):
        return self._got("recording_stored", call=call, recording=recording)

    @hookimpl
    def transcript_ready(self, call, transcript):
        return self._got("transcript_ready", call=call, transcript=transcript)

    @hookimpl
    def analysis_done(self, call, analysis):
        return self._got("analysis_done", call=call, analysis=analysis)

    @hookimpl
    def lead_captured(self, lead):
        return self._got("lead_captured", lead=lead)

    @hookimpl
    def conversion_before_send(self, conversion):
        return self._got("conversion_before_send", conversion=conversion)


def manager(plugin: Recorder, name: str = "rec") -> PluginManager:
    plugins = PluginManager(timeout=2)
    plugins._register(plugin, name, "test")
    return plugins


def plain(value: Any) -> bool:
    """Plain data only: never an ORM object or a session."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(plain(v) for v in value)
    return value is None or isinstance(value, str | int | float | bool)


# the call's route -----------------------------------------------------------------------------
def plan(route_id: int, name: str, account: int = 1, **more: Any) -> RoutePlan:
    target = Target(TargetKind.ENDPOINT, f"desk-{route_id}")
    return RoutePlan(route_id, name, (target,), account_id=account, **more)


SALES, VIP, OTHER = plan(7, "Sales"), plan(8, "VIP"), plan(9, "Theirs", account=2)
TABLE = RoutingTable(
    (
        NumberInfo(1, 1, "+12025550105", SALES),
        NumberInfo(2, 1, "+12025550106", VIP),
        NumberInfo(3, 2, "+12025550107", OTHER),
    ),
    restricted={1: ("+13125550111",)},
)
SETTINGS = Settings("from-carrier", "agi://127.0.0.1:573")


def test_hook_claims_route_compiles_the_claimed_route_with_the_dynamic_step_only():
    class Claims(Recorder):
        @hookimpl
        def claims_route(self, route):
            return route["name"] == "Sales"

    claims = RouteClaims(manager(Claims()))
    table = RoutingTable(TABLE.numbers, claimed=claims(TABLE))
    assert table.claimed == {7}
    text = compile_routes(table, SETTINGS).text
    entry = text.split(f"[{var.ENTRY}7]")[1].split("\n[")[0]
    assert f"AGI({SETTINGS.agi_url}/" in entry and ",7,${CHANNEL(linkedid)})" in entry
    assert f"[{var.ENTRY}8]" not in text and f"[{var.ENTRY}9]" not in text
    assert text.count("AGI(") == 1


def dynamic(plugins: PluginManager) -> DynamicRoute:
    plugins.add_builtin(builtin.Routing(lambda: TABLE), builtin.NAME)
    return DynamicRoute(lambda: TABLE, plugins, Decided())


def agi(route: int = 7) -> AgiRequest:
    headers = {"agi_callerid": "13125550111", "agi_calleridname": "Jane", "agi_dnid": "12025550105"}
    return AgiRequest("route", headers, (str(route), "1700000000.1"))


def test_hook_call_started_while_deciding_overrides_the_route_sets_variables_and_tags():
    answer = {"route": 8, "variables": {"VIP_LEVEL": "gold"}, "tags": ["vip"]}
    plugin = Recorder(call_started=answer)
    route = dynamic(manager(plugin))
    said = asyncio.run(route(agi(), None))  # the step asks the channel nothing
    assert said == {
        "VIP_LEVEL": "gold",
        var.CONNECT: "8",
        var.AFTER_HOURS: "",
        var.READY: "1",
    }
    assert list(said)[-1] == var.READY
    seen = plugin.seen["call_started"]
    assert seen["deciding"] is True and plain(seen["call"])
    call = seen["call"]
    assert call["call_id"] is None and call["linkedid"] == "1700000000.1"
    assert call["route_id"] == 7 and call["account_id"] == 1 and call["number_id"] == 1
    assert call["restricted"] is True  # the caller is on account 1's restrict list
    assert route.decided.take("1700000000.1") == [("plugin:rec", ("vip",))]


@pytest.mark.parametrize(
    "answer",
    [
        {"route": 9},  # another account's route
        {"route": 8, "variables": {var.CONNECT: "9"}},
        {"route": 8, "variables": {"DYNAMIC_FEATURES": "automon"}},
        {"route": "PJSIP/+19005550100@carrier"},
        "8",
    ],
)
def test_hook_call_started_answers_that_fail_their_checks_leave_the_built_in_decision(answer):
    plugins = manager(Recorder(call_started=answer))
    said = asyncio.run(dynamic(plugins)(agi(), None))
    assert said == {var.CONNECT: "7", var.AFTER_HOURS: "", var.READY: "1"}
    assert plugins.listing()[0]["invalid"] == 1


def test_hook_call_started_after_the_record_is_written_when_no_plugin_decided(sessions):
    plugin = Recorder()
    sites = HookSites(manager(plugin), sessions, Decided())
    asyncio.run(sites.started(events.CallStarted(CALL, "1.1")))
    seen = plugin.seen["call_started"]
    assert seen["deciding"] is False and seen["call"]["call_id"] == CALL
    assert seen["call"]["caller_name"] == "Jane <b>" and plain(seen["call"])


def test_hook_call_started_is_not_called_twice_and_its_tags_land_on_the_record(sessions):
    plugin = Recorder()
    decided = Decided()
    decided.remember("1.1", [("plugin:vip", ("vip",))])
    asyncio.run(
        HookSites(manager(plugin), sessions, decided).started(events.CallStarted(CALL, "1.1"))
    )
    assert "call_started" not in plugin.seen
    with sessions() as session:
        rows = session.execute(select(CallTag.tag, CallTag.origin)).all()
    assert [tuple(r) for r in rows] == [("vip", "plugin:vip")]


def test_hook_call_answered_gets_the_call(sessions):
    plugin = Recorder()
    sites = HookSites(manager(plugin), sessions, Decided())
    asyncio.run(sites.plain("call_answered", events.CallAnswered(CALL, "1.1")))
    assert plugin.seen["call_answered"]["call"]["call_id"] == CALL


def test_hook_call_ended_gets_the_finished_call_from_the_bus(sessions):
    plugin = Recorder()
    bus = events.EventBus()
    sites = HookSites(manager(plugin), sessions, Decided())

    async def main() -> None:
        sites.subscribe(bus)
        bus.emit(events.CallFinished(CALL, "1.1", "answered", 42.0, 3.0))
        await asyncio.gather(*sites.tasks)

    asyncio.run(main())
    call = plugin.seen["call_ended"]["call"]
    assert call["disposition"] == "answered" and call["talk_seconds"] == 42.0
    assert call["source"] == "Google" and plain(call)


def test_hook_recording_stored_gets_the_call_and_its_recording(sessions):
    plugin = Recorder()
    sites = HookSites(manager(plugin), sessions, Decided())
    asyncio.run(sites.stored(events.RecordingSealed(CALL, "1.1", 12.5)))
    assert plugin.seen["recording_stored"]["recording"] == {"seconds": 12.5}
    assert plugin.seen["recording_stored"]["call"]["call_id"] == CALL


# inside jobs ----------------------------------------------------------------------------------
def analyse(sessions, plugins: PluginManager) -> None:
    with sessions.begin() as session:
        words = [[0, 0.0, 0.4, 1.0, "hello"], [1, 0.5, 0.9, 1.0, "quote"]]
        session.add(
            Recording(
                call_id=CALL,
                file_name="f",
                file_id="0" * 32,
                key_id="k",
                wrapped_key="w",
                audio_format="wav",
                plaintext_bytes=1,
                seconds=1.0,
            )
        )
        session.flush()
        session.add(Transcript(call_id=CALL, model="m", seconds=1.0, words=json.dumps(words)))
    handler = analysis_store.handlers(Weights(20, 15, 10, 30, -100), plugins)[analysis_store.KIND]
    with sessions.begin() as session:
        handler(session, CALL)


def test_hook_transcript_ready_gets_the_text_in_the_analysis_job(sessions):
    plugin = Recorder()
    analyse(sessions, manager(plugin))
    seen = plugin.seen["transcript_ready"]
    assert seen["transcript"] == {"text": "hello quote", "seconds": 1.0, "words": 2}
    assert seen["call"]["call_id"] == CALL


def test_hook_analysis_done_tags_points_and_note_become_annotations(sessions):
    answer = {"tags": ["hot"], "points": 12, "note": "called\nback"}
    plugin = Recorder(analysis_done=answer)
    analyse(sessions, manager(plugin, "scorer"))
    assert set(plugin.seen["analysis_done"]["analysis"]) == {"score", "category", "tags", "spam"}
    with sessions() as session:
        assert [tuple(r) for r in session.execute(select(CallTag.tag, CallTag.origin))] == [
            ("hot", "plugin:scorer")
        ]
        assert session.get(Call, CALL).score_adjustment == 12
        assert session.scalar(select(CallNote.text)) == "called back"


def test_hook_analysis_done_a_hostile_answer_changes_nothing(sessions):
    plugins = manager(Recorder(analysis_done={"tags": ["ok"], "points": 1000}))
    analyse(sessions, plugins)
    with sessions() as session:
        assert session.scalar(select(CallTag.tag)) is None
        assert not session.get(Call, CALL).score_adjustment
    assert plugins.listing()[0]["invalid"] == 1


def add_lead(sessions) -> int:
    with sessions.begin() as session:
        site = DniSite(
            account_id=1, name="s", key="k" * 32, origins="https://a.example", replace_numbers=""
        )
        session.add(site)
        session.flush()
        lead = Lead(
            account_id=1,
            site_id=site.id,
            form="contact",
            fields=json.dumps({"name": "Ada"}),
            created_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        )
        session.add(lead)
        session.add(ConversionRule(account_id=1, name="Form", applies_to="lead"))
        session.add(
            Destination(
                account_id=1,
                name="hook",
                kind="webhook",
                url="https://crm.example/hook",
                events="conversion.created",
            )
        )
        session.flush()
        return lead.id


def test_hook_lead_captured_gets_the_lead_in_the_lead_job(sessions):
    plugin = Recorder()
    lead_id = add_lead(sessions)
    with sessions.begin() as session:
        conversions.handlers(manager(plugin))[conversions.LEAD_JOB](session, str(lead_id))
    lead = plugin.seen["lead_captured"]["lead"]
    assert lead["lead_id"] == lead_id and lead["fields"] == {"name": "Ada"} and plain(lead)


@pytest.mark.parametrize(
    ("answer", "deliveries", "extra"),
    [
        (None, 1, None),
        ({"veto": True}, 0, None),
        ({"extra": {"crm_id": "A-1"}}, 1, {"rec": {"crm_id": "A-1"}}),
        ({"extra": {"crm_id": {"deep": 1}}}, 1, None),  # refused: sent without it
    ],
)
def test_hook_conversion_before_send_may_veto_or_enrich(sessions, answer, deliveries, extra):
    plugin = Recorder(conversion_before_send=answer)
    lead_id = add_lead(sessions)
    with sessions.begin() as session:
        conversions.on_lead(session, lead_id, manager(plugin))
    assert plugin.seen["conversion_before_send"]["conversion"]["name"] == "Form"
    with sessions() as session:
        sent = [json.loads(d.payload) for d in session.scalars(select(Delivery))]
    assert len(sent) == deliveries
    if sent:
        assert sent[0]["data"].get("plugins") == extra
