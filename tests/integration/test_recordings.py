"""Recorded calls: real speech through the real Asterisk, sealed at hangup, exported by an admin."""

from __future__ import annotations

import array
import datetime as dt
import math
import sqlite3
import ssl
import subprocess
import time
import urllib.error
import urllib.request
import wave
from pathlib import Path

import pytest

from appliance.recordings.vault import BYTES_PER_SECOND
from tests.harness import Stack, sipp_call, wait_for

WORDS = {
    "caller.ulaw": "I would like to book an appointment for next Tuesday morning please",
    "callee.ulaw": "Thank you for calling the clinic, how can I help you today",
}


def speech(folder: Path) -> None:
    """Real speech for both parties: espeak-ng, then raw 8 kHz mu-law for SIPp's rtp_stream."""
    for name, text in WORDS.items():
        wav = folder / f"{name}.wav"
        subprocess.run(["espeak-ng", "-w", str(wav), text], check=True, capture_output=True)
        subprocess.run(
            ["sox", str(wav), "-r", "8000", "-c", "1", "-t", "ul", str(folder / name)],
            check=True,
            capture_output=True,
        )


def spool_emptied(stack: Stack) -> None:
    """The plaintext goes last, just after the sealed recording is in place."""
    wait_for(lambda: not list(stack.spool_on_host.iterdir()), what="an empty spool")


def speech_call(stack: Stack, talk_ms: int, scenario: str = "carrier_speech.xml"):
    """A call to the recorded number with speech both ways (the caller's side)."""
    return sipp_call(
        stack,
        "12025550123",
        "13125550111",
        "Jane",
        talk_ms=talk_ms,
        scenario=scenario,
        cwd=stack.data_dir,
    )


def record_one_call(stack: Stack, phone, talk_ms: int) -> sqlite3.Row:
    """One recorded call with speech both ways; returns its sealed recording's row."""
    phone(scenario="phone_speech.xml")
    result = speech_call(stack, talk_ms)
    assert result.returncode == 0, result.output
    (row,) = wait_for(
        lambda: query(stack, "SELECT * FROM recordings"), timeout=20, what="the sealed recording"
    )
    spool_emptied(stack)
    return row


def unsealed(stack: Stack) -> bool:
    """/health says a recording waits in the spool, unsealed (its ALERT is in the log)."""
    return ((stack.health() or {}).get("checks") or {}).get("recordings") is False


def rms(samples: array.array) -> float:
    return math.sqrt(sum(x * x for x in samples) / max(1, len(samples)))


def query(stack: Stack, sql: str) -> list[sqlite3.Row]:
    with sqlite3.connect(stack.database) as db:
        db.row_factory = sqlite3.Row
        return db.execute(sql).fetchall()


@pytest.fixture
def recorded(stack: Stack):
    return consent_stack(stack, consent=False)


def test_recorded_call_is_sealed_with_both_voices(recorded: Stack, phone, tmp_path):
    phone(scenario="phone_speech.xml")
    result = speech_call(recorded, talk_ms=6000)
    assert result.returncode == 0, result.output
    (row,) = wait_for(
        lambda: query(recorded, "SELECT * FROM recordings"), timeout=20, what="the sealed recording"
    )
    (call,) = query(recorded, "SELECT * FROM calls")
    assert row["call_id"] == call["id"]
    spool_emptied(recorded)

    sealed = (recorded.data_dir / "recordings" / row["file_name"]).read_bytes()
    assert b"RIFF" not in sealed and b"WAVE" not in sealed
    out = tmp_path / "call.wav"
    export = recorded.appliance("recordings", "export", call["id"], str(out))
    assert "caller left, callee right" in export.stdout
    with wave.open(str(out)) as wav:
        assert (wav.getnchannels(), wav.getframerate(), wav.getsampwidth()) == (2, 8000, 2)
        frames = wav.readframes(wav.getnframes())
        seconds = wav.getnframes() / 8000
    assert abs(seconds - call["talk_seconds"]) < 1.0, (seconds, call["talk_seconds"])
    samples = array.array("h", frames)
    caller, callee = rms(samples[0::2]), rms(samples[1::2])
    assert caller > 300 and callee > 300, f"a silent channel: {caller:.0f} / {callee:.0f}"
    step = len(frames) // 60  # 32-byte windows of real audio must not appear in the file
    windows = [frames[o : o + 32] for o in range(0, len(frames) - 32, step)]
    distinctive = [w for w in windows if len(set(w)) > 8]
    assert len(distinctive) >= 30
    assert not [w for w in distinctive if w in sealed], "plaintext found in the sealed file"

    (audit,) = query(recorded, "SELECT * FROM audit_log WHERE action = 'recording.export'")
    assert audit["subject"] == call["id"] and audit["actor"].startswith("cli:")
    again = recorded.appliance("recordings", "export", call["id"], str(out), check=False)
    assert again.returncode == 2 and "already exists" in again.stderr


