"""The spool trusts nothing it finds: hostile entries against the real filesystem and a real
SQLite database, through the sweeper and the vault. Every refusal leaves a symlink's target
untouched and is audited with its reason; a bad entry never blocks the sweeper nor stops it
sealing the others; a crash at any step of sealing loses nothing and leaves no plaintext."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import pwd
import stat
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from appliance.db.engine import session_factory
from appliance.db.models import AuditEntry, Call, Recording
from appliance.recordings import keys, vault
from appliance.recordings.spool import SpoolSweeper
from appliance.recordings.spool_files import done_name, raw_name
from appliance.recordings.vault import RecordingNotFound, RecordingVault, SpoolFileRefused
from tests.made_once import migrated_sqlite

CAP = 64 * 1024  # the size cap for these tests
GUARD = 20.0  # seconds: a guard against a hang, never a measurement
AUDIO = bytes(range(256)) * 100  # 25.6 kB


@dataclass
class World:
    root: Path
    sessions: sessionmaker[Session]
    vault: RecordingVault
    spool: Path
    key_file: Path
    active: set[str] = field(default_factory=set)
    n: int = 0

    def sweeper(self) -> SpoolSweeper:
        async def active() -> set[str]:
            return set(self.active)

        return SpoolSweeper(self.vault, self.spool, active, interval=0.01)

    def linkedid(self) -> str:
        self.n += 1
        return f"1732870000.{self.n}"

    def call(self, linkedid: str) -> str:
        call_id = uuid.uuid4().hex
        with self.sessions.begin() as session:
            session.add(Call(id=call_id, linkedid=linkedid, dialled="12025550123"))
        return call_id

    def raw(self, linkedid: str) -> Path:
        return self.spool / raw_name(linkedid)

    def done(self, linkedid: str) -> Path:
        return self.spool / done_name(linkedid)

    def record(self, linkedid: str, audio: bytes = AUDIO, finished: bool = True) -> Path:
        path = self.raw(linkedid)
        path.write_bytes(audio)
        if finished:
            self.done(linkedid).touch()
        return path

    def audio(self, call_id: str) -> bytes:
        with self.vault.open(call_id, "test", "recording.export") as recording:
            return b"".join(recording.read())

    def recordings(self) -> list[Recording]:
        with self.sessions() as session:
            return list(session.scalars(select(Recording)))

    def audit(self, action: str) -> list[tuple[str | None, str | None]]:
        with self.sessions() as session:
            rows = session.scalars(
                select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
            )
            return [(row.subject, row.detail) for row in rows]

    def store_files(self) -> list[Path]:
        store = self.root / "store"
        return sorted(p for p in store.rglob("*") if p.is_file()) if store.exists() else []


@pytest.fixture
def world(tmp_path):
    engine = migrated_sqlite(tmp_path / "t.db")
    sessions = session_factory(engine)
    key_file = tmp_path / "keys"
    keys.create(key_file)
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o770)
    store = RecordingVault(
        sessions,
        tmp_path / "store",
        key_file,
        spool_owners={os.getuid()},
        max_spool_bytes=CAP,
    )
    yield World(tmp_path, sessions, store, spool, key_file)
    engine.dispose()


class Fifos:
    """FIFOs a test makes. Should a reader ever block on one, release() opens its write end so
    that the blocked thread returns: the test then fails instead of hanging the run."""

    def __init__(self) -> None:
        self.made: list[Path] = []

    def __call__(self, path: Path) -> Path:
        os.mkfifo(path, 0o660)
        self.made.append(path)
        return path

    def release(self) -> None:
        for path in self.made:
            with contextlib.suppress(OSError):
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))


_fifos: Fifos | None = None


@pytest.fixture
def fifos():
    global _fifos
    _fifos = Fifos()
    yield _fifos
    _fifos.release()
    _fifos = None


async def guarded(awaitable):
    """Await with a guard against a hang (never a measurement): on timeout, blocked readers
    of the test's FIFOs are released before the test fails."""
    try:
        return await asyncio.wait_for(awaitable, GUARD)
    except TimeoutError:
        if _fifos is not None:
            _fifos.release()
        raise AssertionError(f"blocked for {GUARD} s") from None


