"""Sealed recordings on disk and their wrapped keys in the database. Blocking: the event loop
calls in through asyncio.to_thread.

Order of sealing, so that a crash at any point loses nothing and leaves no plaintext behind
once the controller is back: seal into a temporary file and fsync it, record the wrapped key,
move the sealed file into place, and only then delete the plaintext from the spool.
"""

from __future__ import annotations

import datetime as dt
import os
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from appliance.db.models import AuditEntry, Call, Recording
from appliance.recordings import keys
from appliance.recordings.container import RecordingError, SealedRecording, encrypt, new_header

AUDIO_FORMAT = "slin8-stereo"  # 16-bit LE PCM, 8000 Hz, caller left, callee right
CHANNELS, RATE, SAMPLE_BYTES = 2, 8000, 2
BYTES_PER_SECOND = CHANNELS * RATE * SAMPLE_BYTES


class CallNotRecordedYet(Exception):
    """The call's record is not in the database yet: try again shortly."""


class RecordingNotFound(Exception):
    """No recording for that call."""


@dataclass(frozen=True)
class Sealed:
    call_id: str
    file_name: str
    plaintext_bytes: int
    seconds: float


class RecordingVault:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        store_dir: Path,
        key_file: Path,
        passphrase: str | None = None,
    ) -> None:
        self.sessions = sessions
        self.store_dir = store_dir
        self.key_file = key_file
        self.passphrase = passphrase or None
        self._ring: tuple[tuple[int, int], keys.KeyRing] | None = None

    def ring(self) -> keys.KeyRing:
        """The key ring, read again whenever the key file changes (unsealing is slow)."""
        try:
            stat = self.key_file.stat()
        except FileNotFoundError:
            raise keys.KeyProblem(f"key file {self.key_file} is missing") from None
        version = (stat.st_mtime_ns, stat.st_ino)
        if self._ring is None or self._ring[0] != version:
            self._ring = (version, keys.load(self.key_file, self.passphrase))
        return self._ring[1]

    # sealing ---------------------------------------------------------------------------
    def seal(self, spool_file: Path, call_id: str) -> Sealed:
        ring = self.ring()
        with self.sessions() as session:
            if session.get(Call, call_id) is None:
                raise CallNotRecordedYet(call_id)
        now = dt.datetime.now(dt.UTC)
        file_name = f"{now:%Y/%m}/{call_id}.rec"
        target = self.store_dir / file_name
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = target.with_suffix(".partial")
        data_key, header = keys.new_data_key(), new_header()
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with open(spool_file, "rb") as source, os.fdopen(fd, "wb") as sealed:
                size = encrypt(source, sealed, data_key, header)
                sealed.flush()
                os.fsync(sealed.fileno())
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        wrapped = ring.wrap(data_key, header.file_id)
        with self.sessions.begin() as session:
            previous = session.get(Recording, call_id)  # sealed before, by a run that crashed
            stale = previous.file_name if previous and previous.file_name != file_name else None
            session.merge(
                Recording(
                    call_id=call_id,
                    file_name=file_name,
                    file_id=header.file_id.hex(),
                    key_id=wrapped.key_id,
                    wrapped_key=wrapped.blob.hex(),
                    audio_format=AUDIO_FORMAT,
                    plaintext_bytes=size,
                    seconds=round(size / BYTES_PER_SECOND, 3),
                )
            )
        os.replace(temporary, target)
        _fsync_dir(target.parent)
        if stale:
            (self.store_dir / stale).unlink(missing_ok=True)
        spool_file.unlink()
        spool_file.with_suffix(".done").unlink(missing_ok=True)
        return Sealed(call_id, file_name, size, size / BYTES_PER_SECOND)

    # reading ---------------------------------------------------------------------------
    def load(
        self, call_id: str, actor: str, action: str, client: str | None = None
    ) -> tuple[SealedRecording, BinaryIO]:
        """Open a recording for reading (the caller closes the stream); the access is written
        to the audit log before a byte is decrypted."""
        with self.sessions.begin() as session:
            row = session.get(Recording, call_id)
            if row is None:
                raise RecordingNotFound(call_id)
            session.add(AuditEntry(actor=actor, action=action, subject=call_id, client=client))
            session.expunge(row)
        ring = self.ring()
        file_id = bytes.fromhex(row.file_id)
        data_key = ring.unwrap(keys.WrappedKey(row.key_id, bytes.fromhex(row.wrapped_key)), file_id)
        try:
            stream = (self.store_dir / row.file_name).open("rb")
        except FileNotFoundError:
            raise RecordingError(f"sealed file {row.file_name} is missing") from None
        try:
            recording = SealedRecording(stream, data_key)
            if recording.header.file_id != file_id:
                raise RecordingError("sealed file does not belong to this call")
        except BaseException:
            stream.close()
            raise
        return recording, stream

    @contextmanager
    def open(
        self, call_id: str, actor: str, action: str, client: str | None = None
    ) -> Iterator[SealedRecording]:
        recording, stream = self.load(call_id, actor, action, client)
        with stream:
            yield recording

    def audit(self, actor: str, action: str, subject: str, client: str | None = None) -> None:
        with self.sessions.begin() as session:
            session.add(AuditEntry(actor=actor, action=action, subject=subject, client=client))

    def export_wav(self, call_id: str, target: BinaryIO, actor: str) -> float:
        """Decrypt a recording into a WAV file (for an admin on the box); return seconds."""
        with self.open(call_id, actor, "recording.export") as recording:
            with wave.open(target, "wb") as out:
                out.setnchannels(CHANNELS)
                out.setsampwidth(SAMPLE_BYTES)
                out.setframerate(RATE)
                for part in recording.read():
                    out.writeframes(part)
            return recording.size / BYTES_PER_SECOND

    def seal_key_file(self, passphrase: str) -> None:
        """Seal the key file under a new passphrase (then set recordings.key_passphrase)."""
        keys.save(self.key_file, keys.load(self.key_file, self.passphrase), passphrase)
        self.audit("cli", "keys.seal", str(self.key_file))

    # keys ------------------------------------------------------------------------------
    def rotate_keys(self, actor: str) -> tuple[str, int]:
        """New master key; every data key re-wrapped under it; old master keys retired."""
        ring = keys.load(self.key_file, self.passphrase)
        old = list(ring.keys)
        new_id = ring.add_key()
        keys.save(self.key_file, ring, self.passphrase)
        count = 0
        with self.sessions.begin() as session:
            for row in session.scalars(select(Recording).where(Recording.key_id != new_id)):
                wrapped = keys.WrappedKey(row.key_id, bytes.fromhex(row.wrapped_key))
                fresh = ring.rewrap(wrapped, bytes.fromhex(row.file_id))
                row.key_id, row.wrapped_key = fresh.key_id, fresh.blob.hex()
                count += 1
            session.add(
                AuditEntry(
                    actor=actor,
                    action="keys.rotate",
                    subject=new_id,
                    detail=f"{count} recording key(s) re-wrapped",
                )
            )
        for key_id in old:
            ring.retire(key_id)
        keys.save(self.key_file, ring, self.passphrase)
        return new_id, count

    def delete(self, call_id: str, actor: str) -> None:
        """Crypto-erasure: the wrapped key goes first, then the file."""
        with self.sessions.begin() as session:
            row = session.get(Recording, call_id)
            if row is None:
                raise RecordingNotFound(call_id)
            file_name = row.file_name
            session.execute(delete(Recording).where(Recording.call_id == call_id))
            session.add(AuditEntry(actor=actor, action="recording.delete", subject=call_id))
        (self.store_dir / file_name).unlink(missing_ok=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
