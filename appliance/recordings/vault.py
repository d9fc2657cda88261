"""Sealed recordings on disk and their wrapped keys in the database. Blocking: the event loop
calls in through asyncio.to_thread.

The spool is written by Asterisk, so nothing found there is trusted: a spool file is opened
without following a symlink and without blocking, and sealed only if the open descriptor is a
regular file, owned by an allowed user (Asterisk's), with a single link and no bigger than the
size cap; reading stops at the cap too. Anything else is refused (SpoolFileRefused), removed
from the spool unless it may be a real recording (too big: kept for an admin), and the refusal
is written to the audit log. A spool file never replaces a recording: a second file for a call
that already has one is refused the same way (only `reseal`, for a redacted copy, does). Nor
is a restricted caller's call ever sealed: should the dialplan have recorded one, its spool
file is refused and removed ("restricted caller").

Order of sealing, so that a crash at any point loses nothing: encrypt into a temporary file and
fsync it, move it into place and fsync the directory, commit the wrapped key (with the audit
row), and only then delete the plaintext and its marker from the spool. An interrupted run
leaves at worst a sealed file without a key (unreadable, overwritten by the next try) and the
plaintext still in the spool, to be sealed again.
"""

from __future__ import annotations

import datetime as dt
import errno
import logging
import os
import shutil
import stat
import threading
import time
import wave
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from appliance.conversions import call_events
from appliance.db.forget import forget
from appliance.db.models import AuditEntry, Call, Recording
from appliance.recordings import keys, spool_files
from appliance.recordings.container import (
    Header,
    RecordingError,
    SealedRecording,
    encrypt,
    new_header,
)

log = logging.getLogger(__name__)

AUDIO_FORMAT = "slin8-stereo"  # 16-bit LE PCM, 8000 Hz, caller left, callee right
CHANNELS, RATE, SAMPLE_BYTES = 2, 8000, 2
BYTES_PER_SECOND = CHANNELS * RATE * SAMPLE_BYTES
DEFAULT_MAX_SPOOL_BYTES = 1 << 30  # 1 GiB: about 9 hours of audio
SPOOL_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
ACTOR = "controller"


class CallNotRecordedYet(Exception):
    """The call's record is not in the database yet: try again shortly."""


class RecordingNotFound(Exception):
    """No recording for that call."""


class SpoolNotConfigured(Exception):
    """The vault was built without the spool's allowed owners, so it seals nothing."""


