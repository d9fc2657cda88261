"""Every route shape, compiled into the real Asterisk's dialplan, sends calls where the pure
routing decision says: two SIPp phones (one behind the carrier trunk, one a SIP endpoint of
the appliance) see who is rung, in which order, and what they hear first."""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import socket
import subprocess
import threading
from zoneinfo import ZoneInfo

import pytest

from appliance import admin
from appliance.calls.routing import RoutePlan, decide
from appliance.calls.schedule import DAYS
from appliance.db.engine import make_engine, session_factory
from tests.harness import (
    SIPP_DIR,
    Stack,
    first,
    free_port,
    invited,
    sip_messages,
    sipp_call,
    wait_for,
)

CALLER = "13125550111"
CARRIER_TARGET = "+12025550199"
PROMPT = "tt-weasels"  # 2.96 s


def add_desk_phone(stack: Stack) -> int:
    """A SIP endpoint 'desk-1' of the appliance (the admin's own pjsip_local.conf)."""
    port = free_port(socket.SOCK_DGRAM)
    (stack.asterisk_dir_on_host / "etc" / "pjsip_local.conf").write_text(
        "[desk-1]\ntype = endpoint\ncontext = nowhere\ndisallow = all\nallow = ulaw\n"
        "direct_media = no\naors = desk-1\n\n"
        f"[desk-1]\ntype = aor\ncontact = sip:desk-1@127.0.0.1:{port}\n"
    )
    return port


@pytest.fixture
def shapes(stack: Stack):
    """One appliance with a number per route shape; the default route rings +12025550177."""
    stack.appliance(
        "trunk", "add", "carrier", "--host", "127.0.0.1", "--port", str(stack.phone_port)
    )
    carrier = ("--forward", CARRIER_TARGET, "--trunk", "carrier")
    routes = {
        "101": ("Both", *carrier, "--endpoint", "desk-1"),
        "102": (
            "Turns",
            *carrier,
            "--endpoint",
            "desk-1",
            "--strategy",
            "sequential",
            "--ring-timeout",
            "2",
        ),
        "103": ("Hello", *carrier, "--announce", PROMPT),
        "104": ("Whisper", *carrier, "--whisper", PROMPT),
        "105": ("Hook", *carrier, "--dynamic"),
        "106": ("Desk", "--endpoint", "desk-1"),
    }
    stack.appliance(
        "route", "add", "Night", "--forward", "+12025550177", "--trunk", "carrier", "--default"
    )
    for suffix, (name, *options) in routes.items():
        stack.appliance("route", "add", name, *options)
        stack.appliance("number", "add", f"+12025550{suffix}", "--route", name)
    stack.appliance("config", "render")
    stack.desk_port = add_desk_phone(stack)
    stack.start_asterisk()
    stack.start_controller()
    return stack


def test_simultaneous_rings_every_target_at_once(shapes: Stack, phone):
    carrier, desk = phone(), phone(scenario="phone_ring.xml", port=shapes.desk_port)
    assert sipp_call(shapes, "12025550101", CALLER, "Jane", talk_ms=300).returncode == 0
    (call,) = shapes.finished()
    assert call["answered_by"] is None or call["answered_by"] == f"{CARRIER_TARGET}@carrier"
    assert invited(carrier.trace) == [CARRIER_TARGET] and invited(desk.trace) == ["desk-1"]
    assert call["ring_seconds"] < 1.5 and call["route_name"] == "Both"


def test_sequential_rings_one_target_after_the_other(shapes: Stack, phone):
    carrier = phone(scenario="phone_ring.xml")
    desk = phone(port=shapes.desk_port)
    assert sipp_call(shapes, "12025550102", CALLER, "Jane", talk_ms=300).returncode == 0
    (call,) = shapes.finished()
    assert call["answered_by"] == "desk-1"
    assert invited(carrier.trace) == [CARRIER_TARGET] and invited(desk.trace) == ["desk-1"]
    assert call["ring_seconds"] >= 2  # the carrier target rang its 2 s alone first
    carrier_rang = first(sip_messages(carrier.trace.read_text()), False, "INVITE")
    desk_rang = first(sip_messages(desk.trace.read_text()), False, "INVITE")
    assert desk_rang - carrier_rang >= 1.9