def test_rotation_keeps_recordings_playable_and_deletion_erases(recorded: Stack, phone, tmp_path):
    row = record_one_call(recorded, phone, talk_ms=2000)
    rotate = recorded.appliance("keys", "rotate")
    assert "1 recording key(s) re-wrapped" in rotate.stdout
    (rewrapped,) = query(recorded, "SELECT * FROM recordings")
    assert rewrapped["key_id"] != row["key_id"]
    recorded.appliance("recordings", "export", row["call_id"], str(tmp_path / "a.wav"))

    recorded.appliance("recordings", "delete", row["call_id"])
    assert query(recorded, "SELECT * FROM recordings") == []
    assert not (recorded.data_dir / "recordings" / row["file_name"]).exists()
    gone = recorded.appliance(
        "recordings", "export", row["call_id"], str(tmp_path / "b.wav"), check=False
    )
    assert gone.returncode == 2 and "no recording for call" in gone.stderr


def test_missing_key_file_keeps_the_plaintext_and_raises_the_alarm(recorded: Stack, phone):
    key_file = recorded.data_dir / "secrets" / "recordings.keys"
    key_file.rename(key_file.with_suffix(".away"))
    phone(scenario="phone_speech.xml")
    speech_call(recorded, talk_ms=1500)
    wait_for(
        lambda: unsealed(recorded), timeout=20, what="/health reporting the recording unsealed"
    )
    assert "is missing" in recorded.controller_log()
    assert [p.suffix for p in sorted(recorded.spool_on_host.iterdir())] == [".done", ".raw"]
    assert recorded.health()["checks"]["recordings"] is False
    assert query(recorded, "SELECT * FROM recordings") == []

    key_file.with_suffix(".away").rename(key_file)
    wait_for(
        lambda: query(recorded, "SELECT * FROM recordings"),
        timeout=20,
        what="sealing once the key is back",
    )
    spool_emptied(recorded)
    wait_for(lambda: recorded.health()["checks"]["recordings"], what="health to recover")


def consent_stack(stack: Stack, *options: str, consent: bool = True) -> Stack:
    """A running stack whose number +12025550123 is recorded (with a notice, if `consent`)."""
    speech(stack.data_dir)
    stack.appliance(
        "trunk", "add", "carrier", "--host", "127.0.0.1", "--port", str(stack.phone_port)
    )
    notice = ("--consent", "beep", *options) if consent else options
    stack.appliance(
        "route",
        "add",
        "Clinic",
        "--forward",
        "+12025550199",
        "--trunk",
        "carrier",
        "--record",
        "always",
        *notice,
    )
    stack.appliance("number", "add", "+12025550123", "--route", "Clinic")
    stack.appliance("config", "render")
    stack.start_asterisk()
    stack.start_controller()
    return stack


def test_consent_notice_is_played_and_noted(stack: Stack, phone):
    consent_stack(stack)
    phone(scenario="phone_speech.xml")
    result = speech_call(stack, talk_ms=3000)
    assert result.returncode == 0, result.output
    wait_for(lambda: query(stack, "SELECT * FROM recordings"), timeout=20, what="the recording")
    (call,) = query(stack, "SELECT * FROM calls")
    assert (call["consent_announced"], call["recording_opted_out"]) == (1, 0)


