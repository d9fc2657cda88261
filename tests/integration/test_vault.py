"""The vault against a real filesystem and a real SQLite database: sealing interrupted half-way
(a crash or a full disk mid-encryption) loses nothing, every seal is audited, and a spool file
is sealed only for a call that is in the database."""

import os
import uuid

import pytest
from sqlalchemy import select

from appliance.db.engine import session_factory
from appliance.db.models import AuditEntry, Call, Recording
from appliance.recordings import keys, vault
from appliance.recordings.spool_files import done_name, raw_name
from appliance.recordings.vault import (
    CallNotRecordedYet,
    RecordingVault,
    SpoolFileRefused,
    SpoolNotConfigured,
)
from tests.made_once import migrated_sqlite

LINKEDID = "1700000000.1"


@pytest.fixture
def world(tmp_path):
    engine = migrated_sqlite(tmp_path / "t.db")
    sessions = session_factory(engine)
    keys.create(tmp_path / "keys")
    spool = tmp_path / "spool"
    spool.mkdir()
    store = RecordingVault(
        sessions, tmp_path / "store", tmp_path / "keys", spool_owners={os.getuid()}
    )
    yield sessions, store, spool
    engine.dispose()


def add_call(sessions, linkedid: str, restricted: bool = False) -> str:
    call_id = uuid.uuid4().hex
    with sessions.begin() as session:
        session.add(
            Call(id=call_id, linkedid=linkedid, dialled="12025550123", restricted=restricted)
        )
    return call_id


def test_interrupted_sealing_keeps_the_plaintext_and_the_next_try_succeeds(
    world, tmp_path, monkeypatch
):
    sessions, store, spool_dir = world
    call_id = add_call(sessions, LINKEDID)
    spool = spool_dir / raw_name(LINKEDID)
    audio = bytes(range(256)) * 4000
    spool.write_bytes(audio)
    (spool_dir / done_name(LINKEDID)).touch()

    real_encrypt = vault.encrypt

    def crash_half_way(source, target, key, header):
        target.write(b"x" * 1000)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(vault, "encrypt", crash_half_way)
    with pytest.raises(OSError):
        store.seal(spool, LINKEDID)
    assert spool.read_bytes() == audio  # plaintext kept
    assert not list((tmp_path / "store").rglob("*.partial"))  # no half-sealed file left
    with sessions() as session:
        assert session.scalars(select(Recording)).all() == []

    monkeypatch.setattr(vault, "encrypt", real_encrypt)
    sealed = store.seal(spool, LINKEDID)
    assert sealed.call_id == call_id
    assert sealed.plaintext_bytes == len(audio)
    assert not spool.exists() and not (spool_dir / done_name(LINKEDID)).exists()
    with store.open(call_id, "test", "recording.export") as recording:
        assert b"".join(recording.read()) == audio


def test_seal_looks_the_call_up_by_linkedid_and_audits(world):
    sessions, store, spool_dir = world
    spool = spool_dir / raw_name(LINKEDID)
    spool.write_bytes(bytes(32_000 * 2))
    with pytest.raises(CallNotRecordedYet):
        store.seal(spool, LINKEDID)
    assert spool.exists()  # kept until the call's record is written

    call_id = add_call(sessions, LINKEDID)
    sealed = store.seal(spool, LINKEDID)
    assert (sealed.call_id, sealed.plaintext_bytes, sealed.seconds) == (call_id, 64_000, 2.0)
    with sessions() as session:
        entries = session.scalars(select(AuditEntry)).all()
        assert [(e.actor, e.action, e.subject, e.detail) for e in entries] == [
            ("controller", "recording.seal", call_id, "64000 bytes, 2.0 s")
        ]
        assert session.get(Recording, call_id).seconds == 2.0


def test_seal_checks_its_arguments_and_needs_the_spool_owners(world, tmp_path):
    sessions, store, spool_dir = world
    add_call(sessions, LINKEDID)
    spool = spool_dir / raw_name(LINKEDID)
    spool.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError):
        store.seal(spool, "1700000000.2")  # not that call's file
    with pytest.raises(ValueError):
        store.seal(spool_dir / "x.raw", "../x")
    unconfigured = RecordingVault(sessions, tmp_path / "store", tmp_path / "keys")
    with pytest.raises(SpoolNotConfigured):
        unconfigured.seal(spool, LINKEDID)
    assert spool.exists()  # a configuration mistake never costs a recording


def test_a_recording_is_never_replaced(world):
    sessions, store, spool_dir = world
    call_id = add_call(sessions, LINKEDID)
    spool = spool_dir / raw_name(LINKEDID)
    spool.write_bytes(b"first" * 1000)
    first = store.seal(spool, LINKEDID)
    spool.write_bytes(b"second" * 1000)
    (spool_dir / done_name(LINKEDID)).touch()
    with pytest.raises(SpoolFileRefused) as refused:
        store.seal(spool, LINKEDID)
    assert refused.value.removed and refused.value.subject == call_id
    assert not spool.exists() and not (spool_dir / done_name(LINKEDID)).exists()
    with store.open(call_id, "test", "recording.export") as recording:
        assert b"".join(recording.read()) == b"first" * 1000
    with sessions() as session:
        assert session.get(Recording, call_id).file_name == first.file_name
        (entry,) = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "recording.refused")
        ).all()
    assert entry.subject == call_id
    assert "already sealed" in entry.detail