def test_announcement_answers_the_caller_before_anyone_is_rung(shapes: Stack, phone):
    carrier = phone()
    result = sipp_call(shapes, "12025550103", CALLER, "Jane", talk_ms=5000)
    assert result.returncode == 0, result.output
    answered = first(sip_messages(result.messages), False, "SIP/2.0 200")
    rung = first(sip_messages(carrier.trace.read_text()), False, "INVITE")
    assert rung - answered >= 2.5  # the prompt (2.96 s) played in between
    assert shapes.finished()[0]["route_name"] == "Hello"


def test_whisper_plays_to_whoever_answers_before_the_caller_is_connected(shapes: Stack, phone):
    carrier = phone()
    result = sipp_call(shapes, "12025550104", CALLER, "Jane", talk_ms=300)
    assert result.returncode == 0, result.output
    picked_up = first(sip_messages(carrier.trace.read_text()), True, "SIP/2.0 200")
    connected = first(sip_messages(result.messages), False, "SIP/2.0 200")
    assert connected - picked_up >= 2.5


def test_dynamic_route_asks_the_controller_and_connects(shapes: Stack, phone):
    carrier = phone()
    assert sipp_call(shapes, "12025550105", CALLER, "Jane", talk_ms=300).returncode == 0
    (call,) = shapes.finished()
    assert shapes.counter("agi_answered") == 1
    assert call["route_name"] == "Hook" and invited(carrier.trace) == [CARRIER_TARGET]


class ForgedController:
    """Whatever holds the FastAGI port (here: the test, as root) answering dynamic routes."""

    def __init__(self, port: int, answer: list[tuple[str, str]]) -> None:
        self.port, self.answer, self.asked = port, answer, 0
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(5)

    async def _start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def _serve(self, reader, writer) -> None:
        self.asked += 1
        while (await reader.readline()).strip():
            pass
        for name, value in self.answer:
            writer.write(f'SET VARIABLE {name} "{value}"\n'.encode())
            await reader.readline()
        writer.close()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)


def route_id(stack: Stack, name: str) -> int:
    return stack.query("SELECT id FROM routes WHERE name = ?", name)[0]["id"]


@pytest.mark.parametrize(
    ("answer", "connected"),
    [
        ([("APPLIANCE_CONNECT", "{desk}"), ("APPLIANCE_READY", "1")], "Desk"),
        ([("APPLIANCE_CONNECT", "{desk}")], "Hook"),  # no ready flag: not taken
        ([("APPLIANCE_READY", "1"), ("APPLIANCE_CONNECT", "{desk}")], "Desk"),
        ([("APPLIANCE_CONNECT", "999999"), ("APPLIANCE_READY", "1")], "Hook"),
        ([("APPLIANCE_CONNECT", "{desk},s,1)"), ("APPLIANCE_READY", "1")], "Hook"),
        ([("APPLIANCE_CONNECT", "PJSIP/+19005550100@carrier"), ("APPLIANCE_READY", "1")], "Hook"),
        ([("APPLIANCE_AFTER_HOURS", "yes,Route: 1"), ("APPLIANCE_READY", "1")], "Hook"),
    ],
)
def test_a_dynamic_answer_is_taken_only_complete_and_naming_a_compiled_route(
    shapes: Stack, phone, answer, connected
):
    """The FastAGI answer can only pick one of the compiled routes, and only once its ready
    flag is set; anything else (partial, unknown, dial strings) leaves the compiled route."""
    controller = shapes.processes.pop()
    controller.kill()
    controller.wait()
    desk = str(route_id(shapes, "Desk"))
    forged = ForgedController(shapes.agi_port, [(n, v.format(desk=desk)) for n, v in answer])
    try:
        carrier, desk_phone = phone(), phone(port=shapes.desk_port)
        assert sipp_call(shapes, "12025550105", CALLER, "Jane", talk_ms=300).returncode == 0
        assert forged.asked == 1
    finally:
        forged.close()
    shapes.start_controller()
    (call,) = shapes.finished()
    assert call["route_name"] == connected and call["after_hours"] == 0
    assert invited(desk_phone.trace if connected == "Desk" else carrier.trace)
    assert "19005550100" not in carrier.trace.read_text()