def test_caller_can_opt_out_with_a_key(stack: Stack, phone):
    consent_stack(stack, "--opt-out")
    phone(scenario="phone_speech.xml")
    result = speech_call(stack, talk_ms=3000, scenario="carrier_optout.xml")
    assert result.returncode == 0, result.output
    (call,) = wait_for(
        lambda: [r for r in query(stack, "SELECT * FROM calls") if r["disposition"]],
        timeout=20,
        what="the finished call",
    )
    assert call["disposition"] == "answered"
    assert (call["consent_announced"], call["recording_opted_out"]) == (1, 1)
    assert query(stack, "SELECT * FROM recordings") == []
    assert list(stack.spool_on_host.iterdir()) == []


def test_recordings_left_by_crashes_are_sealed_at_restart(recorded: Stack, phone):
    """The controller dies during a call, then Asterisk dies during another: once each is back,
    the recording is sealed and no plaintext is left in the spool."""
    phone(scenario="phone_speech.xml", calls=2)
    first = speaking(recorded, 3000)
    wait_for(lambda: list(recorded.spool_on_host.glob("*.raw")), what="recording to start")
    controller = recorded.processes.pop()
    controller.kill()
    controller.wait()
    assert first.wait(30) == 0
    wait_for(lambda: list(recorded.spool_on_host.glob("*.done")), what="MixMonitor to finish")
    recorded.start_controller()
    wait_for(
        lambda: query(recorded, "SELECT * FROM recordings"),
        timeout=20,
        what="the first recording sealed after the controller restarted",
    )
    spool_emptied(recorded)

    second = speaking(recorded, 8000)
    wait_for(lambda: list(recorded.spool_on_host.glob("*.raw")), what="second recording")
    asterisk = recorded.processes.pop(0)
    asterisk.kill()  # MixMonitor never finishes: no .done marker
    asterisk.wait()
    second.kill()
    second.wait()
    assert [p.suffix for p in recorded.spool_on_host.iterdir()] == [".raw"]
    recorded.start_asterisk()
    wait_for(
        lambda: len(query(recorded, "SELECT * FROM recordings")) == 2,
        timeout=30,
        what="the second recording sealed after Asterisk restarted",
    )
    spool_emptied(recorded)
    assert "left in the spool by an interrupted call" in recorded.controller_log()


def speaking(stack: Stack, talk_ms: int) -> subprocess.Popen:
    """A recorded call with speech that goes on while the test acts on it."""
    return stack.sipp_background("12025550123", talk_ms=talk_ms, scenario="carrier_speech.xml")


def http_get(stack: Stack, path: str, token: str | None = None, range_: str | None = None):
    context = ssl.create_default_context(cafile=str(stack.data_dir / "tls" / "cert.pem"))
    request = urllib.request.Request(f"https://127.0.0.1:{stack.http_port}{path}")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if range_:
        request.add_header("Range", range_)
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def token_for(stack: Stack, username: str) -> str:
    """A token with every scope: the user's role decides."""
    scopes = ("--scope", "calls:read", "--scope", "recordings:read")
    scopes += ("--scope", "recordings:control")
    return stack.appliance("apikey", "add", username, *scopes).stdout.rsplit(" ", 1)[1].strip()


