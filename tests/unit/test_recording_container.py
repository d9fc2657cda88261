"""The sealed recording format: round trips, random access, and every tampering it must catch."""

import io
import os

import pytest

from appliance.recordings.container import (
    HEADER_SIZE,
    TAG_SIZE,
    RecordingError,
    SealedRecording,
    decrypt,
    encrypt,
    new_header,
)

CHUNK = 1024


def seal(plaintext: bytes, key: bytes | None = None, chunk: int = CHUNK):
    key = key or os.urandom(32)
    out = io.BytesIO()
    header = new_header(chunk)
    assert encrypt(io.BytesIO(plaintext), out, key, header) == len(plaintext)
    return out.getvalue(), key


def opened(data: bytes, key: bytes) -> bytes:
    out = io.BytesIO()
    decrypt(io.BytesIO(data), out, key)
    return out.getvalue()


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 10 * CHUNK + 7])
def test_round_trip_at_every_chunk_boundary(size):
    plaintext = os.urandom(size)
    data, key = seal(plaintext)
    assert opened(data, key) == plaintext
    assert SealedRecording(io.BytesIO(data), key).size == size


def test_no_plaintext_and_no_wav_header_in_the_file():
    plaintext = b"RIFF\x24\x00\x00\x00WAVEfmt " + b"hello caller " * 500
    data, _ = seal(plaintext)
    assert b"RIFF" not in data and b"WAVE" not in data and b"hello caller" not in data


@pytest.mark.parametrize(
    ("start", "end"), [(0, 1), (5, 2000), (1023, 1025), (3000, 10_000), (0, None), (2047, 2048)]
)
def test_ranges(start, end):
    plaintext = os.urandom(3 * CHUNK + 100)
    data, key = seal(plaintext)
    recording = SealedRecording(io.BytesIO(data), key)
    assert b"".join(recording.read(start, end)) == plaintext[start:end]


def test_flipped_byte_anywhere_is_detected():
    data, key = seal(os.urandom(3 * CHUNK))
    for position in (0, 10, HEADER_SIZE - 1, HEADER_SIZE, HEADER_SIZE + CHUNK + 5, len(data) - 1):
        damaged = bytearray(data)
        damaged[position] ^= 0x01
        with pytest.raises(RecordingError):
            opened(bytes(damaged), key)


@pytest.mark.parametrize("cut", [1, TAG_SIZE, CHUNK + TAG_SIZE, CHUNK + TAG_SIZE + 3])
def test_truncation_is_detected(cut):
    data, key = seal(os.urandom(3 * CHUNK))
    with pytest.raises(RecordingError, match=r"truncated|altered|authentication"):
        opened(data[:-cut], key)


def test_truncation_at_a_chunk_boundary_is_detected():
    data, key = seal(os.urandom(3 * CHUNK))
    whole_chunks = data[: HEADER_SIZE + 2 * (CHUNK + TAG_SIZE)]
    with pytest.raises(RecordingError, match="truncated"):
        opened(whole_chunks, key)


def test_reordered_chunks_are_detected():
    data, key = seal(os.urandom(3 * CHUNK))
    sealed = CHUNK + TAG_SIZE
    head, body = data[:HEADER_SIZE], data[HEADER_SIZE:]
    chunks = [body[i : i + sealed] for i in range(0, len(body), sealed)]
    swapped = head + chunks[1] + chunks[0] + chunks[2]
    with pytest.raises(RecordingError):
        opened(swapped, key)


def test_chunks_spliced_from_another_recording_are_detected():
    key = os.urandom(32)
    a, _ = seal(os.urandom(3 * CHUNK), key)
    b, _ = seal(os.urandom(3 * CHUNK), key)  # same key on purpose: the header still binds
    sealed = CHUNK + TAG_SIZE
    spliced = a[: HEADER_SIZE + sealed] + b[HEADER_SIZE + sealed : HEADER_SIZE + 2 * sealed]
    spliced += a[HEADER_SIZE + 2 * sealed :]
    with pytest.raises(RecordingError):
        opened(spliced, key)


def test_swapped_headers_are_detected():
    key = os.urandom(32)
    a, _ = seal(os.urandom(2 * CHUNK), key)
    b, _ = seal(os.urandom(2 * CHUNK), key)
    with pytest.raises(RecordingError):
        opened(b[:HEADER_SIZE] + a[HEADER_SIZE:], key)


def test_wrong_key_is_a_clear_error():
    data, _ = seal(b"x" * 100)
    with pytest.raises(RecordingError, match="wrong key, or the file was altered"):
        opened(data, os.urandom(32))


@pytest.mark.parametrize("junk", [b"", b"RIFF....WAVE", b"APPREC\x09" + b"\x00" * 40])
def test_files_that_are_not_recordings(junk):
    with pytest.raises(RecordingError):
        opened(junk, os.urandom(32))