def test_a_dynamic_route_connects_without_the_controller(shapes: Stack, phone):
    controller = shapes.processes.pop()
    controller.kill()
    controller.wait()
    carrier = phone()
    assert sipp_call(shapes, "12025550105", CALLER, "Jane", talk_ms=300).returncode == 0
    assert invited(carrier.trace) == [CARRIER_TARGET]


def test_a_dynamic_route_connects_while_the_controller_is_stuck(shapes: Stack, phone):
    """A controller that cannot answer (stopped here; stuck or out of descriptors in real
    life) still holds the FastAGI port, so the kernel accepts Asterisk's connection and
    nobody serves it: Asterisk's own deadline ends the wait and the call takes its compiled
    route, where it would wait in dead air until the caller gave up."""
    controller = shapes.processes[-1]
    carrier = phone()
    controller.send_signal(signal.SIGSTOP)
    try:
        result = sipp_call(shapes, "12025550105", CALLER, "Jane", talk_ms=300)
    finally:
        controller.send_signal(signal.SIGCONT)
    assert result.returncode == 0, result.output
    assert invited(carrier.trace) == [CARRIER_TARGET]
    (call,) = shapes.finished()
    assert call["route_name"] == "Hook"


# Business hours, at the boundaries --------------------------------------------------------
ZONES = ("Asia/Kathmandu", "America/St_Johns", "UTC", "Pacific/Chatham")
# (first minute, minute after the last) relative to the minute a call is placed in
WINDOWS = {
    "starts now": (0, 1),
    "ended a moment ago": (-1, 0),
    "starts next minute": (1, 2),
    "from now, for a day": (0, 24 * 60 - 1),
    "from yesterday, until next minute": (-24 * 60 + 2, 1),
    "until now": (-3, 0),
}
MINUTE = dt.timedelta(minutes=1)
MINUTES_PREPARED = 3  # the routes' windows are written around each of the next 3 minutes
MARGIN = dt.timedelta(seconds=4)  # a call is never placed in the last seconds of a minute


def hours(moment: dt.datetime, zone: str, start: int, end: int) -> str:
    """'day HH:MM-HH:MM' in `zone` for the minutes [start, end) around `moment`."""
    opens = (moment + dt.timedelta(minutes=start)).astimezone(ZoneInfo(zone))
    closes = (moment + dt.timedelta(minutes=end)).astimezone(ZoneInfo(zone))
    return f"{DAYS[opens.weekday()]} {opens:%H:%M}-{closes:%H:%M}"


def calling_minute() -> dt.datetime:
    """The minute a call placed now starts in. Within MARGIN of the next minute, that one
    (waiting at most MARGIN for it), so that the call's first event and its GotoIfTime fall
    in the same minute."""
    now = dt.datetime.now(dt.UTC)
    minute = now.replace(second=0, microsecond=0)
    if now + MARGIN < minute + MINUTE:
        return minute
    wait_for(
        lambda: dt.datetime.now(dt.UTC) >= minute + MINUTE,
        timeout=MARGIN.total_seconds() + 1,
        what="the next minute",
    )
    return minute + MINUTE


