"""A call's lifecycle reaches a webhook subscribed to every event: a recorded SIPp call through
the real Asterisk sends call.started and call.answered while it goes on, call.ended and
recording.ready after it, each signed and naming the same call; a real Vosk worker's first
transcript sends transcript.ready."""

from __future__ import annotations

import http.server
import json
import threading
import time

import pytest
from sqlalchemy import select

from appliance import admin
from appliance.conversions.signing import verify
from appliance.conversions.store import EVENTS
from appliance.db.models import Call, Delivery, Destination
from tests.harness import Stack, free_port, wait_for
from tests.integration.test_recordings import consent_stack, speaking
from tests.integration.test_transcription import (  # noqa: F401 - model_dir is a fixture
    Box,
    conversation,
    model_dir,
    transcribed,
)


class _Receiver(http.server.BaseHTTPRequestHandler):
    """A webhook receiver: keeps each request's headers and body, answers 204."""

    received: list[tuple[dict[str, str], bytes]]

    def do_POST(self) -> None:  # the name http.server calls
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def receiver():
    received: list[tuple[dict[str, str], bytes]] = []
    handler = type("Receiver", (_Receiver,), {"received": received})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()


def genuine(secret: str, received) -> dict[str, dict]:
    """Each event received, by name, after checking its signature as the guide says."""
    events = {}
    for headers, body in list(received):
        stamp, signature = headers["X-Appliance-Timestamp"], headers["X-Appliance-Signature"]
        assert verify(secret, stamp, body, signature, time.time()), body
        event = json.loads(body)
        assert headers["X-Appliance-Event"] == event["event"]
        assert event["event"] not in events, f"{event['event']} received twice"
        events[event["event"]] = event
    return events


def test_event_call_started_answered_ended_and_recording_ready_reach_a_webhook_signed(
    stack: Stack, phone, receiver
):
    hook_url, received = receiver
    stack.extra_env["APPLIANCE_DESTINATIONS_ALLOWED_NETWORKS"] = "127.0.0.1/32"  # the receiver
    consent_stack(stack, consent=False)
    every = [arg for event in EVENTS for arg in ("--event", event)]
    added = stack.appliance("destination", "add", "CRM", "webhook", "--url", hook_url, *every)
    secret = added.stdout.split("signing secret (shown once): ")[1].strip()

    phone(scenario="phone_speech.xml")
    call = speaking(stack, talk_ms=8000)
    try:
        live = wait_for(
            lambda: (
                {"call.started", "call.answered"} <= set(genuine(secret, received))
                and genuine(secret, received)
            ),
            timeout=20,
            what="call.started and call.answered",
        )
        assert call.poll() is None, "the call's start and answer came only after it ended"
    finally:
        assert call.wait(30) == 0
    (row,) = stack.finished(1)
    assert "call.ended" not in live and "recording.ready" not in live

    events = wait_for(
        lambda: len(received) >= 4 and genuine(secret, received),
        timeout=30,
        what="call.ended and recording.ready",
    )
    assert set(events) == {"call.started", "call.answered", "call.ended", "recording.ready"}
    assert {e["data"]["call_id"] for e in events.values()} == {row["id"]}
    assert {e["id"] for e in events.values()} == {
        f"call-{row['id']}-started", f"call-{row['id']}-answered", f"call-{row['id']}",
        f"call-{row['id']}-recording",
    }  # fmt: skip
    for event in events.values():
        assert event["data"]["dialled"] == "+12025550123"
        assert event["data"]["caller_number"] == row["caller_number"]
        assert event["data"]["restricted"] is False
    started, answered = events["call.started"], events["call.answered"]
    assert started["occurred_at"] < answered["occurred_at"]
    assert events["call.ended"]["data"]["disposition"] == "answered"
    (recording,) = stack.query("SELECT * FROM recordings")
    assert events["recording.ready"]["data"]["seconds"] == recording["seconds"] > 5
    assert recording["file_name"] not in json.dumps(events["recording.ready"])
    wait_for(  # nothing else was queued
        lambda: (
            [d["state"] for d in stack.query("SELECT state FROM deliveries")] == ["delivered"] * 4
        ),
        what="the four deliveries marked delivered",
    )


def test_event_transcript_ready_once_a_real_worker_stores_the_transcript(
    tmp_path,
    model_dir,  # noqa: F811 - the fixture
):
    box = Box(tmp_path / "data", f"sqlite:///{tmp_path}/t.db", model_dir)
    try:
        with box.sessions.begin() as session:
            account = admin.default_account(session).id
            session.add(
                Destination(
                    account_id=account,
                    name="CRM",
                    kind="webhook",
                    url="https://crm.example/",
                    events="transcript.ready",
                )
            )
        audio = conversation(tmp_path)  # fmt: skip
        box.record("a" * 32, audio)
        with box.sessions.begin() as session:
            session.get(Call, "a" * 32).account_id = account
            assert session.scalars(select(Delivery)).all() == []  # not before the transcript
        transcribed(box, "a" * 32)
        with box.sessions() as session:
            (delivery,) = session.scalars(select(Delivery)).all()
        event = json.loads(delivery.payload)
        assert (delivery.event, event["event"]) == ("transcript.ready", "transcript.ready")
        assert event["id"] == f"call-{'a' * 32}-transcript"
        assert event["data"]["call_id"] == "a" * 32 and event["data"]["model"] == "ko"
        assert event["data"]["seconds"] == pytest.approx(len(audio) / 4 / 8000, abs=0.01)
    finally:
        box.close()
