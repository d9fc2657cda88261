"""The sealed recording format's reader: any file, damaged or forged, gives the recording that
was sealed or RecordingError; never other bytes, never another exception."""

from __future__ import annotations

import io

from hypothesis import given
from hypothesis import strategies as st

from appliance.recordings.container import (
    HEADER_SIZE,
    RecordingError,
    SealedRecording,
    decrypt,
    encrypt,
    new_header,
)
from tests.fuzz.harness import Finding, probe

KEY = bytes(range(32))


def sealed(plain: bytes, chunk: int) -> bytes:
    out = io.BytesIO()
    encrypt(io.BytesIO(plain), out, KEY, new_header(chunk))
    return out.getvalue()


@given(st.binary(max_size=400), st.integers(1, 64), st.integers(0, 420), st.integers(0, 420))
def test_what_is_sealed_reads_back_whole_and_in_any_range(plain, chunk, start, end):
    with probe("recording container"):
        recording = SealedRecording(io.BytesIO(sealed(plain, chunk)), KEY)
        if recording.size != len(plain) or b"".join(recording.read()) != plain:
            raise Finding("the recording read back differs from what was sealed")
        if b"".join(recording.read(start, end)) != plain[start:end]:
            raise Finding(f"range {start}-{end} differs")


@st.composite
def damaged(draw: st.DrawFn) -> tuple[bytes, bytes]:
    plain = draw(st.binary(max_size=200))
    data = bytearray(sealed(plain, draw(st.integers(1, 48))))
    for _ in range(draw(st.integers(1, 3))):
        how = draw(st.sampled_from(["flip", "cut", "grow", "splice", "header"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if how == "flip" and data:
            data[at] ^= draw(st.integers(1, 255))
        elif how == "cut":
            del data[at : at + draw(st.integers(1, 40))]
        elif how == "grow":
            data[at:at] = draw(st.binary(min_size=1, max_size=40))
        elif how == "splice":
            data[at:] = draw(st.binary(max_size=80))
        elif how == "header" and len(data) >= HEADER_SIZE:
            data[draw(st.integers(0, HEADER_SIZE - 1))] = draw(st.integers(0, 255))
    return plain, bytes(data)


@given(damaged() | st.tuples(st.just(b""), st.binary(max_size=200)))
def test_a_damaged_or_forged_file_is_refused_or_reads_the_original(case):
    plain, data = case
    with probe("recording container", RecordingError):
        out = io.BytesIO()
        decrypt(io.BytesIO(data), out, KEY)
        if out.getvalue() != plain:
            raise Finding("a damaged file decrypted to other bytes")
