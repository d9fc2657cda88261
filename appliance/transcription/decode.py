"""Speech to words with Vosk: each channel of a stereo recording to its own recogniser, at the
recording's sample rate, fed from the decrypted chunks as they come (the plaintext is never
written anywhere)."""

from __future__ import annotations

import array
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from appliance.transcription.words import Word

STEP = 4000  # samples handed to a recogniser at a time (0.5 s at 8 kHz)


class Model:
    """A Vosk model, loaded once per process (it takes seconds and hundreds of MiB)."""

    def __init__(self, path: Path, grammar: list[str] | None = None) -> None:
        import vosk

        vosk.SetLogLevel(-1)
        self._vosk = vosk
        self.name = path.name
        self.model = vosk.Model(str(path))
        self.grammar = json.dumps(grammar, ensure_ascii=False) if grammar else None

    def recogniser(self, rate: int) -> Any:
        if self.grammar:
            recogniser = self._vosk.KaldiRecognizer(self.model, rate, self.grammar)
        else:
            recogniser = self._vosk.KaldiRecognizer(self.model, rate)
        recogniser.SetWords(True)
        return recogniser


def split(frames: bytes) -> tuple[bytes, bytes]:
    """Interleaved 16-bit stereo frames into the left and right channels (the samples are
    moved as they are, so their byte order stays)."""
    samples = array.array("h", frames)
    return samples[0::2].tobytes(), samples[1::2].tobytes()


def _words(result: str, speaker: int) -> list[Word]:
    return [
        Word(speaker, round(w["start"], 2), round(w["end"], 2), round(w["conf"], 3), w["word"])
        for w in json.loads(result).get("result", [])
    ]


def transcribe(
    model: Model,
    chunks: Iterable[bytes],
    rate: int,
    keep_going: Callable[[], bool] = lambda: True,
) -> list[Word]:
    """Every word of both speakers of stereo PCM (16-bit LE, caller left), ordered by time."""
    recognisers = (model.recogniser(rate), model.recogniser(rate))
    found: list[Word] = []
    step = STEP * 4  # bytes of stereo frames: the same pieces whatever the file's chunks are

    def feed(piece: bytes) -> None:
        for speaker, channel in enumerate(split(piece)):
            if recognisers[speaker].AcceptWaveform(channel):
                found.extend(_words(recognisers[speaker].Result(), speaker))

    pending = b""
    for chunk in chunks:
        if not keep_going():
            raise InterruptedError("stopped before the end of the recording")
        pending += chunk
        whole = len(pending) - len(pending) % step
        for at in range(0, whole, step):
            feed(pending[at : at + step])
        pending = pending[whole:]
    if pending:
        feed(pending[: len(pending) - len(pending) % 4])
    for speaker, recogniser in enumerate(recognisers):
        found.extend(_words(recogniser.FinalResult(), speaker))
    return sorted(found, key=lambda w: (w.start, w.speaker))
