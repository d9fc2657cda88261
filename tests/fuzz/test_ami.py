"""The AMI boundary: what Asterisk's manager interface sends, read by panoramisk as the
controller runs it (a real socket, the appliance's login and reconnect logic) and followed by
the call tracker. No event may break the connection, make the tracker raise, or give a call
record a time or a text that cannot be stored."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
from collections.abc import Iterator, Mapping

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from appliance.asterisk.ami import AmiClient
from appliance.calls import variables as var
from appliance.calls.model import CallAnswered, CallStarted, CallWrite
from appliance.calls.outcome import CallOutcome
from appliance.calls.tracker import CallTracker
from tests.fuzz.harness import Finding, Unhandled, examples, probe

EVENTS = ("Newchannel", "UserEvent", "DialBegin", "DialEnd", "BridgeEnter", "HangupRequest",
          "Hangup", "VarSet", "Newstate")  # fmt: skip
USER_EVENTS = (var.EVENT_ROUTE, var.EVENT_CONSENT, var.EVENT_RECORDING)
KEYS = ("Channel", "Exten", "CallerIDNum", "CallerIDName", "DestUniqueid", "DialString",
        "DialStatus", "Cause", "Route", "Number", "Dialled", "AfterHours", "Recording",
        "Restricted", "OptedOut", "Prompt", "State", "Timestamp")  # fmt: skip
IDS = ("1795918175.4", "1795918175.5", "1795918176.9")
hostile = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "nan",
            "inf",
            "-inf",
            "1e400",
            "-1e30",
            "1e20",
            "NaN",
            "9" * 400,
            "-0",
            "ANSWER",
            "BUSY",
            "yes",
            "1",
            "<unknown>",
            "",
        ]
    ),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)


@st.composite
def events(draw: st.DrawFn) -> dict[str, object]:
    event: dict[str, object] = {
        "Event": draw(st.sampled_from(EVENTS) | st.text(max_size=10)),
        "Linkedid": draw(st.sampled_from(IDS) | hostile),
        "Uniqueid": draw(st.sampled_from(IDS) | hostile),
    }
    if event["Event"] == "UserEvent":
        event["UserEvent"] = draw(st.sampled_from(USER_EVENTS) | hostile)
    for key in draw(st.lists(st.sampled_from(KEYS), max_size=8)):
        event[key] = draw(hostile)
    if draw(st.booleans()):  # panoramisk gives a repeated header as a list of its values
        key = draw(st.sampled_from(sorted(event)))
        event[key] = [event[key], draw(hostile)]
    return event


def _storable(moment: object, what: str) -> None:
    if moment is None:
        return
    if not isinstance(moment, float | int) or not math.isfinite(moment):
        raise Finding(f"{what} is {moment!r}: not a time")
    try:
        dt.datetime.fromtimestamp(moment, dt.UTC)
    except (OverflowError, ValueError, OSError):
        raise Finding(f"{what} is {moment!r}: no date can hold it") from None


def check_write(item: CallWrite | None) -> None:
    if isinstance(item, CallStarted):
        _storable(item.started, "started")
        texts = (item.dialled, item.caller_number, item.caller_name)
    elif isinstance(item, CallAnswered):
        _storable(item.answered, "answered")
        texts = ()
    elif isinstance(item, CallOutcome):
        for name in ("started", "ended", "answered", "ring_started", "consent_at"):
            _storable(getattr(item, name), name)
        item.ring_seconds, item.talk_seconds  # noqa: B018  computed on every record
        if item.hangup_cause is not None and not 0 <= item.hangup_cause < 2**31:
            raise Finding(f"hangup cause {item.hangup_cause}: no database integer holds it")
        texts = (item.dialled, item.caller_number, item.caller_name, item.answered_by or "")
    else:
        return
    for text in texts:
        if not isinstance(text, str) or not text.isprintable() or len(text) > 128:
            raise Finding(f"a record would keep {text!r}")


@given(st.lists(events(), max_size=25))
def test_the_tracker_takes_any_events_and_records_only_storable_calls(stream):
    tracker = CallTracker()
    with probe("AMI events (call tracker)"):
        for event in stream:
            check_write(tracker.feed(event))  # type: ignore[arg-type]
        for call in tracker.in_progress():
            _storable(call.started, "started")


# the wire ---------------------------------------------------------------------------------
def render(event: Mapping[str, object]) -> bytes:
    lines = []
    for key, value in event.items():
        for one in value if isinstance(value, list) else [value]:
            lines.append(f"{key}: {one}".replace("\r", "").replace("\n", ""))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "replace")


wire = st.one_of(
    st.lists(events(), min_size=1, max_size=6).map(lambda es: b"".join(map(render, es))),
    st.binary(max_size=300),
    st.lists(st.text(max_size=30), max_size=8).map(
        lambda ls: "\r\n".join(ls).encode("utf-8", "surrogatepass")
    ),
)
END = b"\r\n\r\nEvent: FuzzEnd\r\nUniqueid: end\r\nLinkedid: end\r\n\r\n"


class FakeAsterisk:
    """An AMI server on loopback that accepts the login and sends what the test gives it."""

    def __init__(self) -> None:
        self.writer: asyncio.StreamWriter | None = None
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        writer.write(b"Asterisk Call Manager/9.0.0\r\n")
        action: dict[str, str] = {}
        while line := await reader.readline():
            text = line.decode().strip()
            if text:
                key, _, value = text.partition(": ")
                action[key.lower()] = value
                continue
            answer = f"Response: Success\r\nActionID: {action.get('actionid', '')}\r\n"
            writer.write((answer + "Message: Authentication accepted\r\n\r\n").encode())
            action = {}


class Wire:
    def __init__(self) -> None:
        self.runner = asyncio.Runner()
        self.asterisk = FakeAsterisk()
        self.tracker = CallTracker()
        self.written: list[CallWrite] = []
        self.ended = asyncio.Event()
        self.failures: list[str] = []
        self.runner.run(self._start())

    async def _start(self) -> None:
        port = await self.asterisk.start()
        self.ami = AmiClient("127.0.0.1", port, "appliance", "secret", {0}, uid_of=lambda s: 0)
        self.ami.handlers.append(self._on_event)
        asyncio.get_running_loop().set_exception_handler(
            lambda _loop, context: self.failures.append(str(context.get("message")))
        )
        self.ami.start()
        async with asyncio.timeout(10):
            await self.ami.connected.wait()

    def _on_event(self, event: Mapping[str, str]) -> None:
        if event.get("Event") == "FuzzEnd":
            self.ended.set()
            return
        item = self.tracker.feed(event)
        if item is not None:
            self.written.append(item)

    async def send(self, data: bytes) -> None:
        self.ended.clear()
        assert self.asterisk.writer is not None
        self.asterisk.writer.write(data + END)
        async with asyncio.timeout(5):
            await self.ended.wait()

    def close(self) -> None:
        self.runner.run(self.ami.close())
        self.runner.close()


class Unhandling(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record.getMessage())


@pytest.fixture(scope="module")
def ami() -> Iterator[tuple[Wire, Unhandling]]:
    handler = Unhandling()
    logging.getLogger("appliance.asterisk.ami").addHandler(handler)
    wire = Wire()
    yield wire, handler
    wire.close()
    logging.getLogger("appliance.asterisk.ami").removeHandler(handler)


@given(wire)
@examples(ci=60)
def test_any_bytes_from_asterisk_keep_the_connection_and_the_tracker_whole(ami, data):
    wire, unhandled = ami
    assume(b"shutdown" not in data.lower())  # Asterisk going away: the connection ends, rightly
    logins = wire.ami.logins
    with probe("AMI stream (socket, panoramisk, tracker)", hang=20):
        try:
            wire.runner.run(wire.send(data))
        except TimeoutError:
            raise Finding("the events after this data never reached the tracker") from None
        if wire.failures or unhandled.records:
            found = wire.failures + unhandled.records
            wire.failures.clear(), unhandled.records.clear()
            raise Unhandled(f"the AMI connection or the tracker failed: {found}")
        if wire.ami.logins != logins or not wire.ami.is_connected:
            raise Finding("the connection dropped")
        for item in wire.written:
            check_write(item)
        wire.written.clear()


# what the fuzzing found, kept -------------------------------------------------------------
NEW = {"Event": "Newchannel", "Linkedid": IDS[0], "Uniqueid": IDS[0], "Channel": "PJSIP/x-1",
       "Exten": "12025550123", "Timestamp": "1795918175.7"}  # fmt: skip
ROUTE = {"Event": "UserEvent", "UserEvent": var.EVENT_ROUTE, "Linkedid": IDS[0], "Uniqueid": IDS[0]}


def test_regression_a_repeated_header_is_not_read_as_a_value():
    tracker = CallTracker()
    assert tracker.feed({**NEW, "Linkedid": [IDS[0], IDS[1]]}) is None  # type: ignore[dict-item]
    assert tracker.feed({**NEW, "Uniqueid": [IDS[0]], "Timestamp": ["1", "2"]}) is None  # type: ignore[dict-item]
    assert tracker.calls == {}


@pytest.mark.parametrize("moment", ["nan", "inf", "-inf", "1e400", "-5", "1e20"])
def test_regression_a_timestamp_that_is_no_time_gives_the_time_of_arrival(moment):
    tracker = CallTracker()
    tracker.feed({**NEW, "Timestamp": moment})
    started = tracker.feed({**ROUTE, "Timestamp": moment})
    assert isinstance(started, CallStarted)
    check_write(started)


def test_regression_a_hangup_cause_of_hundreds_of_digits_is_no_cause():
    tracker = CallTracker()
    tracker.feed(NEW)
    outcome = tracker.feed({**NEW, "Event": "Hangup", "Cause": "9" * 400})
    assert isinstance(outcome, CallOutcome) and outcome.hangup_cause is None


async def test_regression_a_repeated_event_header_leaves_the_connection_up():
    """panoramisk's protocol failed on it, and the AMI connection dropped."""
    wire = await asyncio.to_thread(Wire)
    try:
        logins = wire.ami.logins
        await asyncio.to_thread(wire.runner.run, wire.send(b"Event: A\r\nEvent: B\r\n\r\n"))
        assert wire.ami.is_connected and wire.ami.logins == logins and not wire.failures
    finally:
        await asyncio.to_thread(wire.close)
