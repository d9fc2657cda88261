"""Decoding in a process of its own that can write nothing. A transcription worker holds the
recording keys and writes the database; the decoder, which runs callers' audio through Kaldi,
gets neither: it is started with no secret in its environment, loads the model, locks itself
(appliance/transcription/sandbox.py) and only then reads audio, from its standard input, and
answers words on its standard output. The worker checks the answer before storing it.

`python -m appliance.transcription.decoder MODEL GRAMMAR_JSON` runs one. It speaks in frames
(a 4-byte big-endian length, then that many bytes):

- it says it is ready: {"ready": true}, or why it is not: {"error": "..."};
- per recording, the worker sends a frame of 4 bytes (the sample rate), frames of stereo
  PCM (16-bit LE, caller left), then an empty frame;
- the decoder answers {"words": [[speaker, start, end, confidence, text], ...]} or
  {"error": "..."}, and waits for the next recording."""

from __future__ import annotations

import contextlib
import json
import math
import os
import struct
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from appliance.transcription import decode, sandbox
from appliance.transcription.words import SPEAKERS, Word

MAX_FRAME = 1 << 20  # bytes of PCM in one frame
MAX_ANSWER = 16 << 20  # bytes of JSON: a few hours of speech
MAX_WORD = 200  # characters: a word, not a message
RATES = range(8000, 48001)
LENGTH = struct.Struct(">I")
READY_WAIT = 300.0  # seconds a model may take to load


class DecoderError(RuntimeError):
    """The decoder stopped, or answered something that is not words; it is not used again."""


# frames -------------------------------------------------------------------------------
def send(stream: IO[bytes], payload: bytes) -> None:
    stream.write(LENGTH.pack(len(payload)) + payload)


def receive(stream: IO[bytes], limit: int) -> bytes | None:
    """The next frame, None at the end of the stream; DecoderError for a frame over `limit`
    or cut short."""
    head = stream.read(LENGTH.size)
    if not head:
        return None
    if len(head) < LENGTH.size:
        raise DecoderError("a frame cut short")
    (size,) = LENGTH.unpack(head)
    if size > limit:
        raise DecoderError(f"a frame of {size} bytes, more than {limit}")
    payload = stream.read(size)
    if len(payload) < size:
        raise DecoderError("a frame cut short")
    return payload