class SpoolFileRefused(Exception):
    """A spool entry that is not sealed. `reason` says why (no personal data); `removed`: the
    entry is gone from the spool, otherwise it is kept there for an admin (a regular file
    over the size cap, or an entry that could not be removed); `identity` is the entry's
    (st_dev, st_ino) when it was refused. Every refusal is in the audit log."""

    def __init__(
        self, reason: str, *, removed: bool, subject: str, identity: tuple[int, int] | None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.removed = removed
        self.subject = subject
        self.identity = identity


@dataclass(frozen=True)
class Sealed:
    call_id: str
    file_name: str
    plaintext_bytes: int
    seconds: float
    written_at: float  # epoch seconds of the spool file's last write: when recording stopped


class _Refusal(Exception):
    def __init__(self, reason: str, keep: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.keep = keep


class _CappedReader:
    """Reads an open descriptor, never more than cap + 1 bytes in all: more is a refusal."""

    def __init__(self, fd: int, cap: int) -> None:
        self.fd = fd
        self.cap = cap
        self.total = 0

    def read(self, size: int = -1) -> bytes:
        left = self.cap + 1 - self.total
        if left <= 0:
            return b""
        data = os.read(self.fd, left if size < 0 else min(size, left))
        self.total += len(data)
        if self.total > self.cap:
            raise _Refusal(f"grew past the size cap of {self.cap} bytes while being sealed", True)
        return data


class _Changed:
    """A sealed recording's plaintext, each chunk changed on the way, read as a stream."""

    def __init__(self, recording: SealedRecording, change: Callable[[int, bytes], bytes]):
        self.chunks = recording.read()
        self.change = change
        self.offset = 0
        self.pending = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self.pending) < size:
            chunk = next(self.chunks, None)
            if chunk is None:
                break
            changed = self.change(self.offset, chunk)
            if len(changed) != len(chunk):
                raise ValueError("a changed chunk must keep its size")
            self.offset += len(chunk)
            self.pending += changed
        if size < 0:
            size = len(self.pending)
        data, self.pending = self.pending[:size], self.pending[size:]
        return data


class RecordingVault:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        store_dir: Path,
        key_file: Path,
        passphrase: str | None = None,
        *,
        spool_owners: Collection[int] = (),
        max_spool_bytes: int = DEFAULT_MAX_SPOOL_BYTES,
        on_sealed: Callable[[Session, str, float], None] | None = None,
    ) -> None:
        if max_spool_bytes < 0:
            raise ValueError("max_spool_bytes must not be negative")
        self.sessions = sessions
        self.store_dir = store_dir
        self.key_file = key_file
        self.passphrase = passphrase or None
        self.spool_owners = frozenset(spool_owners)
        self.max_spool_bytes = max_spool_bytes
        self.on_sealed = on_sealed  # in the transaction that stores a recording (queues work)
        self._ring: tuple[tuple[int, int], keys.KeyRing] | None = None
        self._sealing = threading.Lock()  # one seal at a time: a call's file is never raced

    def ring(self) -> keys.KeyRing:
        """The key ring, read again whenever the key file changes (unsealing is slow)."""
        try:
            info = self.key_file.stat()
        except FileNotFoundError:
            raise keys.KeyProblem(f"key file {self.key_file} is missing") from None
        version = (info.st_mtime_ns, info.st_ino)
        if self._ring is None or self._ring[0] != version:
            self._ring = (version, keys.load(self.key_file, self.passphrase))
        return self._ring[1]

    # sealing ---------------------------------------------------------------------------
    def seal(self, spool_file: Path, linkedid: str) -> Sealed:
        """Seal the spool file `L<linkedid>.raw` as the recording of the call with that
        linkedid, then delete it and its `.done` marker.

        Raises CallNotRecordedYet (no call row yet: try again), SpoolFileRefused (not
        sealed, audited; removed unless kept for an admin), FileNotFoundError (the entry is
        gone), SpoolNotConfigured, KeyProblem or OSError (nothing lost: the plaintext stays).
        """
        if spool_file.name != spool_files.raw_name(linkedid):
            raise ValueError(f"{spool_file.name!r:.60} is not the spool file of {linkedid}")
        if not self.spool_owners:
            raise SpoolNotConfigured("no allowed owner uid for spool files was configured")
        with self._sealing:
            return self._seal(spool_file, linkedid)

    def _seal(self, spool_file: Path, linkedid: str) -> Sealed:
        found = self._find_call(linkedid)
        subject = found[0] if found else linkedid
        seen = os.lstat(spool_file)
        identity = (seen.st_dev, seen.st_ino)
        try:
            self._check(seen)  # before opening: a device or FIFO is never opened at all
            try:
                fd = os.open(spool_file, SPOOL_OPEN_FLAGS)
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENXIO, errno.EISDIR):
                    raise
                reason = "replaced by a symbolic link or special file"
                try:  # swapped since the lstat: refuse (and remove) what is there now
                    now = os.lstat(spool_file)
                    identity = (now.st_dev, now.st_ino)
                    reason = f"not a regular file but a {_kind(now.st_mode)}"
                except FileNotFoundError:
                    pass
                raise _Refusal(reason) from None
        except _Refusal as refusal:
            raise self._refuse(spool_file, linkedid, subject, identity, refusal) from None
        try:
            try:
                st = os.fstat(fd)
                identity = (st.st_dev, st.st_ino)
                self._check(st)
                if found is None:
                    raise CallNotRecordedYet(linkedid)
                call_id, sealed_before, restricted = found
                if restricted:  # the dialplan should not have recorded it: nothing is kept
                    raise _Refusal("restricted caller")
                if sealed_before:
                    raise _Refusal("a recording is already sealed for this call")
                return self._seal_open(fd, spool_file, linkedid, call_id, identity, st.st_mtime)
            except _Refusal as refusal:
                raise self._refuse(spool_file, linkedid, subject, identity, refusal) from None
        finally:
            os.close(fd)

    def _check(self, st: os.stat_result) -> None:
        if not stat.S_ISREG(st.st_mode):
            raise _Refusal(f"not a regular file but a {_kind(st.st_mode)}")
        if st.st_uid not in self.spool_owners:
            raise _Refusal(f"owned by uid {st.st_uid}, which may not write recordings")
        if st.st_nlink != 1:
            raise _Refusal(f"has {st.st_nlink} hard links")
        if st.st_size > self.max_spool_bytes:
            raise _Refusal(
                f"{st.st_size} bytes, over the size cap of {self.max_spool_bytes} bytes", True
            )

    def _find_call(self, linkedid: str) -> tuple[str, bool, bool] | None:
        """The call id for a linkedid, whether it has a sealed recording and whether its
        caller is restricted (never recorded); None: no call."""
        with self.sessions() as session:
            row = session.execute(
                select(Call.id, Call.restricted).where(Call.linkedid == linkedid)
            ).first()
            if row is None:
                return None
            call_id, restricted = row
            return call_id, session.get(Recording, call_id) is not None, bool(restricted)

    def _seal_open(
        self,
        fd: int,
        spool_file: Path,
        linkedid: str,
        call_id: str,
        identity: tuple[int, int],
        written_at: float,
    ) -> Sealed:
        ring = self.ring()
        now = dt.datetime.now(dt.UTC)
        file_name = f"{now:%Y/%m}/{call_id}.rec"
        # An orphan of an interrupted run (sealed, its key never committed) is replaced; a
        # committed recording never is: the call was checked to have none.
        data_key, header, size = self._write_sealed(
            cast(BinaryIO, _CappedReader(fd, self.max_spool_bytes)), self.store_dir / file_name
        )
        wrapped = ring.wrap(data_key, header.file_id)
        seconds = round(size / BYTES_PER_SECOND, 3)
        with self.sessions.begin() as session:
            session.add(
                Recording(
                    call_id=call_id,
                    file_name=file_name,
                    file_id=header.file_id.hex(),
                    key_id=wrapped.key_id,
                    wrapped_key=wrapped.blob.hex(),
                    audio_format=AUDIO_FORMAT,
                    plaintext_bytes=size,
                    seconds=seconds,
                )
            )
            session.add(
                AuditEntry(
                    actor=ACTOR,
                    action="recording.seal",
                    subject=call_id,
                    detail=f"{size} bytes, {seconds:.1f} s",
                )
            )
            call_events.recording_ready(session, call_id, seconds, AUDIO_FORMAT)
            if self.on_sealed is not None:
                self.on_sealed(session, call_id, time.time())
        self._settle_key(call_id, header.file_id, data_key, wrapped)
        # Sealed and committed: the plaintext may go. A failure here loses nothing; the
        # marker is kept so the next sweep finds the leftover (refused: already sealed).
        try:
            if _remove(spool_file, identity):
                _remove_quietly(spool_file.with_name(spool_files.done_name(linkedid)))
        except OSError as exc:
            log.error("recording of call %s sealed, but its plaintext stays: %s", call_id, exc)
        return Sealed(call_id, file_name, size, size / BYTES_PER_SECOND, written_at)

    def _write_sealed(self, source: BinaryIO, target: Path) -> tuple[bytes, Header, int]:
        """Seal `source` under a new data key into `target` (written beside it, fsynced, then
        moved into place); the data key, the header and the plaintext size."""
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = target.with_suffix(".partial")
        data_key, header = keys.new_data_key(), new_header()
        try:
            out = os.open(
                temporary,
                os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o600,
            )
            with os.fdopen(out, "wb") as sealed:
                size = encrypt(source, sealed, data_key, header)
                sealed.flush()
                os.fsync(sealed.fileno())
            os.replace(temporary, target)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        _fsync_dir(target.parent)
        return data_key, header, size

    def reseal(
        self, call_id: str, change: Callable[[int, bytes], bytes], actor: str, detail: str
    ) -> None:
        """Replace a recording with a changed copy (a redacted one): `change(offset, chunk)`
        gives each plaintext chunk's replacement, of the same size. The copy is sealed under a
        new data key; once its key is committed the original's is gone (crypto-erasure) and
        its file is deleted."""
        recording, stream = self.load(call_id, actor, "recording.redact")
        with stream:
            old_name = self._file_name(call_id)
            now = dt.datetime.now(dt.UTC)
            file_name = f"{now:%Y/%m}/{call_id}.{now:%Y%m%d%H%M%S%f}.rec"
            data_key, header, size = self._write_sealed(
                cast(BinaryIO, _Changed(recording, change)), self.store_dir / file_name
            )
        wrapped = self.ring().wrap(data_key, header.file_id)
        with self.sessions.begin() as session:
            row = session.scalar(
                select(Recording).where(Recording.call_id == call_id).with_for_update()
            )
            if row is None or row.file_name != old_name:  # erased or changed meanwhile
                (self.store_dir / file_name).unlink(missing_ok=True)
                raise RecordingNotFound(call_id)
            row.file_name, row.file_id = file_name, header.file_id.hex()
            row.key_id, row.wrapped_key = wrapped.key_id, wrapped.blob.hex()
            row.plaintext_bytes = size
            session.add(AuditEntry(actor=actor, action="recording.replace", subject=call_id,
                                   detail=detail))  # fmt: skip
        self._settle_key(call_id, header.file_id, data_key, wrapped)
        (self.store_dir / old_name).unlink(missing_ok=True)

    def _settle_key(
        self, call_id: str, file_id: bytes, data_key: bytes, wrapped: keys.WrappedKey
    ) -> None:
        """A data key just committed under a master key that a rotation has meanwhile
        replaced is wrapped again under the current one (the rotation may have re-wrapped the
        others already and will retire the old key): no recording is left behind under a
        retired key. The rotation writes its new current key before it re-wraps anything."""
        for _ in range(3):
            ring = self.ring()
            if wrapped.key_id == ring.current:
                return
            wrapped = ring.wrap(data_key, file_id)
            with self.sessions.begin() as session:
                row = session.scalar(
                    select(Recording)
                    .where(Recording.call_id == call_id, Recording.file_id == file_id.hex())
                    .with_for_update()
                )
                if row is None:  # erased or replaced meanwhile
                    return
                row.key_id, row.wrapped_key = wrapped.key_id, wrapped.blob.hex()

    def _file_name(self, call_id: str) -> str:
        with self.sessions() as session:
            row = session.get(Recording, call_id)
            if row is None:
                raise RecordingNotFound(call_id)
            return row.file_name

    def _refuse(
        self,
        spool_file: Path,
        linkedid: str,
        subject: str,
        identity: tuple[int, int],
        refusal: _Refusal,
    ) -> SpoolFileRefused:
        """Remove a refused entry (unless it is kept for an admin), audit it, and return the
        exception to raise. Removing a symlink never touches what it points to."""
        removed = False
        outcome = "kept in the spool"
        if not refusal.keep:
            try:
                if _remove(spool_file, identity):
                    outcome = "removed from the spool"
                    _remove_quietly(spool_file.with_name(spool_files.done_name(linkedid)))
                else:
                    outcome = "replaced in the spool meanwhile; the new entry is judged anew"
                removed = True
            except OSError as exc:
                outcome = f"kept in the spool, removing it failed: {exc.strerror}"
        detail = f"{spool_file.name}: {refusal.reason}; {outcome}"
        try:
            with self.sessions.begin() as session:
                session.add(
                    AuditEntry(
                        actor=ACTOR, action="recording.refused", subject=subject, detail=detail
                    )
                )
        except Exception:
            log.exception("audit log unavailable; refused spool file %s", detail)
        return SpoolFileRefused(refusal.reason, removed=removed, subject=subject, identity=identity)

    # reading ---------------------------------------------------------------------------
    def load(
        self,
        call_id: str,
        actor: str,
        action: str,
        client: str | None = None,
        account_id: int | None = None,
    ) -> tuple[SealedRecording, BinaryIO]:
        """Open a recording for reading (the caller closes the stream); the access is written
        to the audit log before a byte is decrypted."""
        with self.sessions.begin() as session:
            row = session.get(Recording, call_id)
            if row is None:
                raise RecordingNotFound(call_id)
            session.add(
                AuditEntry(
                    actor=actor,
                    action=action,
                    subject=call_id,
                    client=client,
                    account_id=account_id,
                )
            )
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

    def audit(
        self,
        actor: str,
        action: str,
        subject: str,
        client: str | None = None,
        detail: str | None = None,
        account_id: int | None = None,
    ) -> None:
        with self.sessions.begin() as session:
            session.add(
                AuditEntry(
                    actor=actor,
                    action=action,
                    subject=subject,
                    client=client,
                    detail=detail,
                    account_id=account_id,
                )
            )

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
        with self.sessions.begin() as session:
            count = _rewrap(session, ring, new_id)
            session.add(
                AuditEntry(
                    actor=actor,
                    action="keys.rotate",
                    subject=new_id,
                    detail=f"{count} recording key(s) re-wrapped",
                )
            )
        with self.sessions.begin() as session:  # any sealed meanwhile under an old key
            _rewrap(session, ring, new_id)
        for key_id in old:
            ring.retire(key_id)
        keys.save(self.key_file, ring, self.passphrase)
        return new_id, count

    def delete(self, call_id: str, actor: str, forget_now: bool = True) -> None:
        """Crypto-erasure: the wrapped key goes first, then the file. `forget_now=False`:
        the caller erases more and calls db.forget.forget itself when done."""
        with self.sessions.begin() as session:
            row = session.get(Recording, call_id)
            if row is None:
                raise RecordingNotFound(call_id)
            file_name = row.file_name
            session.execute(delete(Recording).where(Recording.call_id == call_id))
            session.add(AuditEntry(actor=actor, action="recording.delete", subject=call_id))
        (self.store_dir / file_name).unlink(missing_ok=True)
        if forget_now:  # the wrapped key's earlier copies in the database's files go too
            forget(self.sessions.kw["bind"], ["recordings"])


