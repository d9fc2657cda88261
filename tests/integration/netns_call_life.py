"""A call's whole life inside a network namespace that has loopback and one other interface,
`egress0`, that every route off the box leads to: whatever the appliance (Asterisk,
the controller, the transcription workers) tries to send anywhere but loopback is seen there
and counted. Run by test_no_egress.py, which makes the namespace; skipped anywhere else.

The life: a call from the carrier to a tracking number, routed, recorded with speech both
ways, sealed, transcribed by a worker, analysed by a phrase rule; the call read back through
the API (call, transcript, recording) and the dashboard and call pages; a website visit
through the tracking listener. With no flow turned on nothing goes out; with a webhook turned
on, only the webhook's connection does."""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import socket
import ssl
import struct
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.harness import Stack, wait_for
from tests.integration.test_recordings import consent_stack, speech_call
from tests.integration.test_transcription import (  # noqa: F401 - model_dir is a fixture
    ANSWERER_SAYS,
    CALLER_SAYS,
    GRAMMAR,
    RATE,
    model_dir,
    speech,
)

IFACE = os.environ.get("APPLIANCE_EGRESS_IFACE", "")
pytestmark = pytest.mark.skipif(not IFACE, reason="run by test_no_egress.py inside its namespace")
WEBHOOK = ("203.0.113.10", 443)  # TEST-NET-3: reachable only through egress0
PROBE = ("198.51.100.7", 9)
# the kernel's own IPv6 housekeeping on any interface: router and neighbour discovery, MLD
KERNEL_ICMPV6 = {130, 131, 132, 133, 134, 135, 136, 143}


class Sniffer:
    """Every packet leaving through the interface, as (protocol, address, port)."""

    def __init__(self, iface: str) -> None:
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
        self.sock.bind((iface, 0))
        self.sock.settimeout(0.2)
        self.seen: list[tuple[str, str, int]] = []
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while self.running:
            try:
                frame, source = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            if source[2] != socket.PACKET_OUTGOING:
                continue
            found = _destination(frame)
            if found is not None:
                self.seen.append(found)

    def close(self) -> None:
        self.running = False
        self.thread.join()
        self.sock.close()


def _destination(frame: bytes) -> tuple[str, str, int] | None:
    kind = struct.unpack("!H", frame[12:14])[0]
    packet = frame[14:]
    if kind == 0x0800:
        header, proto = (packet[0] & 0x0F) * 4, packet[9]
        address = socket.inet_ntop(socket.AF_INET, packet[16:20])
        payload = packet[header:]
    elif kind == 0x86DD:
        proto = packet[6]
        address = socket.inet_ntop(socket.AF_INET6, packet[24:40])
        payload = packet[40:]
        if proto == 58 and payload[:1] and payload[0] in KERNEL_ICMPV6:
            return None
    else:
        return ("other", f"ethertype {kind:#06x}", 0)
    name = {6: "tcp", 17: "udp"}.get(proto, f"ip proto {proto}")
    port = struct.unpack("!H", payload[2:4])[0] if proto in (6, 17) else 0
    return (name, address, port)


@pytest.fixture
def sniffer():
    """The sniffer, proven to see a packet first (a test that could not fail is no test)."""
    watch = Sniffer(IFACE)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.sendto(b"probe", PROBE)
    wait_for(lambda: ("udp", *PROBE) in watch.seen, what="the probe packet seen")
    watch.seen.clear()
    yield watch
    watch.close()


class Admin:
    """The admin in a browser-like client: signs in (changing the one-time password), reads
    pages and the API."""

    def __init__(self, stack: Stack) -> None:
        self.base = f"https://127.0.0.1:{stack.http_port}"
        context = ssl.create_default_context(cafile=str(stack.data_dir / "tls" / "cert.pem"))
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=context),
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
        )
        made = stack.appliance("apikey", "add", "admin", "--scope", "calls:read", "--scope",
                               "recordings:read", "--name", "egress")  # fmt: skip
        self.token = made.stdout.rsplit(" ", 1)[1].strip()
        one_time = stack.appliance("user", "passwd", "admin").stdout
        one_time = one_time.split("one-time password: ")[1].split()[0]
        self.post("/login", {"username": "admin", "password": one_time})
        page = self.get("/password").decode()
        new = "a new password for the egress test"
        self.post("/password", {"current": one_time, "new": new, "again": new,
                                "csrf": _csrf(page)})  # fmt: skip

    def get(self, path: str, api: bool = False) -> bytes:
        headers = {"Authorization": f"Bearer {self.token}"} if api else {}
        request = urllib.request.Request(self.base + path, headers=headers)
        with self.opener.open(request, timeout=30) as response:
            return response.read()

    def post(self, path: str, form: dict[str, str]) -> bytes:
        data = urllib.parse.urlencode(form).encode()
        with self.opener.open(self.base + path, data=data, timeout=30) as response:
            return response.read()


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]{64})"', page)
    assert found, page[:300]
    return found.group(1)