async def sweep(sweeper: SpoolSweeper) -> int:
    return await guarded(sweeper.sweep())


def assert_refused(world: World, subject: str, *words: str) -> None:
    refusals = world.audit("recording.refused")
    assert refusals, "the refusal is not in the audit log"
    who, detail = refusals[-1]
    assert who == subject
    for word in words:
        assert word in detail


# symlinks --------------------------------------------------------------------------------
async def test_a_symlink_to_the_key_file_is_refused_and_the_key_file_untouched(world, caplog):
    linkedid = world.linkedid()
    call_id = world.call(linkedid)
    key_bytes = world.key_file.read_bytes()
    world.raw(linkedid).symlink_to(world.key_file)
    world.done(linkedid).touch()
    sweeper = world.sweeper()
    with caplog.at_level(logging.WARNING):
        assert await sweep(sweeper) == 0
    assert not os.path.lexists(world.raw(linkedid)) and not world.done(linkedid).exists()
    assert world.key_file.read_bytes() == key_bytes
    assert stat.S_IMODE(world.key_file.stat().st_mode) == 0o600
    assert world.recordings() == [] and world.store_files() == []
    with pytest.raises(RecordingNotFound):
        world.vault.load(call_id, "test", "recording.export")
    assert_refused(world, call_id, raw_name(linkedid), "symbolic link", "removed")
    assert sweeper.refused == 1 and sweeper.healthy
    assert f"spool file {raw_name(linkedid)} refused and removed" in caplog.text


async def test_a_symlink_to_dev_zero_is_never_read(world):
    linkedid = world.linkedid()
    call_id = world.call(linkedid)
    world.raw(linkedid).symlink_to("/dev/zero")
    world.done(linkedid).symlink_to("/dev/zero")  # a marker is never opened either
    sweeper = world.sweeper()
    assert await sweep(sweeper) == 0
    assert not os.path.lexists(world.raw(linkedid)) and not os.path.lexists(world.done(linkedid))
    assert stat.S_ISCHR(os.stat("/dev/zero").st_mode)
    assert world.store_files() == []  # not a byte written
    assert_refused(world, call_id, "symbolic link")


