"""Recording control on calls in progress: pause and resume (AMI MixMonitorMute), and start
on demand. Starting happens in the dialplan, never through AMI's MixMonitor action (which needs
a class that can run commands): the controller sends the feature code as DTMF received on the
caller's channel, the dialplan checks the route's mode and the caller's opt-out again, starts
MixMonitor and says so with a user event, which this module waits for."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Mapping

from appliance.asterisk.ami import AmiClient, AmiError
from appliance.calls import variables as var
from appliance.calls.follow import CallFollower
from appliance.calls.store import CallStore
from appliance.calls.tracker import LiveCall
from appliance.vocabulary import RecordingMode

CODE_KEYS = "0123456789ABC*#"
CONFIRM_TIMEOUT = 3.0


def record_code(ami_secret: str) -> str:
    """The DTMF sequence of the on-demand recording feature: 'D' (a key phones lack) and
    seven keys derived from the AMI secret, so a caller can neither guess nor stumble on it."""
    digest = hmac.new(ami_secret.encode(), b"appliance record on demand", hashlib.sha256).digest()
    return "D" + "".join(CODE_KEYS[b % len(CODE_KEYS)] for b in digest[:7])


class CallNotLive(Exception):
    """No call in progress with that id."""


class RecordingRefused(Exception):
    """The call may not be recorded now; the message says why (for the API and the audit)."""


def refusal(call: LiveCall) -> str | None:
    """Why an on-demand start is refused, or None (pure, checked again by the dialplan)."""
    if call.restricted:
        return "the caller is on the restrict list: never recorded"
    if call.recording_mode != RecordingMode.ON_DEMAND:
        return "the route does not record on demand"
    if call.opted_out:
        return "the caller opted out of recording"
    if not call.connected:  # the code would reach the notice's Read() as a key press
        return "the call is not connected yet"
    if call.recording:
        return "the call is already being recorded"
    return None


class LiveRecordings:
    def __init__(self, store: CallStore, calls: CallFollower, ami: AmiClient, code: str) -> None:
        self.store = store
        self.calls = calls
        self.ami = ami
        self.code = code
        self.waiting: dict[str, asyncio.Future[Mapping[str, str]]] = {}

    async def live(self, call_id: str) -> tuple[str, LiveCall]:
        linkedid = await asyncio.to_thread(self.store.linkedid_of, call_id)
        call = self.calls.live(linkedid) if linkedid else None
        if linkedid is None or call is None:
            raise CallNotLive(call_id)
        return linkedid, call

    async def pause(self, call_id: str, paused: bool) -> None:
        """Mute both directions of the recording (e.g. while a card number is read)."""
        _, call = await self.live(call_id)
        if not call.recording:
            raise RecordingRefused("the call is not being recorded")
        await self.ami.action(
            {
                "Action": "MixMonitorMute",
                "Channel": call.channel,
                "Direction": "both",
                "State": "1" if paused else "0",
            }
        )

    async def start(self, call_id: str) -> None:
        linkedid, call = await self.live(call_id)
        reason = refusal(call)
        if reason:
            raise RecordingRefused(reason)
        answer = asyncio.get_running_loop().create_future()
        self.waiting[linkedid] = answer
        try:
            for key in self.code:
                await self.ami.action(
                    {"Action": "PlayDTMF", "Channel": call.channel, "Digit": key, "Receive": "yes"}
                )
            async with asyncio.timeout(CONFIRM_TIMEOUT):
                event = await answer
        except TimeoutError:
            raise AmiError("Asterisk did not confirm the recording") from None
        finally:
            self.waiting.pop(linkedid, None)
        if event.get("State") != "started":
            raise RecordingRefused(f"the dialplan refused: {event.get('Reason', 'unknown')}")

    def on_event(self, event: Mapping[str, str]) -> None:
        if event.get("Event") != "UserEvent" or event.get("UserEvent") != var.EVENT_RECORDING:
            return
        waiter = self.waiting.get(event.get("Linkedid", ""))
        if waiter is not None and not waiter.done():
            waiter.set_result(event)