def test_playback_over_https_with_ranges_roles_and_audit(recorded: Stack, phone, tmp_path):
    row = record_one_call(recorded, phone, talk_ms=2500)
    recorded.appliance(
        "user",
        "add",
        "reader",
        "--role",
        "analyst",
        "--password-stdin",
        input="a-long-enough-password\n",
    )
    viewer, admin = token_for(recorded, "reader"), token_for(recorded, "admin")
    recorded.appliance("recordings", "export", row["call_id"], str(tmp_path / "call.wav"))
    whole = (tmp_path / "call.wav").read_bytes()
    path = f"/api/v1/calls/{row['call_id']}/recording"

    status, headers, body = http_get(recorded, path, viewer)
    assert status == 200 and body == whole
    assert headers["Content-Type"] == "audio/wav" and headers["Accept-Ranges"] == "bytes"
    assert headers["Content-Disposition"].startswith("inline")
    size = len(whole)
    for range_, expected in [
        ("bytes=0-43", whole[:44]),
        ("bytes=1000-5000", whole[1000:5001]),
        ("bytes=-100", whole[-100:]),
        ("bytes=30000-", whole[30000:]),
    ]:
        status, headers, body = http_get(recorded, path, viewer, range_)
        assert status == 206 and body == expected, range_
        assert headers["Content-Range"].endswith(f"/{size}")
    assert http_get(recorded, path, viewer, f"bytes={size + 10}-")[0] == 416

    assert http_get(recorded, path)[0] == 401
    assert http_get(recorded, path, "apk_not-a-token")[0] == 401
    for token in (viewer, admin):  # hearing and saving are one permission
        status, headers, body = http_get(recorded, path + "?download=1", token)
        assert status == 200 and body == whole
        assert headers["Content-Disposition"].startswith("attachment")
    assert http_get(recorded, f"/api/v1/calls/{'0' * 32}/recording", viewer)[0] == 404

    plays = query(recorded, "SELECT * FROM audit_log WHERE action = 'recording.play'")
    assert len(plays) == 6
    assert {(p["actor"], p["client"], p["subject"]) for p in plays} == {
        ("user:reader", "127.0.0.1", row["call_id"])
    }
    downloads = query(recorded, "SELECT * FROM audit_log WHERE action = 'recording.download'")
    assert [d["actor"] for d in downloads] == ["user:reader", "user:admin"]


def test_full_disk_keeps_the_plaintext_until_there_is_room(stack: Stack, phone, tmp_path):
    full = tmp_path / "full-store"
    full.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tiny", str(full)], check=True)
    try:
        stack.extra_env["APPLIANCE_RECORDINGS_STORE_DIR"] = str(full)
        consent_stack(stack, consent=False)
        phone(scenario="phone_speech.xml")
        speech_call(stack, talk_ms=2000)
        wait_for(
            lambda: unsealed(stack), timeout=20, what="/health reporting the recording unsealed"
        )
        assert "No space left on device" in stack.controller_log()
        assert sorted(p.suffix for p in stack.spool_on_host.iterdir()) == [".done", ".raw"]
        (call,) = wait_for(
            lambda: query(stack, "SELECT * FROM calls WHERE disposition IS NOT NULL"),
            timeout=20,
            what="the call's end recorded",
        )
        assert call["disposition"] == "answered"
    finally:
        subprocess.run(["umount", str(full)], check=True)
    wait_for(
        lambda: query(stack, "SELECT * FROM recordings"),
        timeout=20,
        what="sealing once there is room",
    )
    spool_emptied(stack)