# the worker's side --------------------------------------------------------------------
class Decoder:
    """One decoder process for one worker: started once (the model loads in it), given one
    recording after another; stopped and started again after anything went wrong."""

    def __init__(
        self, model: Path, grammar: list[str] | None, command: Sequence[str] | None = None
    ) -> None:
        self.name = model.name
        entry = command or [sys.executable, "-m", "appliance.transcription.decoder"]
        self._argv = [*entry, str(model), json.dumps(grammar or [], ensure_ascii=False)]
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the decoder (unless it runs) and wait until its model is loaded and it is
        locked."""
        if self._process is not None and self._process.poll() is None:
            return
        self.close()  # one that ended between two recordings
        self._process = subprocess.Popen(  # our own interpreter and module
            self._argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={"PATH": os.defpath, "LANG": "C.UTF-8"},  # no secret of the worker's
            close_fds=True,
        )
        try:
            if self._answer().get("ready") is not True:
                raise DecoderError("the decoder did not say it was ready")
        except BaseException:
            self.close()
            raise

    def transcribe(
        self, chunks: Iterable[bytes], rate: int, keep_going: Callable[[], bool]
    ) -> list[Word]:
        """Every word of both speakers of stereo PCM, ordered by time (decode.transcribe,
        in the decoder)."""
        self.start()
        try:
            self._send_recording(chunks, rate, keep_going)
            return words(self._answer())
        except BaseException:
            self.close()  # cut off mid-recording, or not to be trusted: a new one next time
            raise

    def _send_recording(
        self, chunks: Iterable[bytes], rate: int, keep_going: Callable[[], bool]
    ) -> None:
        assert self._process is not None and self._process.stdin is not None
        stdin = self._process.stdin
        try:
            send(stdin, LENGTH.pack(rate))
            for chunk in chunks:
                if not keep_going():
                    raise InterruptedError("stopped before the end of the recording")
                for at in range(0, len(chunk), MAX_FRAME):
                    send(stdin, chunk[at : at + MAX_FRAME])
            send(stdin, b"")
            stdin.flush()
        except BrokenPipeError:
            raise DecoderError(f"the decoder stopped ({_how(self._process)})") from None

    def close(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.kill()
        process.wait()
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                # what was left to send to a decoder now gone
                with contextlib.suppress(OSError):
                    stream.close()

    def _answer(self) -> dict[str, Any]:
        assert self._process is not None and self._process.stdout is not None
        try:
            frame = receive(self._process.stdout, MAX_ANSWER)
        except OSError as exc:
            raise DecoderError(f"the decoder's answer could not be read: {exc}") from None
        if frame is None:
            raise DecoderError(f"the decoder stopped ({_how(self._process)})")
        try:
            answer = json.loads(frame)
        except ValueError:
            raise DecoderError("the decoder's answer is not JSON") from None
        if not isinstance(answer, dict):
            raise DecoderError("the decoder's answer is not an object")
        if "error" in answer:
            raise DecoderError(f"the decoder failed: {str(answer['error'])[:300]}")
        return answer


def words(answer: dict[str, Any]) -> list[Word]:
    """The words of an answer, each checked as data from a process that may have been taken
    over: two speakers, finite times and confidences, short text."""
    rows = answer.get("words")
    if not isinstance(rows, list):
        raise DecoderError("the decoder's answer has no words")
    found = []
    for row in rows:
        if not (isinstance(row, list) and len(row) == 5):
            raise DecoderError("the decoder answered a word that is not one")
        speaker, start, end, confidence, text = row
        numbers = (start, end, confidence)
        if (
            type(speaker) is not int
            or speaker not in SPEAKERS
            or not all(type(n) in (int, float) and math.isfinite(n) for n in numbers)
            or not (0 <= start <= end and 0 <= confidence <= 1)
            or not isinstance(text, str)
            or not 0 < len(text) <= MAX_WORD
        ):
            raise DecoderError("the decoder answered a word that is not one")
        found.append(Word(speaker, float(start), float(end), float(confidence), text))
    return found


def _how(process: subprocess.Popen[bytes]) -> str:
    try:
        code = process.wait(5)
    except subprocess.TimeoutExpired:
        return "it closed its output"
    return f"killed by signal {-code}" if code < 0 else f"exit code {code}"


# the decoder's side -------------------------------------------------------------------
def main(argv: list[str]) -> int:
    out = sys.stdout.buffer
    try:
        model = decode.Model(Path(argv[0]), json.loads(argv[1]) or None)
        quiet = os.open(os.devnull, os.O_WRONLY)
        os.dup2(quiet, 2)  # nothing to say but through its answers
        os.close(quiet)
        sandbox.lock()
    except Exception as exc:  # the model, Vosk, or the lock: say why, and stop
        _answer(out, {"error": f"{type(exc).__name__}: {exc}"})
        return 1
    _answer(out, {"ready": True})
    while (head := receive(sys.stdin.buffer, LENGTH.size)) is not None:
        _answer(out, _decode(model, head))
    return 0


def _decode(model: decode.Model, head: bytes) -> dict[str, Any]:
    (rate,) = LENGTH.unpack(head) if len(head) == LENGTH.size else (0,)
    pcm = _pcm(sys.stdin.buffer)
    try:
        if rate not in RATES:
            raise ValueError(f"no sample rate {rate}")
        found = decode.transcribe(model, pcm, rate)
    except Exception as exc:
        for _ in pcm:  # the rest of this recording: the next one starts after it
            pass
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {"words": [w.as_row() for w in found]}


def _pcm(stream: IO[bytes]) -> Iterator[bytes]:
    while frame := receive(stream, MAX_FRAME):
        yield frame


def _answer(out: IO[bytes], answer: dict[str, Any]) -> None:
    send(out, json.dumps(answer, ensure_ascii=False).encode())
    out.flush()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