def visit(stack: Stack, origin: str, key: str) -> dict:
    """What the snippet asks the tracking listener when a visitor opens a page."""
    context = ssl.create_default_context(cafile=str(stack.data_dir / "tls" / "cert.pem"))
    body = {"site": key, "visitor": "5" * 32, "url": f"{origin}/?utm_source=google",
            "referrer": "https://www.google.com/"}  # fmt: skip
    request = urllib.request.Request(
        f"https://127.0.0.1:{stack.tracking_port}/t/v1/number",
        data=json.dumps(body).encode(),
        headers={"Origin": origin, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, context=context, timeout=30) as response:
        return json.loads(response.read())


def whole_life(stack: Stack, phone, model_dir: Path, *setup: tuple[str, ...]) -> str:  # noqa: F811
    """Set up the box (plus `setup` commands), live one call's whole life; its call id."""
    stack.extra_env.update(
        APPLIANCE_TRANSCRIPTION_MODEL_DIR=str(model_dir),
        APPLIANCE_TRANSCRIPTION_GRAMMAR=GRAMMAR,
        APPLIANCE_DESTINATIONS_TIMEOUT="2",
    )
    origin = "https://shop.example"
    stack.appliance("analysis", "rule", "add", "booking", "--phrase", "예약", "--points", "25")
    stack.appliance("site", "add", "Shop", "--origin", origin, "--replace", "+12025550100")
    for command in setup:
        stack.appliance(*command)
    consent_stack(stack, consent=False)
    for name, words in (("caller.ulaw", CALLER_SAYS), ("callee.ulaw", ANSWERER_SAYS)):
        samples = speech(" ".join(words), stack.data_dir)
        subprocess.run(
            ["sox", "-t", "raw", "-r", str(RATE), "-c", "1", "-b", "16", "-e", "signed", "-L",
             "-", "-t", "ul", str(stack.data_dir / name)],
            input=samples.tobytes(),
            check=True,
        )  # fmt: skip
    key = stack.query("SELECT key FROM dni_sites")[0]["key"]
    stack.start_tracking()
    wait_for(lambda: stack.counter("dni_sites") == 1, what="the site loaded")
    assert visit(stack, origin, key)  # a website visit: a number or none, never a failure

    phone(scenario="phone_speech.xml")
    result = speech_call(stack, talk_ms=6000)
    assert result.returncode == 0, result.output
    (row,) = wait_for(lambda: stack.query("SELECT * FROM recordings"), timeout=20,
                      what="the sealed recording")  # fmt: skip
    call_id = row["call_id"]
    stack.processes.append(
        subprocess.Popen(
            [sys.executable, "-m", "appliance", "transcribe", "--workers", "1"],
            env=stack.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    )
    wait_for(lambda: stack.query("SELECT 1 FROM call_analyses WHERE call_id = ?", call_id),
             timeout=120, what="the transcript and its analysis")  # fmt: skip

    admin = Admin(stack)
    assert b"<h1" in admin.get("/")  # the dashboard
    assert call_id.encode() in admin.get("/calls")
    assert admin.get(f"/calls/{call_id}")
    assert json.loads(admin.get(f"/api/v1/calls/{call_id}", api=True))["id"] == call_id
    transcript = json.loads(admin.get(f"/api/v1/calls/{call_id}/transcript", api=True))
    assert transcript["transcript"]["words"] and transcript["analysis"]
    assert admin.get(f"/api/v1/calls/{call_id}/recording", api=True)[:4] == b"RIFF"
    return call_id


def test_a_calls_whole_life_sends_nothing_off_the_box(stack: Stack, phone, model_dir, sniffer):  # noqa: F811
    whole_life(stack, phone, model_dir)
    for proc in list(stack.processes):  # everything the appliance runs ends before counting
        stack.stop(proc)
    assert sniffer.seen == []


def test_with_a_webhook_on_only_the_webhook_goes_out(stack: Stack, phone, model_dir, sniffer):  # noqa: F811
    whole_life(
        stack,
        phone,
        model_dir,
        ("conversion", "add", "Answered call", "--answered"),
        ("destination", "add", "CRM", "webhook", "--url", f"https://{WEBHOOK[0]}/hook"),
    )
    wait_for(lambda: stack.query("SELECT 1 FROM deliveries WHERE attempts >= 1"), timeout=30,
             what="a delivery attempt")  # fmt: skip
    for proc in list(stack.processes):
        stack.stop(proc)
    assert sniffer.seen, "the webhook's connection was not seen"
    assert set(sniffer.seen) == {("tcp", *WEBHOOK)}