async def test_a_dangling_symlink_and_one_to_a_directory_are_removed(world, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep").write_bytes(b"keep")
    dangling, to_dir = world.linkedid(), world.linkedid()
    world.raw(dangling).symlink_to(tmp_path / "nothing-here")
    world.done(dangling).touch()
    world.raw(to_dir).symlink_to(elsewhere, target_is_directory=True)
    world.done(to_dir).touch()
    sweeper = world.sweeper()
    assert await sweep(sweeper) == 0
    assert list(world.spool.iterdir()) == []
    assert (elsewhere / "keep").read_bytes() == b"keep"
    assert sweeper.refused == 2
    # no call row for either yet: the audit names the linkedid
    assert [who for who, _ in world.audit("recording.refused")] == [dangling, to_dir]


async def test_a_symlink_swapped_in_after_the_check_is_refused(world, monkeypatch):
    """The check and the open race: what is opened is judged, and O_NOFOLLOW stops a link."""
    linkedid = world.linkedid()
    call_id = world.call(linkedid)
    world.record(linkedid)
    real_check = RecordingVault._check

    def swap_then_check(self, st):
        path = world.raw(linkedid)
        if not path.is_symlink():
            path.unlink()
            path.symlink_to(world.key_file)
        return real_check(self, st)

    monkeypatch.setattr(RecordingVault, "_check", swap_then_check)
    with pytest.raises(SpoolFileRefused) as refused:
        await guarded(asyncio.to_thread(world.vault.seal, world.raw(linkedid), linkedid))
    assert refused.value.removed
    assert not os.path.lexists(world.raw(linkedid)) and world.key_file.exists()
    assert world.recordings() == []
    assert_refused(world, call_id, "symbolic link")


# FIFOs, devices, directories ------------------------------------------------------------
async def test_a_fifo_never_blocks_the_sweeper_and_the_others_are_sealed(world, fifos):
    bad, good = world.linkedid(), world.linkedid()
    bad_call, good_call = world.call(bad), world.call(good)
    fifos(world.raw(bad))
    world.done(bad).touch()
    world.record(good)
    sweeper = world.sweeper()
    assert await sweep(sweeper) == 1
    assert list(world.spool.iterdir()) == []
    assert world.audio(good_call) == AUDIO
    assert_refused(world, bad_call, "FIFO", "removed")
    assert sweeper.refused == 1 and sweeper.healthy


async def test_the_running_sweeper_refuses_a_fifo_and_goes_on(world, fifos):
    """The reported case: a FIFO hung the sweeper while /health stayed green. Waits on the
    sweeper's own counter, not on time."""
    sweeper = world.sweeper()
    task = asyncio.create_task(sweeper.run())
    try:
        first = world.linkedid()
        world.call(first)
        fifos(world.raw(first))
        world.done(first).touch()

        # ASYNC110: waits on the sweeper's own counter, bounded by guarded()
        async def refused_one() -> None:
            while sweeper.refused < 1:  # noqa: ASYNC110
                await asyncio.sleep(0.01)

        await guarded(refused_one())
        after = world.linkedid()
        after_call = world.call(after)
        world.record(after)

        async def sealed() -> None:
            while not world.recordings():  # noqa: ASYNC110 - a row in the database, bounded
                await asyncio.sleep(0.01)

        await guarded(sealed())
        assert world.audio(after_call) == AUDIO
        assert sweeper.healthy and not task.done()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        fifos.release()


async def test_a_fifo_swapped_in_after_the_check_is_opened_without_blocking(
    world, fifos, monkeypatch
):
    linkedid = world.linkedid()
    call_id = world.call(linkedid)
    world.record(linkedid)
    real_check = RecordingVault._check

    def swap_then_check(self, st):
        path = world.raw(linkedid)
        if not stat.S_ISFIFO(os.lstat(path).st_mode):
            path.unlink()
            fifos(path)
        return real_check(self, st)

    monkeypatch.setattr(RecordingVault, "_check", swap_then_check)
    with pytest.raises(SpoolFileRefused):
        await guarded(asyncio.to_thread(world.vault.seal, world.raw(linkedid), linkedid))
    assert not os.path.lexists(world.raw(linkedid))
    assert_refused(world, call_id, "FIFO")


async def test_a_fifo_as_marker_is_never_opened(world, fifos):
    linkedid = world.linkedid()
    call_id = world.call(linkedid)
    world.record(linkedid, finished=False)
    fifos(world.done(linkedid))
    assert await sweep(world.sweeper()) == 1
    assert list(world.spool.iterdir()) == []
    assert world.audio(call_id) == AUDIO


async def test_a_device_node_is_refused_without_being_opened(world):
    if os.geteuid() != 0:
        pytest.skip("making a device node needs root")
    linkedid = world.linkedid()
    call_id = world.call(linkedid)
    os.mknod(world.raw(linkedid), 0o660 | stat.S_IFCHR, os.makedev(1, 5))  # like /dev/zero
    world.done(linkedid).touch()
    assert await sweep(world.sweeper()) == 0
    assert not os.path.lexists(world.raw(linkedid))
    assert world.store_files() == []
    assert_refused(world, call_id, "character device")


async def test_a_directory_with_a_recordings_name_is_removed(world, tmp_path):
    linkedid = world.linkedid()
    call_id = world.call(linkedid)
    outside = tmp_path / "outside"
    outside.write_bytes(b"outside")
    directory = world.raw(linkedid)
    directory.mkdir()
    (directory / "inner").write_bytes(b"x")
    (directory / "link").symlink_to(outside)
    world.done(linkedid).mkdir()  # a marker may be a directory too
    sweeper = world.sweeper()
    assert await sweep(sweeper) == 0
    assert list(world.spool.iterdir()) == []
    assert outside.read_bytes() == b"outside"
    assert_refused(world, call_id, "directory", "removed")
    assert sweeper.refused == 1


# links and owners -----------------------------------------------------------------------
async def test_a_hard_link_is_refused_and_the_other_name_keeps_its_content(world, tmp_path):
    linkedid = world.linkedid()
    call_id = world.call(linkedid)
    other = world.spool / "asterisk-owned-file"  # same filesystem as the spool
    other.write_bytes(b"not a recording")
    os.link(other, world.raw(linkedid))
    world.done(linkedid).touch()
    assert await sweep(world.sweeper()) == 0
    assert not world.raw(linkedid).exists()
    assert other.read_bytes() == b"not a recording" and other.stat().st_nlink == 1
    assert world.recordings() == []
    assert_refused(world, call_id, "2 hard links")


async def test_a_file_owned_by_another_user_is_refused(world):
    if os.geteuid() != 0:
        pytest.skip("chown needs root")
    nobody = pwd.getpwnam("nobody").pw_uid
    linkedid = world.linkedid()
    call_id = world.call(linkedid)
    path = world.record(linkedid)
    os.chown(path, nobody, -1)
    assert await sweep(world.sweeper()) == 0
    assert not path.exists() and not world.done(linkedid).exists()
    assert world.recordings() == []
    assert_refused(world, call_id, f"owned by uid {nobody}")


async def test_allowed_owners_come_from_the_caller(world, tmp_path):
    other_owner = RecordingVault(
        world.sessions,
        tmp_path / "store",
        world.key_file,
        spool_owners={os.getuid() + 1},
        max_spool_bytes=CAP,
    )
    linkedid = world.linkedid()
    world.call(linkedid)
    world.record(linkedid)
    with pytest.raises(SpoolFileRefused) as refused:
        other_owner.seal(world.raw(linkedid), linkedid)
    assert f"owned by uid {os.getuid()}" in refused.value.reason


# size ------------------------------------------------------------------------------------
async def test_a_file_over_the_cap_is_kept_raises_the_alert_and_turns_health_red(world, caplog):
    big, small = world.linkedid(), world.linkedid()
    big_call, small_call = world.call(big), world.call(small)
    world.record(big, b"\x01" * (CAP + 1))
    world.record(small)
    sweeper = world.sweeper()
    with caplog.at_level(logging.ERROR):
        assert await sweep(sweeper) == 1
    assert world.raw(big).stat().st_size == CAP + 1  # kept for an admin
    assert world.audio(small_call) == AUDIO
    assert f"ALERT recording of call {big} cannot be sealed" in caplog.text
    assert "size cap" in caplog.text
    assert not sweeper.healthy and sweeper.refused == 1
    assert_refused(world, big_call, f"over the size cap of {CAP} bytes", "kept")
    assert world.store_files() == [world.root / "store" / world.recordings()[0].file_name]

    assert await sweep(sweeper) == 0  # the same file is not examined (nor audited) again
    assert len(world.audit("recording.refused")) == 1 and sweeper.refused == 1
    assert not sweeper.healthy

    world.raw(big).unlink()  # the admin deals with it
    world.done(big).unlink()
    await sweep(sweeper)
    assert sweeper.healthy


async def test_a_file_that_keeps_growing_is_read_no_further_than_the_cap(world, monkeypatch):
    """Under the cap when checked, then it grows with every read: the sealer stops after
    cap + 1 bytes, keeps the file and leaves no half-sealed file behind."""
    linkedid = world.linkedid()
    call_id = world.call(linkedid)
    path = world.record(linkedid, b"\x02" * 1000)
    real_encrypt = vault.encrypt
    sources = []

    def growing(source, target, key, header):
        sources.append(source)
        real_read = source.read

        def read(size=-1):
            with open(path, "ab") as grow:  # the writer outruns the reader
                grow.write(b"\x03" * 8192)
            return real_read(size)

        source.read = read
        return real_encrypt(source, target, key, header)

    monkeypatch.setattr(vault, "encrypt", growing)
    sweeper = world.sweeper()
    assert await sweep(sweeper) == 0
    (source,) = sources
    assert source.total == CAP + 1
    assert path.stat().st_size > CAP + 1  # it did grow; the sealer stopped anyway
    assert world.recordings() == []
    assert not list((world.root / "store").rglob("*.partial"))
    assert not sweeper.healthy and sweeper.refused == 1
    assert_refused(world, call_id, "grew past the size cap", "kept")


# never replace ---------------------------------------------------------------------------
async def test_a_second_file_for_a_sealed_call_is_refused_and_audited(world, caplog):
    linkedid = world.linkedid()
    call_id = world.call(linkedid)
    world.record(linkedid)
    sweeper = world.sweeper()
    assert await sweep(sweeper) == 1
    (before,) = world.recordings()
    sealed_bytes = (world.root / "store" / before.file_name).read_bytes()

    world.record(linkedid, b"\x7f" * 5000)
    with caplog.at_level(logging.WARNING):
        assert await sweep(sweeper) == 0
    assert list(world.spool.iterdir()) == []
    (after,) = world.recordings()
    assert (after.file_id, after.wrapped_key, after.file_name) == (
        before.file_id,
        before.wrapped_key,
        before.file_name,
    )
    assert (world.root / "store" / after.file_name).read_bytes() == sealed_bytes
    assert world.audio(call_id) == AUDIO
    assert_refused(world, call_id, "already sealed", "removed")
    assert [who for who, _ in world.audit("recording.seal")] == [call_id]
    assert "refused and removed" in caplog.text and sweeper.refused == 1


# what the sweeper leaves alone -----------------------------------------------------------
async def test_names_that_do_not_parse_are_ignored(world, fifos):
    names = [
        "0123456789abcdef0123456789abcdef.raw",
        "0123456789abcdef0123456789abcdef.done",
        "L1732870000.1.raw.bak",
        "L1732870000.1.partial",
        "notes.txt",
        "L١٧٣٢.١.raw",  # noqa: RUF001 - Arabic-Indic digits, on purpose
    ]
    for name in names:
        (world.spool / name).write_bytes(b"x")
    fifos(world.spool / "x.raw")
    sweeper = world.sweeper()
    assert await sweep(sweeper) == 0
    assert await guarded(sweeper.sweep_orphans()) == 0
    assert sorted(p.name for p in world.spool.iterdir()) == sorted([*names, "x.raw"])
    assert world.audit("recording.refused") == [] and sweeper.refused == 0


async def test_a_recording_waits_for_its_call_row(world):
    linkedid = world.linkedid()
    world.record(linkedid)
    sweeper = world.sweeper()
    assert await sweep(sweeper) == 0
    assert world.raw(linkedid).exists() and sweeper.healthy
    call_id = world.call(linkedid)
    assert await sweep(sweeper) == 1
    assert world.audio(call_id) == AUDIO


async def test_orphans_of_active_calls_wait_and_the_others_are_sealed(world):
    live, over = world.linkedid(), world.linkedid()
    world.call(live)
    over_call = world.call(over)
    world.record(live, finished=False)
    world.record(over, finished=False)
    world.active = {live}
    sweeper = world.sweeper()
    assert await sweep(sweeper) == 0  # no marker: not finished
    assert await guarded(sweeper.sweep_orphans()) == 1
    assert [p.name for p in world.spool.iterdir()] == [raw_name(live)]
    assert world.audio(over_call) == AUDIO


async def test_a_vault_without_owners_keeps_everything_and_says_so(world, tmp_path, caplog):
    world.vault = RecordingVault(world.sessions, tmp_path / "store", world.key_file)
    linkedid = world.linkedid()
    world.call(linkedid)
    world.record(linkedid)
    sweeper = world.sweeper()
    with caplog.at_level(logging.ERROR):
        assert await sweep(sweeper) == 0
    assert world.raw(linkedid).read_bytes() == AUDIO
    assert not sweeper.healthy and "ALERT recording of call" in caplog.text


async def test_a_stale_marker_is_cleared(world):
    linkedid = world.linkedid()
    world.done(linkedid).touch()
    await sweep(world.sweeper())
    assert list(world.spool.iterdir()) == []


# crash at each step ----------------------------------------------------------------------
class Crash(OSError):
    def __init__(self) -> None:
        super().__init__(errno.EIO, "simulated crash")


def crash(*_args, **_kwargs):
    raise Crash()


@contextlib.contextmanager
def crashing_at(step: str, world: World, monkeypatch):
    with monkeypatch.context() as patch:
        if step == "encrypt":
            patch.setattr(vault, "encrypt", crash)
        elif step == "replace":
            patch.setattr(vault.os, "replace", crash)
        elif step == "fsync directory":
            patch.setattr(vault, "_fsync_dir", crash)
        elif step == "wrap":
            patch.setattr(keys.KeyRing, "wrap", crash)
        elif step == "unlink plaintext":
            patch.setattr(vault, "_remove", crash)
        if step == "commit":
            event.listen(world.sessions, "before_commit", crash)
        try:
            yield
        finally:
            if step == "commit":
                event.remove(world.sessions, "before_commit", crash)


STEPS = ["encrypt", "replace", "fsync directory", "wrap", "commit", "unlink plaintext"]


@pytest.mark.parametrize("step", STEPS)
async def test_a_crash_at_any_step_loses_nothing_and_the_next_sweep_recovers(
    world, monkeypatch, step
):
    linkedid = world.linkedid()
    call_id = world.call(linkedid)
    world.record(linkedid)
    sweeper = world.sweeper()
    with crashing_at(step, world, monkeypatch):
        await sweep(sweeper)
    assert world.raw(linkedid).read_bytes() == AUDIO  # the plaintext is still there
    assert world.done(linkedid).exists()
    committed = world.recordings()
    if step == "unlink plaintext":
        assert len(committed) == 1 and sweeper.healthy  # sealed: only the cleanup is left
    else:
        assert committed == [] and not sweeper.healthy  # not sealed: the ALERT is up

    await sweep(sweeper)
    assert list(world.spool.iterdir()) == []  # no plaintext left
    (row,) = world.recordings()
    assert world.audio(call_id) == AUDIO  # nothing lost
    assert world.store_files() == [world.root / "store" / row.file_name]
    assert sweeper.healthy
    assert [who for who, _ in world.audit("recording.seal")] == [call_id]


async def test_leftovers_of_a_hard_crash_are_overwritten_not_trusted(world):
    """A run killed after the move and before the commit leaves a sealed file without a key
    (and maybe a half-written temporary): the next seal replaces both."""
    linkedid = world.linkedid()
    call_id = world.call(linkedid)
    world.record(linkedid)
    probe = world.vault.seal  # where would it go? Seal a twin call to learn the month folder
    twin = world.linkedid()
    twin_call = world.call(twin)
    world.record(twin, b"twin")
    month = Path(probe(world.raw(twin), twin).file_name).parent
    folder = world.root / "store" / month
    (folder / f"{call_id}.rec").write_bytes(b"orphan sealed with a lost key")
    (folder / f"{call_id}.partial").write_bytes(b"half")
    assert await sweep(world.sweeper()) == 1
    assert world.audio(call_id) == AUDIO and world.audio(twin_call) == b"twin"
    assert not list((world.root / "store").rglob("*.partial"))
    assert list(world.spool.iterdir()) == []