def test_a_restricted_callers_spool_file_is_removed_not_sealed(world, tmp_path):
    """Should the dialplan record a caller on the restrict list (a caller ID in a form it
    does not list), sealing keeps nothing: the plaintext and its marker go, it is audited."""
    sessions, store, spool_dir = world
    restricted = add_call(sessions, LINKEDID, restricted=True)
    spool = spool_dir / raw_name(LINKEDID)
    spool.write_bytes(b"\x01\x02" * 8000)
    (spool_dir / done_name(LINKEDID)).touch()
    with pytest.raises(SpoolFileRefused) as refused:
        store.seal(spool, LINKEDID)
    assert refused.value.removed and refused.value.subject == restricted
    assert refused.value.reason == "restricted caller"
    assert not spool.exists() and not (spool_dir / done_name(LINKEDID)).exists()
    assert not [path for path in (tmp_path / "store").rglob("*") if path.is_file()]

    ordinary = add_call(sessions, "1700000000.2")
    other = spool_dir / raw_name("1700000000.2")
    other.write_bytes(b"\x01\x02" * 8000)
    assert store.seal(other, "1700000000.2").call_id == ordinary
    assert not other.exists()
    with sessions() as session:
        assert session.get(Recording, restricted) is None
        assert session.get(Recording, ordinary) is not None
        entries = session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
    assert [(e.action, e.subject) for e in entries] == [
        ("recording.refused", restricted),
        ("recording.seal", ordinary),
    ]
    assert entries[0].detail == f"{raw_name(LINKEDID)}: restricted caller; removed from the spool"
    with pytest.raises(vault.RecordingNotFound), store.open(restricted, "test", "recording.export"):
        pass


def test_a_recording_replaced_by_a_changed_copy_erases_the_original(world, tmp_path):
    sessions, store, spool_dir = world
    call_id = add_call(sessions, LINKEDID)
    audio = bytes(range(256)) * 4000  # four chunks: the change sees each at its offset
    (spool_dir / raw_name(LINKEDID)).write_bytes(audio)
    store.seal(spool_dir / raw_name(LINKEDID), LINKEDID)
    with sessions() as session:
        before = session.get(Recording, call_id)
    seen: list[int] = []

    def change(offset: int, chunk: bytes) -> bytes:
        seen.append(offset)
        return bytes(len(chunk))  # silence

    store.reseal(call_id, change, "transcriber", "1 passage(s): [card]")
    assert seen == [0, 262144, 524288, 786432]
    with sessions() as session:
        after = session.get(Recording, call_id)
        actions = [e.action for e in session.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert after.file_id != before.file_id and after.wrapped_key != before.wrapped_key
    assert after.plaintext_bytes == len(audio)
    assert not (tmp_path / "store" / before.file_name).exists()
    with store.open(call_id, "test", "recording.export") as recording:
        assert b"".join(recording.read()) == bytes(len(audio))
    assert actions[-2:] == ["recording.redact", "recording.replace"]

    def too_short(offset: int, chunk: bytes) -> bytes:
        return chunk[:-1]

    with pytest.raises(ValueError, match="keep its size"):
        store.reseal(call_id, too_short, "transcriber", "x")
    assert not list((tmp_path / "store").rglob("*.partial"))
    with store.open(call_id, "test", "recording.export") as recording:
        assert b"".join(recording.read()) == bytes(len(audio))  # the copy is still whole


def test_a_recording_sealed_while_the_keys_rotate_stays_readable(world, tmp_path, monkeypatch):
    """The sealer wrapped its data key under the master key a rotation (another process)
    then retired: the key is wrapped again under the new one, so nothing is lost."""
    sessions, store, spool_dir = world
    call_id = add_call(sessions, LINKEDID)
    audio = bytes(range(256)) * 100
    (spool_dir / raw_name(LINKEDID)).write_bytes(audio)
    stale = store.ring()
    rotator = RecordingVault(sessions, tmp_path / "store", tmp_path / "keys")
    real = RecordingVault.ring
    rotated: list[str] = []

    def ring_then_rotation(self):
        if self is store and not rotated:  # the sealer reads the ring, then keys rotate
            rotated.append(rotator.rotate_keys("test")[0])
            return stale
        return real(self)

    monkeypatch.setattr(RecordingVault, "ring", ring_then_rotation)
    store.seal(spool_dir / raw_name(LINKEDID), LINKEDID)
    with sessions() as session:
        row = session.get(Recording, call_id)
    assert row.key_id == rotated[0]  # under the new master key, not the retired one
    with store.open(call_id, "test", "recording.export") as recording:
        assert b"".join(recording.read()) == audio