def test_business_hours_switch_exactly_at_the_boundaries_in_every_zone(stack: Stack, phone):
    """Routes whose hours open or close at the very minute a call is placed, in time zones a
    quarter or half an hour off UTC and across midnight: Asterisk's GotoIfTime and the pure
    decision agree on every call. Each window is written around each of the next minutes,
    and a call dials the route written around the minute it is placed in: no waiting for a
    minute to begin (tests/unit/test_dialplan_hours.py walks every boundary of a week)."""
    stack.appliance(
        "trunk", "add", "carrier", "--host", "127.0.0.1", "--port", str(stack.phone_port)
    )
    forward = ("--forward", CARRIER_TARGET, "--trunk", "carrier")
    stack.appliance("route", "add", "Night", *forward)
    stack.appliance("config", "render")
    stack.start_asterisk()
    stack.start_controller()
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    minutes = [now + index * MINUTE for index in range(MINUTES_PREPARED)]
    reloads = stack.counter("dialplan_reloads")  # before the change: none can be missed
    routes = add_hours_routes(stack, minutes)
    wait_for(lambda: stack.counter("dialplan_reloads") > reloads, what="the routes in Asterisk")
    phone(calls=len(WINDOWS))  # SIPp gives up after 60 s of nothing
    placed = {}
    for window in WINDOWS:
        minute = calling_minute()
        assert minute in minutes, "the calls took longer than the minutes prepared for them"
        number, plan = routes[minute, window]
        assert sipp_call(stack, number.lstrip("+"), CALLER, "Jane", talk_ms=100).returncode == 0
        placed[number] = (minute, plan)
    outcomes = {}
    for row in stack.finished(len(WINDOWS)):
        minute, plan = placed[row["dialled"]]
        started = dt.datetime.fromisoformat(row["started_at"]).replace(tzinfo=dt.UTC)
        assert started.replace(second=0, microsecond=0) == minute, (started, plan.hours)
        expected = decide(plan, started)
        outcomes[plan.name] = (row["route_name"], bool(row["after_hours"]))
        assert outcomes[plan.name] == (expected.route.name, expected.after_hours), plan.hours
    assert len(outcomes) == len(WINDOWS)
    assert {after for _, after in outcomes.values()} == {True, False}, outcomes


def add_hours_routes(
    stack: Stack, minutes: list[dt.datetime]
) -> dict[tuple[dt.datetime, str], tuple[str, RoutePlan]]:
    """A route per window around each of `minutes`, each window in another zone, written
    straight into the database as the CLI would (the controller compiles them within
    seconds); by minute and window, the route's number and plan."""
    engine = make_engine(f"sqlite:///{stack.database}")
    night = RoutePlan(id=0, name="Night", targets=())
    routes = {}
    with session_factory(engine).begin() as session:
        for offset, moment in enumerate(minutes):
            for index, (window, (start, end)) in enumerate(WINDOWS.items()):
                zone = ZONES[index % len(ZONES)]
                text = hours(moment, zone, start, end)
                name = f"{window} @ {moment:%H:%M}"
                request = admin.RouteRequest(
                    name,
                    forward_to=[CARRIER_TARGET],
                    trunk="carrier",
                    hours=text,
                    timezone=zone,
                    after_hours="Night",
                )
                admin.add_route(session, request)
                number = f"+120255502{offset}{index}"
                admin.add_number(session, admin.NumberRequest(number, route=name))
                plan = RoutePlan(
                    len(routes) + 1, name, (), hours=text, timezone=zone, after_hours=night
                )
                routes[moment, window] = (number, plan)
    engine.dispose()
    return routes


# The carrier side -------------------------------------------------------------------------
HOSTILE_NUMBERS = [
    "19005550100",
    "+4420712345678",
    "011442071234567",
    "12025550123&PJSIP",
    "*99",
    "%2B1900",
    "1;x=1",
    "0",
    "12025550123,1,System(id)",
]


def test_nothing_reachable_from_an_inbound_call_dials_what_the_caller_chose(shapes: Stack, phone):
    """Toll fraud: whatever number a caller sends, only destinations an admin configured are
    ever dialled over the trunk."""
    carrier = phone(calls=len(HOSTILE_NUMBERS))
    for number in HOSTILE_NUMBERS:
        sipp_call(shapes, number, CALLER, "Jane", talk_ms=100)
    assert set(invited(carrier.trace)) <= {"+12025550177"}  # the default route's target
    assert len(invited(carrier.trace)) >= 3


@pytest.mark.parametrize(
    ("source", "match"), [("127.0.0.2", "127.0.0.1"), ("127.0.0.1", "127.0.0.2")]
)
def test_a_call_from_another_address_claiming_the_trunk_is_refused(
    stack: Stack, phone, source, match
):
    """The trunk matches one address; an INVITE from another one, with the trunk's name as its
    From user, finds no endpoint and is refused before any dialplan runs."""
    stack.appliance(
        "trunk",
        "add",
        "carrier",
        "--host",
        "127.0.0.1",
        "--port",
        str(stack.phone_port),
        "--match",
        match,
    )
    stack.appliance(
        "route", "add", "Any", "--forward", CARRIER_TARGET, "--trunk", "carrier", "--default"
    )
    stack.appliance("config", "render")
    stack.start_asterisk()
    stack.start_controller()
    carrier = phone()
    result = sipp_call(stack, "12025550123", "carrier", "carrier", talk_ms=100, source=source)
    assert 200 not in result.responses and set(result.responses) & {401, 403}, result.responses
    assert invited(carrier.trace) == []
    allowed = sipp_call(stack, "12025550123", CALLER, "Jane", talk_ms=100, source=match)
    assert allowed.returncode == 0 and invited(carrier.trace) == [CARRIER_TARGET]
    (call,) = stack.finished()  # the refused INVITE left no call behind
    assert call["caller_number"] == CALLER