def _rewrap(session: Session, ring: keys.KeyRing, new_id: str) -> int:
    """Every data key not under master key `new_id` wrapped again under it; how many."""
    count = 0
    for row in session.scalars(
        select(Recording).where(Recording.key_id != new_id).with_for_update()
    ):
        wrapped = keys.WrappedKey(row.key_id, bytes.fromhex(row.wrapped_key))
        fresh = ring.rewrap(wrapped, bytes.fromhex(row.file_id))
        row.key_id, row.wrapped_key = fresh.key_id, fresh.blob.hex()
        count += 1
    return count


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path: Path, identity: tuple[int, int]) -> bool:
    """Remove a spool entry if it is still the one that was examined (a symlink itself, never
    its target; a directory with what is inside it). False: another entry took its name."""
    try:
        seen = os.lstat(path)
    except FileNotFoundError:
        return True
    if (seen.st_dev, seen.st_ino) != identity:
        return False
    _remove_entry(path, seen)
    return True


def _remove_quietly(path: Path) -> None:
    """Remove a `.done` marker, whatever it is, without opening it."""
    try:
        _remove_entry(path, os.lstat(path))
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("spool marker %s not removed: %s", path.name, exc)


def _remove_entry(path: Path, seen: os.stat_result) -> None:
    if not stat.S_ISDIR(seen.st_mode):
        os.unlink(path)
    elif shutil.rmtree.avoids_symlink_attacks:
        shutil.rmtree(path)
    else:  # pragma: no cover - Linux has the symlink-safe rmtree
        os.rmdir(path)


def _kind(mode: int) -> str:
    kinds = (
        (stat.S_ISLNK, "symbolic link"),
        (stat.S_ISFIFO, "FIFO"),
        (stat.S_ISDIR, "directory"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISSOCK, "socket"),
    )
    return next((name for test, name in kinds if test(mode)), "special file")
