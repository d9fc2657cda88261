"""Sealing interrupted half-way (a crash or a full disk mid-encryption) loses nothing."""

import pytest
from sqlalchemy import select

from appliance.calls.store import CallOpened, CallStore, InboundCall, call_id_for
from appliance.db.engine import make_engine, session_factory
from appliance.db.migrate import upgrade
from appliance.db.models import Recording
from appliance.recordings import keys, vault
from appliance.recordings.vault import RecordingVault

pytestmark = pytest.mark.integration


def test_interrupted_sealing_keeps_the_plaintext_and_the_next_try_succeeds(tmp_path, monkeypatch):
    engine = make_engine(f"sqlite:///{tmp_path}/t.db")
    upgrade(engine)
    sessions = session_factory(engine)
    keys.create(tmp_path / "keys")
    store = RecordingVault(sessions, tmp_path / "store", tmp_path / "keys")
    call_id = call_id_for("1700000000.1")
    call = InboundCall("1700000000.1", "12025550123", "13125550111", "")
    CallStore(sessions).write([CallOpened(call, call_id, None, "r", False, True)])
    spool = tmp_path / f"{call_id}.raw"
    audio = bytes(range(256)) * 4000
    spool.write_bytes(audio)
    (tmp_path / f"{call_id}.done").touch()

    real_encrypt = vault.encrypt

    def crash_half_way(source, target, key, header):
        target.write(b"x" * 1000)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(vault, "encrypt", crash_half_way)
    with pytest.raises(OSError):
        store.seal(spool, call_id)
    assert spool.read_bytes() == audio  # plaintext kept
    assert not list((tmp_path / "store").rglob("*.partial"))  # no half-sealed file left
    with sessions() as session:
        assert session.scalars(select(Recording)).all() == []

    monkeypatch.setattr(vault, "encrypt", real_encrypt)
    sealed = store.seal(spool, call_id)
    assert sealed.plaintext_bytes == len(audio)
    assert not spool.exists() and not (tmp_path / f"{call_id}.done").exists()
    with store.open(call_id, "test", "recording.export") as recording:
        assert b"".join(recording.read()) == audio
    engine.dispose()