def register(stack: Stack, name: str, password: str, port: int) -> subprocess.CompletedProcess:
    """SIPp as the phone `name` registering from 127.0.0.1:port with its password."""
    return subprocess.run(
        ["sipp", f"127.0.0.1:{stack.sip_port}", "-sf", str(SIPP_DIR / "phone_register.xml"),
         "-i", "127.0.0.1", "-p", str(port), "-s", name, "-au", name, "-ap", password,
         "-m", "1", "-nostdin", "-timeout", "20s", "-timeout_error"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_an_appliance_phone_registers_with_its_password_and_takes_calls(stack: Stack, phone):
    """Trunks and phones added while everything runs reach Asterisk without a render."""
    stack.appliance("config", "render")
    stack.start_asterisk()
    stack.start_controller()
    reloads = stack.counter("pjsip_reloads")
    added = stack.appliance("endpoint", "add", "desk-9", "--label", "Front desk")
    password = added.stdout.split("password (shown once): ")[1].split()[0]
    assert password not in stack.appliance("endpoint", "list").stdout
    # the carrier sends from another address than the phone: an address is one trunk's
    stack.appliance("trunk", "add", "carrier", "--host", "127.0.0.2")
    stack.appliance("route", "add", "Desk", "--endpoint", "desk-9")
    stack.appliance("number", "add", "+12025550106", "--route", "Desk")
    wait_for(
        lambda: (
            "desk-9" in stack.asterisk_cli("pjsip show endpoints").stdout
            and "carrier" in stack.asterisk_cli("pjsip show endpoints").stdout
        ),
        timeout=15,
        what="Asterisk to have the new phone and trunk",
    )
    wait_for(
        lambda: "+12025550106" in stack.asterisk_cli("dialplan show appliance-inbound").stdout,
        timeout=15,
        what="the number compiled",
    )
    assert stack.counter("pjsip_reloads") > reloads
    port = free_port(socket.SOCK_DGRAM)
    assert register(stack, "desk-9", "not-" + password, port).returncode != 0
    assert register(stack, "desk-8", password, port).returncode != 0
    result = register(stack, "desk-9", password, port)
    assert result.returncode == 0, result.stdout + result.stderr
    desk = phone(port=port)
    answered = sipp_call(stack, "12025550106", CALLER, "Jane", talk_ms=300, source="127.0.0.2")
    assert answered.returncode == 0, answered.output
    (call,) = stack.finished()
    assert call["answered_by"] == "desk-9" and call["route_name"] == "Desk"
    assert invited(desk.trace) == ["desk-9"]


def test_registration_trunks_report_what_their_carrier_answered(stack: Stack, phone):
    """Trunks added while everything runs register at once; /health (for a token) and the
    trunks page say whether each carrier took the registration."""
    stack.appliance("config", "render")
    stack.start_asterisk()
    stack.start_controller()
    good_port, bad_port = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
    phone(scenario="registrar_ok.xml", port=good_port)
    phone(scenario="registrar_refuse.xml", port=bad_port)
    for name, port, match in (("good", good_port, "127.0.0.3"), ("bad", bad_port, "127.0.0.4")):
        stack.appliance(
            "trunk", "add", name, "--kind", "registration", "--host", "127.0.0.1",
            "--port", str(port), "--username", "acme", "--match", match, "--password-stdin",
            input="a-carrier-password\n",
        )  # fmt: skip
    wait_for(
        lambda: (stack.health() or {}).get("trunks") == {"bad": "Rejected", "good": "Registered"},
        timeout=20,
        what="both registrations reported",
    )
