"""The encrypted recording container (docs/recording-format.md). Pure: bytes and file objects in,
bytes out; no keys on disk, no database.

A recording is encrypted with its own random 256-bit data key, in fixed-size chunks, each sealed
with AES-256-GCM under a nonce made of the chunk's index and a last-chunk flag, with the whole
header as associated data (the STREAM construction, as in age). So a flipped byte, a dropped or
repeated chunk, chunks in another order, a chunk from another recording, a cut-off end and an
edited or swapped header are all detected, and any byte range can be decrypted on its own.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from Crypto.Cipher import AES

MAGIC = b"APPREC"
VERSION = 1
HEADER = struct.Struct(">6sBxI16s")  # magic, version, reserved, chunk size, file id
HEADER_SIZE = HEADER.size
TAG_SIZE = 16
DEFAULT_CHUNK = 256 * 1024  # per-chunk cost is ~30 us: smaller chunks cost throughput
MAX_CHUNK = 16 * 1024 * 1024
MAX_CHUNKS = 2**64


class RecordingError(Exception):
    """A recording that cannot be decrypted; the message says why."""


@dataclass(frozen=True)
class Header:
    chunk_size: int
    file_id: bytes

    def pack(self) -> bytes:
        return HEADER.pack(MAGIC, VERSION, self.chunk_size, self.file_id)

    @classmethod
    def unpack(cls, raw: bytes) -> Header:
        if len(raw) < HEADER_SIZE:
            raise RecordingError("not an encrypted recording: file shorter than its header")
        magic, version, chunk_size, file_id = HEADER.unpack(raw[:HEADER_SIZE])
        if magic != MAGIC:
            raise RecordingError("not an encrypted recording: wrong magic bytes")
        if version != VERSION:
            raise RecordingError(f"recording format version {version} is not supported")
        if not 0 < chunk_size <= MAX_CHUNK:
            raise RecordingError(f"recording header is damaged: chunk size {chunk_size}")
        return cls(chunk_size=chunk_size, file_id=file_id)

    @property
    def sealed_chunk(self) -> int:
        return self.chunk_size + TAG_SIZE


def new_header(chunk_size: int = DEFAULT_CHUNK) -> Header:
    return Header(chunk_size=chunk_size, file_id=os.urandom(16))


def _nonce(index: int, last: bool) -> bytes:
    if index >= MAX_CHUNKS:
        raise RecordingError("recording too long for the format")
    return b"\x00\x00\x00" + index.to_bytes(8, "big") + (b"\x01" if last else b"\x00")


def _seal(key: bytes, header: bytes, index: int, last: bool, chunk: bytes) -> tuple[bytes, bytes]:
    cipher = AES.new(key, AES.MODE_GCM, nonce=_nonce(index, last))
    cipher.update(header)
    return cipher.encrypt_and_digest(chunk)


def _open(key: bytes, header: bytes, index: int, last: bool, sealed: bytes) -> bytes:
    cipher = AES.new(key, AES.MODE_GCM, nonce=_nonce(index, last))
    cipher.update(header)
    view = memoryview(sealed)
    try:
        return cipher.decrypt_and_verify(view[:-TAG_SIZE], view[-TAG_SIZE:])
    except ValueError:
        raise RecordingError(
            f"chunk {index} failed authentication: wrong key, or the file was altered"
        ) from None


def encrypt(source: BinaryIO, target: BinaryIO, key: bytes, header: Header) -> int:
    """Stream `source` into `target` as a sealed recording; return the plaintext size.
    Memory stays at two chunks whatever the size."""
    if len(key) != 32:
        raise ValueError("data key must be 32 bytes")
    packed = header.pack()
    target.write(packed)
    size, index = 0, 0
    current = _read_full(source, header.chunk_size)
    while True:
        following = _read_full(source, header.chunk_size) if current else b""
        last = not following
        sealed, tag = _seal(key, packed, index, last, current)
        target.write(sealed)
        target.write(tag)
        size += len(current)
        if last:
            return size
        current, index = following, index + 1


def _read_full(stream: BinaryIO, size: int) -> bytes:
    parts, remaining = [], size
    while remaining:
        data = stream.read(remaining)
        if not data:
            break
        parts.append(data)
        remaining -= len(data)
    return b"".join(parts)


class SealedRecording:
    """Random access to a sealed recording: its plaintext size and any byte range."""

    def __init__(self, stream: BinaryIO, key: bytes) -> None:
        self.stream = stream
        self.key = key
        stream.seek(0)
        self.raw_header = stream.read(HEADER_SIZE)
        self.header = Header.unpack(self.raw_header)
        total = stream.seek(0, io.SEEK_END) - HEADER_SIZE
        sealed = self.header.sealed_chunk
        if total < TAG_SIZE:
            raise RecordingError("recording is truncated: no chunk after the header")
        self.chunks = -(-total // sealed)
        tail = total - (self.chunks - 1) * sealed
        if tail < TAG_SIZE:
            raise RecordingError("recording is truncated in the middle of a chunk")
        self.size = (self.chunks - 1) * self.header.chunk_size + tail - TAG_SIZE
        # The last chunk proves the end is the real end: a cut-off file fails here.
        self._last = self.chunk(self.chunks - 1)

    def chunk(self, index: int) -> bytes:
        if not 0 <= index < self.chunks:
            raise IndexError(index)
        last = index == self.chunks - 1
        if last and getattr(self, "_last", None) is not None:
            return self._last
        sealed = self.header.sealed_chunk
        self.stream.seek(HEADER_SIZE + index * sealed)
        data = self.stream.read(sealed)
        try:
            return _open(self.key, self.raw_header, index, last, data)
        except RecordingError:
            if last and index > 0:
                raise RecordingError(
                    "recording is truncated, or its last chunk was altered"
                ) from None
            raise

    def read(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Plaintext bytes start..end (end exclusive), chunk by chunk."""
        end = self.size if end is None else min(end, self.size)
        if start >= end:
            return
        size = self.header.chunk_size
        for index in range(start // size, (end - 1) // size + 1):
            data = self.chunk(index)
            lo = max(start - index * size, 0)
            hi = min(end - index * size, len(data))
            yield data if (lo, hi) == (0, len(data)) else data[lo:hi]


def decrypt(source: BinaryIO, target: BinaryIO, key: bytes) -> int:
    """Decrypt a whole sealed recording into `target`; return the plaintext size."""
    recording = SealedRecording(source, key)
    for part in recording.read():
        target.write(part)
    return recording.size
