"""Backup and restore of a real box: calls recorded through the real Asterisk, `appliance
backup` run while another call is being recorded, the archive restored onto a fresh data dir
(with SQLite, and with a real PostgreSQL), every call found there and every recording played
back as it was recorded."""

from __future__ import annotations

import array
import wave
from pathlib import Path

import pytest

from appliance.access import the_box
from appliance.db.engine import make_engine, session_factory
from appliance.db.migrate import current_revision, head_revision
from appliance.transcription import search, service
from appliance.transcription.words import Word
from tests.harness import Stack, wait_for
from tests.integration.conftest import _empty
from tests.integration.test_recordings import consent_stack, query, rms, speech_call

PASSPHRASE = "a backup passphrase kept apart\n"


@pytest.fixture(params=["sqlite", "postgresql"])
def restored_url(request):
    """The restored box's database: SQLite in its new data dir, or an empty PostgreSQL."""
    if request.param == "sqlite":
        yield None
        return
    url = request.getfixturevalue("postgres_url")
    _empty(url)
    yield url
    _empty(url)


def count(stack: Stack, table: str) -> int:
    return query(stack, f"SELECT COUNT(*) FROM {table}")[0][0]


def recorded_call(stack: Stack, phone, talk_ms: int) -> None:
    before = count(stack, "recordings")
    phone(scenario="phone_speech.xml")
    result = speech_call(stack, talk_ms)
    assert result.returncode == 0, result.output
    wait_for(lambda: count(stack, "recordings") == before + 1, timeout=20, what="the recording")


def transcribe(stack: Stack, call_id: str, sentence: str) -> None:
    """A transcript, as the workers would store it (no speech model needed here)."""
    engine = make_engine(f"sqlite:///{stack.database}")
    words = [Word(0, i * 0.5, i * 0.5 + 0.4, 0.9, w) for i, w in enumerate(sentence.split())]
    with session_factory(engine).begin() as session:
        service.store(session, call_id, service.Result("test", 10.0, words))
    engine.dispose()


def frames(box: Stack, call_id: str, out: Path) -> bytes:
    box.appliance("recordings", "export", call_id, str(out))
    with wave.open(str(out)) as wav:
        return wav.readframes(wav.getnframes())


def test_backup_during_a_call_restores_every_call_and_recording(
    stack: Stack, phone, tmp_path, restored_url
):
    consent_stack(stack, consent=False)  # every call to +12025550123 is recorded
    recorded_call(stack, phone, 2000)
    recorded_call(stack, phone, 2500)
    first = query(stack, "SELECT call_id FROM recordings ORDER BY created_at")[0]["call_id"]
    transcribe(stack, first, "I would like to book an appointment")

    phone(scenario="phone_speech.xml")
    ongoing = stack.sipp_background("12025550123", talk_ms=15000, scenario="carrier_speech.xml")
    wait_for(  # its record written, its audio being recorded into the spool
        lambda: count(stack, "calls") == 3 and list(stack.spool_on_host.glob("*.raw")),
        timeout=20,
        what="the third call to be recorded",
    )
    (live,) = query(stack, "SELECT * FROM calls WHERE ended_at IS NULL")
    secret = tmp_path / "backup.pass"
    secret.write_text(PASSPHRASE)
    secret.chmod(0o600)
    backups = tmp_path / "backups"
    backups.mkdir(mode=0o700)
    archive = backups / "box.tar"
    made = stack.appliance("backup", str(archive), "--passphrase-file", str(secret))
    assert "3 call(s), 2 recording(s)" in made.stdout
    (still,) = stack.query("SELECT ended_at FROM calls WHERE id = ?", live["id"])
    assert still["ended_at"] is None, "the third call ended before the backup did"
    assert ongoing.wait(timeout=60) == 0
    wait_for(lambda: count(stack, "recordings") == 3, timeout=20, what="the third recording")

    env = {"APPLIANCE_DATABASE_URL": restored_url} if restored_url else {}
    restored = Stack(data_dir=tmp_path / "restored", root=stack.root, extra_env=env)
    done = restored.appliance("restore", str(archive), "--passphrase-file", str(secret))
    assert "3 call(s), 2 recording(s)" in done.stdout

    listed = restored.appliance("calls", "list").stdout.splitlines()[1:]
    originals = [row["id"] for row in stack.calls()]
    assert sorted(line.split("\t")[0] for line in listed) == sorted(originals)
    assert sum(line.endswith("\tyes") for line in listed) == 2
    for row in stack.query("SELECT call_id FROM recordings WHERE call_id != ?", live["id"]):
        audio = frames(restored, row["call_id"], tmp_path / f"{row['call_id']}-restored.wav")
        assert audio == frames(stack, row["call_id"], tmp_path / f"{row['call_id']}.wav")
        samples = array.array("h", audio)
        assert rms(samples[0::2]) > 300 and rms(samples[1::2]) > 300
    gone = restored.appliance("recordings", "export", live["id"], str(tmp_path / "x.wav"),
                              check=False)  # fmt: skip
    assert gone.returncode == 2 and "no recording for call" in gone.stderr  # sealed after

    engine = make_engine(restored_url or f"sqlite:///{restored.database}")
    assert current_revision(engine) == head_revision()
    with session_factory(engine)() as session:
        (hit,) = search.search(session, the_box(session, "test"), "appointment")
        assert hit.call_id == first
    engine.dispose()
    (entry,) = query(stack, "SELECT * FROM audit_log WHERE action = 'backup.create'")
    assert "3 calls, 2 recordings" in entry["detail"] and "+1312" not in entry["detail"]
