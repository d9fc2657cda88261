"""A sealed recording seen as a WAV file: the 44-byte header, then the PCM decrypted on the
fly, so that any byte range of the WAV can be served in constant memory. Pure."""

from __future__ import annotations

import struct
from collections.abc import Iterator

from appliance.recordings.container import SealedRecording

HEADER_BYTES = 44


def header(pcm_bytes: int, channels: int = 2, rate: int = 8000, sample_bytes: int = 2) -> bytes:
    block = channels * sample_bytes
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + pcm_bytes,
        b"WAVE",
        b"fmt ",
        16,
        1,
        channels,
        rate,
        rate * block,
        block,
        sample_bytes * 8,
        b"data",
        pcm_bytes,
    )


def size(recording: SealedRecording) -> int:
    return HEADER_BYTES + recording.size


def read(recording: SealedRecording, start: int, stop: int) -> Iterator[bytes]:
    """WAV bytes start..stop (stop exclusive)."""
    if start < HEADER_BYTES:
        yield header(recording.size)[start:stop]
    if stop > HEADER_BYTES:
        yield from recording.read(max(start, HEADER_BYTES) - HEADER_BYTES, stop - HEADER_BYTES)
