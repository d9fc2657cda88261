"""The decoder runs callers' audio through Kaldi in a process of its own, locked before it
reads any: a locked process can write nothing (no file, no database, no socket, no other
process), also under a filter like the transcriber unit's; and whatever a decoder that was
taken over answers, the worker stores no word of it."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from appliance.transcription import decoder
from appliance.transcription.decoder import Decoder, DecoderError
from appliance.transcription.words import Word

HANG = 60  # seconds: a bound that catches a hang

# What code that took over a locked decoder would try; each attempt's outcome is printed.
ATTEMPTS = """
import errno, json, os, socket, sqlite3, sys
from appliance.transcription import sandbox
database, folder = sys.argv[1], sys.argv[2]
kept = os.open(database, os.O_RDWR)  # open before the lock: closed by it
sandbox.lock()
tried = {}
def attempt(name, action):
    try:
        action()
        tried[name] = "done"
    except OSError as exc:
        tried[name] = errno.errorcode.get(exc.errno, str(exc.errno))
    except Exception as exc:
        tried[name] = type(exc).__name__
attempt("write the database", lambda: os.open(database, os.O_RDWR))
attempt("write through a descriptor open before", lambda: os.write(kept, b"x"))
attempt("create a file", lambda: os.open(folder + "/new", os.O_WRONLY | os.O_CREAT, 0o600))
attempt("remove a file", lambda: os.unlink(database))
attempt("rename a file", lambda: os.rename(database, folder + "/moved"))
attempt("make a folder", lambda: os.mkdir(folder + "/dir"))
attempt("change a mode", lambda: os.chmod(database, 0o666))
attempt("open a socket", lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
attempt("open a unix socket", lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
attempt("start a process", lambda: os.fork() or os._exit(0))
attempt("run a program", lambda: os.execv("/bin/sh", ["sh", "-c", "touch " + folder + "/x"]))
attempt("signal the parent", lambda: os.kill(os.getppid(), 0))
attempt("duplicate a descriptor", lambda: os.dup(1))
sys.stdout.write(json.dumps(tried))
"""
REFUSED = {
    "write the database": "EPERM",
    "write through a descriptor open before": "EBADF",
    "create a file": "EPERM",
    "remove a file": "EPERM",
    "rename a file": "EPERM",
    "make a folder": "EPERM",
    "change a mode": "EPERM",
    "open a socket": "EPERM",
    "open a unix socket": "EPERM",
    "start a process": "EPERM",
    "run a program": "EPERM",
    "signal the parent": "EPERM",
    "duplicate a descriptor": "EPERM",
}

# A filter denying seccomp() with EPERM, as the transcriber unit's SystemCallFilter does
# (seccomp is not in @system-service): the lock must still hold (through prctl).
UNDER_THE_UNITS_FILTER = """
import ctypes, errno, os, sys
lib = ctypes.CDLL("libseccomp.so.2")
lib.seccomp_init.restype = ctypes.c_void_p
lib.seccomp_init.argtypes = [ctypes.c_uint32]
lib.seccomp_rule_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint]
lib.seccomp_load.argtypes = [ctypes.c_void_p]
lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
context = lib.seccomp_init(0x7FFF0000)
lib.seccomp_rule_add(context, 0x00050000 | errno.EPERM,
                     lib.seccomp_syscall_resolve_name(b"seccomp"), 0)
assert lib.seccomp_load(context) == 0
os.execv(sys.executable, [sys.executable, *sys.argv[1:]])
"""


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "appliance.db"
    with sqlite3.connect(path) as db:
        db.execute("create table transcripts (words text)")
    return path


def run_locked(*prefix: str, database: Path) -> dict[str, str]:
    done = subprocess.run(
        [sys.executable, *prefix, "-c", ATTEMPTS, str(database), str(database.parent)],
        capture_output=True, text=True, timeout=HANG,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_locked_process_can_write_nothing(database):
    before = database.read_bytes()
    assert run_locked(database=database) == REFUSED
    assert database.read_bytes() == before
    assert sorted(p.name for p in database.parent.iterdir()) == ["appliance.db"]


def test_the_lock_holds_under_a_filter_like_the_transcriber_units(database, tmp_path):
    outer = tmp_path / "outer.py"
    outer.write_text(UNDER_THE_UNITS_FILTER)
    done = subprocess.run(
        [sys.executable, str(outer), "-c", ATTEMPTS, str(database), str(tmp_path)],
        capture_output=True, text=True, timeout=HANG,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == REFUSED
    assert sorted(p.name for p in tmp_path.iterdir()) == ["appliance.db", "outer.py"]


# a decoder that was taken over ---------------------------------------------------------
def fake(answer: str) -> list[str]:
    """A decoder that says it is ready, reads one recording, then does `answer` (Python with
    `send`, `out` and `receive` at hand)."""
    code = textwrap.dedent(f"""
        import json, os, signal, sys
        from appliance.transcription.decoder import send, receive, MAX_FRAME
        out = sys.stdout.buffer
        send(out, b'{{"ready": true}}'); out.flush()
        receive(sys.stdin.buffer, 4)
        while receive(sys.stdin.buffer, MAX_FRAME):
            pass
        {answer}
        out.flush()
        sys.stdin.read()
    """)
    return [sys.executable, "-c", code, "--"]


GOOD_WORD = [0, 0.5, 0.9, 0.8, "예약"]
NOT_A_WORD = "a word that is not one"


def sending(value: object) -> str:
    return f"send(out, {json.dumps(value)!r}.encode())"


HOSTILE = {
    "not json": ("send(out, b'not json')", "not JSON"),
    "no words": (sending({}), "has no words"),
    "a list": (sending([]), "not an object"),
    "speaker 7": (sending({"words": [[7, 0.5, 0.9, 0.8, "x"]]}), NOT_A_WORD),
    "nan": (sending({"words": [[0, float("nan"), 1.0, 0.5, "x"]]}), NOT_A_WORD),
    "a boolean speaker": (sending({"words": [[True, 0, 1, 0.5, "x"]]}), NOT_A_WORD),
    "backwards": (sending({"words": [[0, 2.0, 1.0, 0.5, "x"]]}), NOT_A_WORD),
    "a long text": (sending({"words": [[0, 0, 1, 0.5, "x" * 5000]]}), NOT_A_WORD),
    "a number for text": (sending({"words": [GOOD_WORD, [0, 1, 2, 0.5, 7]]}), NOT_A_WORD),
    "too big": ("out.write((1 << 31).to_bytes(4, 'big'))", "more than"),
    "cut short": ("out.write((100).to_bytes(4, 'big') + b'{'); out.flush(); os._exit(0)",
                  "cut short"),
    "a crash": ("os.kill(os.getpid(), signal.SIGSEGV)", "killed by signal 11"),
    "an error": (sending({"error": "out of memory"}), "the decoder failed: out of memory"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_what_a_taken_over_decoder_answers_is_refused_and_it_is_stopped(case, tmp_path):
    answer, says = HOSTILE[case]
    client = Decoder(tmp_path / "ko", None, command=fake(answer))
    client.start()
    process = client._process
    assert process is not None
    with pytest.raises(DecoderError, match=says):
        client.transcribe([bytes(16000)], 8000, lambda: True)
    assert client._process is None and process.poll() is not None  # not used again


def test_a_decoder_that_answers_words_gives_them(tmp_path):
    rows = [GOOD_WORD, [1, 1.0, 1.5, 1, "네"]]
    client = Decoder(tmp_path / "ko", None, command=fake(sending({"words": rows})))
    try:
        assert client.transcribe([bytes(16000)], 8000, lambda: True) == [
            Word(0, 0.5, 0.9, 0.8, "예약"), Word(1, 1.0, 1.5, 1.0, "네")]  # fmt: skip
    finally:
        client.close()


def test_a_decoder_that_ended_between_two_recordings_is_started_again(tmp_path):
    once = fake(sending({"words": [GOOD_WORD]}) + "; out.flush(); os._exit(0)")
    client = Decoder(tmp_path / "ko", None, command=once)
    try:
        first = client.transcribe([bytes(16000)], 8000, lambda: True)
        assert client._process is not None and client._process.wait(HANG) == 0
        assert client.transcribe([bytes(16000)], 8000, lambda: True) == first
    finally:
        client.close()


def test_a_decoder_that_never_gets_ready_is_a_clear_error(tmp_path):
    client = Decoder(tmp_path / "missing-model", None)  # the real decoder: no such model
    with pytest.raises(DecoderError, match="the decoder failed: "):
        client.start()
    assert client._process is None


def test_stopping_mid_recording_stops_the_decoder(tmp_path):
    client = Decoder(tmp_path / "ko", None, command=fake(sending({"words": []})))
    client.start()
    process = client._process
    assert process is not None
    with pytest.raises(InterruptedError):
        client.transcribe(iter([bytes(4000)] * 3), 8000, iter([True, False]).__next__)
    assert process.poll() is not None


def test_frames_round_trip_and_refuse_what_is_too_big(tmp_path):
    path = tmp_path / "frames"
    with path.open("wb") as out:
        decoder.send(out, b"abc")
        decoder.send(out, b"")
        decoder.send(out, b"x" * 10)
    with path.open("rb") as stream:
        assert decoder.receive(stream, 10) == b"abc"
        assert decoder.receive(stream, 10) == b""
        assert decoder.receive(stream, 10) == b"x" * 10
        assert decoder.receive(stream, 10) is None
    with path.open("rb") as stream, pytest.raises(DecoderError, match="more than 2"):
        decoder.receive(stream, 2)
    assert os.path.getsize(path) == 3 * 4 + 13