def http_post(stack: Stack, path: str, token: str) -> int:
    context = ssl.create_default_context(cafile=str(stack.data_dir / "tls" / "cert.pem"))
    request = urllib.request.Request(
        f"https://127.0.0.1:{stack.http_port}{path}",
        data=b"",
        method="POST",
        headers={"Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def silent_stretch(frames: bytes) -> float:
    """The longest run of digital silence on both channels, in seconds (100 ms windows)."""
    samples, window = array.array("h", frames), 1600  # 100 ms of stereo 8 kHz
    longest = run = 0
    for start in range(0, len(samples) - window, window):
        quiet = max(abs(x) for x in samples[start : start + window]) < 50
        run = run + 1 if quiet else 0
        longest = max(longest, run)
    return longest / 10


def live_call_id(stack: Stack) -> str:
    return wait_for(
        lambda: [r["id"] for r in query(stack, "SELECT id FROM calls")], what="the call record"
    )[0]


def answered_at(stack: Stack, call_id: str) -> float:
    """When the live call was answered (epoch seconds, from Asterisk's event), once its
    record says so."""
    (row,) = wait_for(
        lambda: stack.query(
            "SELECT answered_at FROM calls WHERE id = ? AND answered_at IS NOT NULL", call_id
        ),
        timeout=20,
        what="the call answered",
    )
    return dt.datetime.fromisoformat(row["answered_at"]).replace(tzinfo=dt.UTC).timestamp()


def recorded_seconds(stack: Stack) -> float:
    """How much audio the live call's recording holds so far (MixMonitor's file in the spool;
    a paused recording goes on growing, with silence)."""
    (raw,) = stack.spool_on_host.glob("*.raw")
    return raw.stat().st_size / BYTES_PER_SECOND


def record_for(stack: Stack, seconds: float, what: str) -> None:
    """Wait until the live recording holds `seconds` more audio than now."""
    until = recorded_seconds(stack) + seconds
    wait_for(lambda: recorded_seconds(stack) >= until, timeout=seconds + 20, what=what)


def test_pause_and_resume_a_live_recording(recorded: Stack, phone, tmp_path):
    recorded.appliance(
        "user",
        "add",
        "ops",
        "--role",
        "manager",
        "--password-stdin",
        input="a-long-enough-password\n",
    )
    recorded.appliance(
        "user",
        "add",
        "reader",
        "--role",
        "analyst",
        "--password-stdin",
        input="a-long-enough-password\n",
    )
    manager, viewer = token_for(recorded, "ops"), token_for(recorded, "reader")
    phone(scenario="phone_speech.xml")
    caller = speaking(recorded, 7000)
    call_id = live_call_id(recorded)
    wait_for(lambda: list(recorded.spool_on_host.glob("*.raw")), what="the recording to start")
    path = f"/api/v1/calls/{call_id}/recording"
    answered_at(recorded, call_id)
    record_for(recorded, 1.5, "the conversation's first 1.5 s recorded")
    assert http_post(recorded, path + "/pause", viewer) == 403
    assert http_post(recorded, path + "/pause", manager) == 200
    record_for(recorded, 2.5, "2.5 s recorded while paused")
    assert http_post(recorded, path + "/resume", manager) == 200
    assert caller.wait(30) == 0
    assert http_post(recorded, path + "/pause", manager) == 409  # the call is over
    wait_for(lambda: query(recorded, "SELECT * FROM recordings"), timeout=20, what="sealing")
    spool_emptied(recorded)
    recorded.appliance("recordings", "export", call_id, str(tmp_path / "call.wav"))
    with wave.open(str(tmp_path / "call.wav")) as wav:
        frames = wav.readframes(wav.getnframes())
    assert 2.0 <= silent_stretch(frames) <= 3.2
    actions = [r["action"] for r in query(recorded, "SELECT action FROM audit_log")]
    assert actions.count("recording.pause") == 1 and actions.count("recording.resume") == 1


def on_demand_stack(stack: Stack, *options: str) -> Stack:
    """Number +12025550123 records on demand; +12025550124 never records."""
    speech(stack.data_dir)
    stack.appliance(
        "trunk", "add", "carrier", "--host", "127.0.0.1", "--port", str(stack.phone_port)
    )
    forward = ("--forward", "+12025550199", "--trunk", "carrier")
    stack.appliance("route", "add", "Sales", *forward, "--record", "on_demand", *options)
    stack.appliance("route", "add", "Plain", *forward)
    stack.appliance("number", "add", "+12025550123", "--route", "Sales")
    stack.appliance("number", "add", "+12025550124", "--route", "Plain")
    stack.appliance("config", "render")
    stack.start_asterisk()
    stack.start_controller()
    return stack


def audited(stack: Stack, action: str) -> list[sqlite3.Row]:
    return query(stack, f"SELECT * FROM audit_log WHERE action = '{action}'")


def test_recording_on_demand_starts_when_asked(stack: Stack, phone):
    on_demand_stack(stack)
    admin = token_for(stack, "admin")
    phone(scenario="phone_speech.xml")
    caller = speaking(stack, 4000)
    call_id = live_call_id(stack)
    path = f"/api/v1/calls/{call_id}/recording"
    # a second of conversation, counted from the answer its record holds, that the recording
    # must leave out
    answer = answered_at(stack, call_id)
    wait_for(lambda: time.time() >= answer + 1.0, what="a second of conversation")
    assert list(stack.spool_on_host.iterdir()) == []  # nothing recorded until asked
    assert http_post(stack, path + "/pause", admin) == 409  # nothing to pause yet
    asked = time.monotonic()
    assert http_post(stack, path + "/start", admin) == 200
    assert http_post(stack, path + "/start", admin) == 409  # once
    assert caller.wait(30) == 0
    ended = time.monotonic()
    (row,) = wait_for(
        lambda: query(stack, "SELECT * FROM recordings"),
        timeout=20,
        what="the on-demand recording sealed",
    )
    (call,) = wait_for(
        lambda: query(stack, "SELECT * FROM calls WHERE talk_seconds IS NOT NULL"),
        timeout=20,
        what="the call's end recorded",
    )
    # from when it was asked for to the end of the call: not the second before it
    assert 0.3 < row["seconds"] <= ended - asked + 0.5
    assert row["seconds"] < call["talk_seconds"] - 0.5
    assert len(audited(stack, "recording.start")) == 1
    (again,) = audited(stack, "recording.start.refused")
    assert (again["subject"], again["detail"]) == (call_id, "the call is already being recorded")
    assert audited(stack, "recording.pause.refused")[0]["actor"] == "user:admin"


def test_on_demand_recording_respects_the_route_and_the_caller(stack: Stack, phone):
    """Refused, clearly and audited: a route that does not record on demand, and a caller who
    opted out with a key during the notice."""
    on_demand_stack(stack, "--consent", "beep", "--opt-out")
    admin = token_for(stack, "admin")
    phone(scenario="phone_speech.xml", calls=2)
    plain = stack.sipp_background("12025550124", talk_ms=3000, scenario="carrier_speech.xml")
    call_id = live_call_id(stack)
    assert http_post(stack, f"/api/v1/calls/{call_id}/recording/start", admin) == 409
    assert plain.wait(30) == 0
    opted = stack.sipp_background("12025550123", talk_ms=4000, scenario="carrier_optout.xml")
    wait_for(lambda: len(stack.calls()) == 2, what="the second call's record")
    second = next(r["id"] for r in stack.calls() if r["id"] != call_id)
    wait_for(
        lambda: (
            http_post(stack, f"/api/v1/calls/{second}/recording/start", admin) == 409
            and audited(stack, "recording.start.refused")[-1]["detail"]
            == "the caller opted out of recording"
        ),
        what="the opted-out caller's refusal",
    )
    assert opted.wait(30) == 0
    reasons = [r["detail"] for r in audited(stack, "recording.start.refused")]
    assert reasons[0] == "the route does not record on demand"
    assert audited(stack, "recording.start") == []
    assert query(stack, "SELECT * FROM recordings") == []


def test_calls_are_recorded_while_the_controller_is_down(recorded: Stack, phone):
    """The recording is the dialplan's own: with the controller killed, a route that records
    always still records (under the linkedid); the controller seals it once it is back and
    has learnt the call from Asterisk's CDRs."""
    controller = recorded.processes.pop()
    controller.kill()
    controller.wait()
    phone(scenario="phone_speech.xml")
    result = speech_call(recorded, talk_ms=2500)
    assert result.returncode == 0, result.output
    assert sorted(p.suffix for p in recorded.spool_on_host.iterdir()) == [".done", ".raw"]
    recorded.start_controller()
    (row,) = wait_for(
        lambda: query(recorded, "SELECT * FROM recordings"),
        timeout=30,
        what="the recording sealed",
    )
    (call,) = query(recorded, "SELECT * FROM calls")
    assert call["via"] == "reconciled" and row["call_id"] == call["id"]
    assert abs(row["seconds"] - call["talk_seconds"]) < 1.0
    spool_emptied(recorded)
