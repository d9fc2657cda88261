"""`appliance backup` and `appliance restore` on a real data dir and SQLite (no Asterisk): a box
comes back whole, the archive gives nothing away without the passphrase, and a hostile or
damaged archive is refused in one line with nothing written."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import DateTime, column, func, insert, select, table

from appliance import cli
from appliance.access import the_box
from appliance.backup import BackupError, archive, restore, sealing
from appliance.backup.create import _merged, _Moved
from appliance.config import load
from appliance.db.engine import make_engine, session_factory
from appliance.db.migrate import alembic_config, current_revision, head_revision, upgrade
from appliance.db.models import AuditEntry, Call, Recording
from appliance.recordings import keys
from appliance.recordings.spool_files import raw_name
from appliance.recordings.vault import RecordingVault
from appliance.secrets import SecretBox
from appliance.transcription import search, service
from appliance.transcription.words import Word
from appliance.vocabulary import new_call_id
from tests.made_once import initialised

PASSPHRASE = "correct horse battery staple"
KEY_PASSPHRASE = "the key file's own passphrase"
AUDIO = bytes(range(256)) * 700  # 179 kB, three chunks of a sealed file
CALLER = "+13125550111"


@pytest.fixture(autouse=True)
def fast_and_clean(monkeypatch):
    monkeypatch.setattr(sealing, "SCRYPT_N", 2**10)  # archives carry their own work factor,
    monkeypatch.setattr(keys, "SCRYPT_N", 2**10)  # as sealed key files do (pinned elsewhere)
    for name in list(os.environ):
        if name.startswith("APPLIANCE_"):
            monkeypatch.delenv(name)


class Run:
    def __init__(self, capsys, monkeypatch) -> None:
        self.capsys, self.monkeypatch = capsys, monkeypatch

    def __call__(self, *args: str, stdin: str = "") -> tuple[int, str, str]:
        self.capsys.readouterr()
        self.monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = cli.main([str(a) for a in args])
        out, err = self.capsys.readouterr()
        return code, out, err


@pytest.fixture
def run(capsys, monkeypatch):
    return Run(capsys, monkeypatch)


def write_config(path: Path, data_dir: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"[paths]\ndata_dir = {data_dir}\n\n[recordings]\n"
        "key_passphrase = file:{data_dir}/secrets/key.pass\n"
    )
    dropins = path.with_name(path.name + ".d")
    dropins.mkdir()
    (dropins / "10-log.ini").write_text("[log]\nlevel = warning\n")
    return path


def sessions_of(config_path: Path):
    engine = make_engine(load(config_path).database.url)
    return engine, session_factory(engine)


def vault_of(config_path: Path, sessions) -> RecordingVault:
    config = load(config_path)
    return RecordingVault(
        sessions,
        Path(config.recordings.store_dir),
        Path(config.recordings.key_file),
        (config.data_dir / "secrets" / "key.pass").read_text().strip(),
        spool_owners={os.getuid()},
    )


def record(config_path: Path, linkedid: str, audio: bytes = AUDIO) -> str:
    """A call with a sealed recording, as the controller would leave it. The call row is
    written with the columns of every schema since 0014, for the archives of older boxes."""
    engine, sessions = sessions_of(config_path)
    call_id = new_call_id()
    with sessions.begin() as session:
        session.execute(
            insert(table("calls", column("id"), column("linkedid"), column("dialled"),
                         column("caller_number"), column("started_at", DateTime(timezone=True)))
                   ).values(id=call_id, linkedid=linkedid, dialled="+12025550123",
                            caller_number=CALLER, started_at=dt.datetime.now(dt.UTC))
        )  # fmt: skip
    spool = config_path.parent / "spool"
    spool.mkdir(exist_ok=True)
    (spool / raw_name(linkedid)).write_bytes(audio)
    vault_of(config_path, sessions).seal(spool / raw_name(linkedid), linkedid)
    engine.dispose()
    return call_id


def said(sentence: str) -> list[Word]:
    return [Word(0, i * 0.5, i * 0.5 + 0.4, 0.9, w) for i, w in enumerate(sentence.split())]


@pytest.fixture
def box(tmp_path, run) -> Path:
    """An initialised box, its key file sealed, with two recorded calls (one transcribed)."""
    config = write_config(tmp_path / "old" / "appliance.ini", tmp_path / "old" / "data")
    initialised(tmp_path / "old" / "data")
    secrets = tmp_path / "old" / "data" / "secrets"
    (secrets / "key.pass").write_text(KEY_PASSPHRASE + "\n")
    (secrets / "key.pass").chmod(0o600)
    sealed = run("--config", config, "keys", "seal", "--password-stdin", stdin=KEY_PASSPHRASE)
    assert sealed[0] == 0, sealed
    first = record(config, "1700000000.1")
    record(config, "1700000000.2", AUDIO[::-1])
    engine, sessions = sessions_of(config)
    with sessions.begin() as session:
        service.store(session, first, service.Result("test", 10.0, said("book an appointment")))
    engine.dispose()
    return config


@pytest.fixture
def passphrase_file(tmp_path) -> Path:
    path = tmp_path / "backup.pass"
    path.write_text(PASSPHRASE + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def made(box, run, tmp_path, passphrase_file) -> Path:
    folder = tmp_path / "backups"
    folder.mkdir(mode=0o700)
    code, out, err = run("--config", box, "backup", folder / "box.tar", "--passphrase-file",
                         passphrase_file)  # fmt: skip
    assert code == 0, err
    assert f"2 call(s), 2 recording(s), schema {head_revision()}" in out
    return folder / "box.tar"


def new_box(tmp_path: Path, name: str = "new") -> Path:
    return write_config(tmp_path / name / "appliance.ini", tmp_path / name / "data")


def test_a_restored_box_is_the_box_that_was_backed_up(box, made, run, tmp_path, passphrase_file):
    target = new_box(tmp_path)
    config_to = ("--config-to", tmp_path / "etc" / "restored.ini")
    restore = ("--config", target, "restore", made, "--passphrase-file", passphrase_file)
    code, _, err = run(*restore, *config_to)
    assert (code, err) == (2, f"appliance: --config-to: {tmp_path / 'etc'} does not exist\n")
    assert not (tmp_path / "new" / "data").exists()
    (tmp_path / "etc").mkdir()
    code, out, err = run(*restore, *config_to)
    assert code == 0, err
    assert "2 call(s), 2 recording(s)" in out and f"database at revision {head_revision()}" in out
    old, new = load(box).data_dir, load(target).data_dir
    for name in ("secrets/box.key", "secrets/ami.secret", "secrets/key.pass", "tls/cert.pem",
                 "tls/key.pem"):  # fmt: skip
        assert (new / name).read_bytes() == (old / name).read_bytes(), name
    for path in [new, *new.rglob("*")]:
        mode = path.stat().st_mode & 0o777
        assert mode in ((0o700,) if path.is_dir() else (0o600, 0o644)), (path, oct(mode))
    assert "sealed" in json.loads((new / "secrets" / "recordings.keys").read_text())

    engine, sessions = sessions_of(target)
    old_engine, old_sessions = sessions_of(box)
    with sessions() as session, old_sessions() as before:
        assert sorted(session.scalars(select(Call.id))) == sorted(before.scalars(select(Call.id)))
        call_ids = list(session.scalars(select(Recording.call_id)))
        (hit,) = search.search(session, the_box(session, "test"), "appointment")
        actions = list(session.scalars(select(AuditEntry.action)))
        (made_entry,) = before.scalars(
            select(AuditEntry).where(AuditEntry.action == "backup.create")
        )
    assert actions[-1] == "backup.restore" and "backup.create" not in actions
    assert CALLER not in made_entry.detail and made_entry.actor.startswith("cli:")
    assert hashlib.sha256(made.read_bytes()).hexdigest() in made_entry.detail
    vault, old_vault = vault_of(target, sessions), vault_of(box, old_sessions)
    for call_id in call_ids:
        with (
            vault.open(call_id, "test", "recording.play") as a,
            old_vault.open(call_id, "test", "recording.play") as b,
        ):
            assert b"".join(a.read()) == b"".join(b.read()) in (AUDIO, AUDIO[::-1])
    assert hit.call_id in call_ids
    engine.dispose()
    old_engine.dispose()
    assert (tmp_path / "etc" / "restored.ini").read_text() == box.read_text()
    assert (tmp_path / "etc" / "restored.ini.d" / "10-log.ini").read_text() == (
        "[log]\nlevel = warning\n"
    )
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == [
        "appliance.ini", "appliance.ini.d", "data"]  # fmt: skip


def test_the_archive_gives_nothing_away_without_the_passphrase(box, made, tmp_path):
    data = made.read_bytes()
    assert made.stat().st_mode & 0o777 == 0o600
    old = load(box).data_dir
    ring = keys.load(old / "secrets" / "recordings.keys", KEY_PASSPHRASE)
    secrets = [
        *ring.keys.values(),
        (old / "secrets" / "box.key").read_bytes(),
        (old / "secrets" / "ami.secret").read_bytes().strip(),
        KEY_PASSPHRASE.encode(),
        PASSPHRASE.encode(),
        (old / "tls" / "key.pem").read_text().splitlines()[1].encode(),
        CALLER.encode(),
        b"appointment",
        b"data_dir",  # the config file
    ]
    for secret in secrets:
        for form in (secret, base64.b64encode(secret)):
            assert form not in data
    assert not list(old.glob(".backup-*")) and [p.name for p in made.parent.iterdir()] == [
        "box.tar"
    ]


def test_an_archive_is_never_overwritten_unless_forced(box, made, run, tmp_path, passphrase_file):
    again = ("--config", box, "backup", made, "--passphrase-file", passphrase_file)
    first = made.read_bytes()
    code, _, err = run(*again)
    assert (code, err) == (2, f"appliance: {made} already exists\n")
    assert made.read_bytes() == first
    assert run(*again, "--force")[0] == 0
    assert made.read_bytes() != first and made.stat().st_mode & 0o777 == 0o600

    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    code, _, err = run("--config", box, "backup", shared / "b.tar", "--passphrase-file",
                       passphrase_file)  # fmt: skip
    assert code == 2 and "writable by every user" in err and not list(shared.iterdir())

    passphrase_file.chmod(0o644)
    code, _, err = run("--config", box, "backup", tmp_path / "c.tar", "--passphrase-file",
                       passphrase_file)  # fmt: skip
    assert code == 2 and "readable by others" in err
    short = run("--config", box, "backup", tmp_path / "c.tar", "--password-stdin", stdin="short")
    assert short[0] == 2 and "at least 12 characters" in short[2]
    assert not (tmp_path / "c.tar").exists()


def test_restore_refuses_a_data_dir_in_use_and_force_moves_it_aside(
    made, run, tmp_path, passphrase_file
):
    target = new_box(tmp_path)
    data = load(target).data_dir
    data.mkdir()
    (data / "appliance.db").write_text("someone's database")
    restore = ("--config", target, "restore", made, "--passphrase-file", passphrase_file)
    code, _, err = run(*restore)
    assert code == 2 and err.count("\n") == 1 and "is not empty" in err
    assert [p.name for p in data.iterdir()] == ["appliance.db"]
    assert (data / "appliance.db").read_text() == "someone's database"

    code, out, err = run(*restore, "--force")
    assert code == 0, err
    (aside,) = (tmp_path / "new").glob("data.replaced-*")
    assert (aside / "appliance.db").read_text() == "someone's database"
    assert str(aside) in out
    assert (data / "appliance.db").read_bytes().startswith(b"SQLite format 3")
    assert not (data / "secrets.sealed").exists()  # nothing of the old one is mixed in


def rewrite(source: Path, change) -> bytes:
    """The archive with its members passed through `change(name, data) -> [(info, data)]`,
    and its manifest recomputed for what is then there (so only the sealed digests can tell)."""
    out = io.BytesIO()
    with tarfile.open(source) as tar, tarfile.open(fileobj=out, mode="w",
                                                   format=tarfile.PAX_FORMAT) as new:  # fmt: skip
        manifest = json.loads(tar.extractfile(archive.MANIFEST).read())
        manifest["members"] = {}
        for info in tar.getmembers():
            if info.name == archive.MANIFEST:
                continue
            for new_info, data in change(info, tar.extractfile(info).read()):
                new.addfile(new_info, io.BytesIO(data) if data is not None else None)
                if data is not None:
                    manifest["members"][new_info.name] = {
                        "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}  # fmt: skip
        body = json.dumps(manifest).encode()
        info = tarfile.TarInfo(archive.MANIFEST)
        info.size = len(body)
        new.addfile(info, io.BytesIO(body))
    return out.getvalue()


def flip_recording(info, data):
    if info.name.startswith(archive.RECORDINGS):
        data = data[:100] + bytes([data[100] ^ 1]) + data[101:]
    yield info, data


def also(extra: tarfile.TarInfo, data: bytes | None = None):
    def change(info, original):
        if info.name == archive.SECRETS:
            if data is not None:
                extra.size = len(data)
            yield extra, data
        yield info, original

    return change


def named(name: str, kind: bytes = tarfile.REGTYPE, target: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


HOSTILE = {
    "tampered, manifest fixed": (lambda p: rewrite(p, flip_recording), "was altered"),
    "tampered": (
        lambda p: p.read_bytes().replace(b"APPREC", b"APPREX", 1),
        "does not match its SHA-256",
    ),
    "path traversal": (
        lambda p: rewrite(p, also(named("../../escaped.rec"), b"x")),
        "leads out of the archive",
    ),
    "absolute path": (
        lambda p: rewrite(p, also(named("/tmp/escaped.rec"), b"x")),
        "absolute path",
    ),
    "symlink": (
        lambda p: rewrite(
            p, also(named("recordings/2026/01/a.rec", tarfile.SYMTYPE, "/etc/passwd"))
        ),
        "symbolic link",
    ),
    "device": (
        lambda p: rewrite(p, also(named("recordings/2026/01/a.rec", tarfile.CHRTYPE))),
        "device",
    ),
    "truncated": (lambda p: p.read_bytes()[: p.stat().st_size // 2], "truncated"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_or_damaged_archive_is_one_line_and_nothing_written(
    made, run, tmp_path, passphrase_file, case
):
    make, says = HOSTILE[case]
    hostile = tmp_path / "hostile.tar"
    hostile.write_bytes(make(made))
    target = new_box(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    code, out, err = run("--config", target, "restore", hostile, "--passphrase-file",
                         passphrase_file)  # fmt: skip
    assert code == 2 and err.count("\n") == 1 and says in err, err
    assert out == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["appliance.ini",
                                                                    "appliance.ini.d"]  # fmt: skip
    assert not (tmp_path.parent / "escaped.rec").exists()


def test_a_wrong_passphrase_is_one_line_and_nothing_written(made, run, tmp_path):
    target = new_box(tmp_path)
    code, out, err = run("--config", target, "restore", made, "--password-stdin",
                         stdin="not the passphrase at all\n")  # fmt: skip
    assert (code, out) == (2, "")
    assert err == "appliance: wrong passphrase (or the archive's sealed secrets were altered)\n"
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["appliance.ini",
                                                                    "appliance.ini.d"]  # fmt: skip


def test_an_archive_of_an_older_schema_is_restored_then_migrated(run, tmp_path, passphrase_file):
    """A box still at schema 0014 (before full-text search): restored, migrated, searchable."""
    config_path = new_box(tmp_path, "old")
    config = load(config_path)
    (config.secrets_dir).mkdir(parents=True, mode=0o700)
    (config.secrets_dir / "key.pass").write_text(KEY_PASSPHRASE)
    (config.secrets_dir / "key.pass").chmod(0o600)
    keys.save(config.secrets_dir / "recordings.keys", keys.KeyRing({"ab" * 8: b"k" * 32},
              "ab" * 8), KEY_PASSPHRASE)  # fmt: skip
    SecretBox.from_file(config.secrets_dir / "box.key")
    engine = make_engine(config.database.url)
    upgrade(engine)
    engine.dispose()
    call_id = record(config_path, "1700000000.9")  # sealed and transcribed by this version,
    engine, sessions = sessions_of(config_path)  # then the schema taken back to 0014
    with sessions.begin() as session:
        service.store(session, call_id, service.Result("test", 10.0, said("appointment please")))
    command.downgrade(alembic_config(engine), "0014")
    engine.dispose()
    archive_path = tmp_path / "old.tar"
    assert run("--config", config_path, "backup", archive_path, "--passphrase-file",
               passphrase_file)[0] == 0  # fmt: skip

    target = new_box(tmp_path)
    code, out, err = run("--config", target, "restore", archive_path, "--passphrase-file",
                         passphrase_file)  # fmt: skip
    assert code == 0, err
    assert f"database at revision {head_revision()} (was 0014)" in out
    engine, sessions = sessions_of(target)
    assert current_revision(engine) == head_revision()
    with sessions() as session:
        (hit,) = search.search(session, the_box(session, "test"), "appointment")
        assert hit.call_id == call_id
        assert session.scalar(select(func.count()).select_from(Call)) == 1
    engine.dispose()


def test_a_key_rotation_during_the_snapshot_loses_no_key():
    before = keys.KeyRing({"a" * 16: b"1" * 32}, "a" * 16)
    after = keys.KeyRing({"b" * 16: b"2" * 32}, "b" * 16)
    merged = _merged(before, after, {"a" * 16})
    assert (set(merged.keys), merged.current) == ({"a" * 16, "b" * 16}, "b" * 16)
    with pytest.raises(_Moved):
        _merged(before, after, {"c" * 16})


def test_what_the_config_keeps_outside_the_data_dir_is_restored_there(
    box, made, run, tmp_path, passphrase_file
):
    target = new_box(tmp_path)
    elsewhere = tmp_path / "disk"
    with target.open("a") as ini:
        ini.write(f"store_dir = {elsewhere}/recordings\n\n[database]\n"
                  f"url = sqlite:///{elsewhere}/db/calls.db\n")  # fmt: skip
    (elsewhere / "recordings").mkdir(parents=True)
    (elsewhere / "recordings" / "someone's.rec").write_bytes(b"x")
    restore = ("--config", target, "restore", made, "--passphrase-file", passphrase_file)
    code, _, err = run(*restore)
    assert code == 2 and "outside the data dir and in the way" in err
    assert not (tmp_path / "new" / "data").exists() and not (elsewhere / "db").exists()

    (elsewhere / "recordings" / "someone's.rec").unlink()
    code, _out, err = run(*restore)
    assert code == 0, err
    assert sorted(p.name for p in elsewhere.rglob("*.rec")) == sorted(
        p.name for p in load(box).data_dir.joinpath("recordings").rglob("*.rec")
    )
    assert sorted(p.name for p in (elsewhere / "db").iterdir()) == ["calls.db"]
    assert not (tmp_path / "new" / "data" / "appliance.db").exists()
    engine, sessions = sessions_of(target)
    with sessions() as session:
        (call_id, *_) = session.scalars(select(Recording.call_id))
    with vault_of(target, sessions).open(call_id, "test", "recording.play") as recording:
        assert b"".join(recording.read()) in (AUDIO, AUDIO[::-1])
    engine.dispose()


def test_a_mount_point_data_dir_is_filled_in_place(made, run, tmp_path, passphrase_file):
    """A data dir on a file system of its own cannot be renamed: the restore fills it."""
    target = new_box(tmp_path)
    data = load(target).data_dir
    data.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(data)],
                                           capture_output=True).returncode != 0:  # fmt: skip
        pytest.skip("mounting a file system needs root")
    try:
        (data / "lost+found").mkdir()
        code, _out, err = run("--config", target, "restore", made, "--passphrase-file",
                             passphrase_file)  # fmt: skip
        assert code == 0, err
        assert os.path.ismount(data)
        assert sorted(p.name for p in data.iterdir()) == [
            "appliance.db", "lost+found", "recordings", "secrets", "tls"]  # fmt: skip
        code, _, err = run("--config", target, "restore", made, "--passphrase-file",
                           passphrase_file, "--force")  # fmt: skip
        assert code == 2 and "mount point that is not empty" in err
    finally:
        subprocess.run(["umount", str(data)], check=True)


def test_an_archive_with_more_members_than_a_backup_holds_is_one_line_and_nothing_written(
    made, run, tmp_path, passphrase_file, monkeypatch
):
    monkeypatch.setattr(archive, "MAX_MEMBERS", 3)  # this one has 6
    target = new_box(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    code, out, err = run("--config", target, "restore", made, "--passphrase-file",
                         passphrase_file)  # fmt: skip
    assert (code, out) == (2, "")
    assert (
        err
        == "appliance: the archive holds more than 3 members, more than a backup does: refused\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["appliance.ini",
                                                                    "appliance.ini.d"]  # fmt: skip


def test_no_archive_is_made_that_a_restore_would_refuse(box, run, tmp_path, passphrase_file,
                                                        monkeypatch):  # fmt: skip
    monkeypatch.setattr(archive, "MAX_RECORDINGS", 1)  # the box has 2
    code, out, err = run("--config", box, "backup", tmp_path / "box.tar", "--passphrase-file",
                         passphrase_file)  # fmt: skip
    assert (code, out) == (2, "")
    assert "references 2 recordings, more than one archive holds (1)" in err
    assert not (tmp_path / "box.tar").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".box.tar")]


# root restores into folders the appliance user owns ------------------------------------
ATTACKER = 12345  # the data dir's owner: the appliance user, whose process is compromised
SWAP = """cd "$1" || exit 10
staging=$(ls -d .data.restore-* 2>/dev/null | head -n 1); [ -n "$staging" ] || exit 11
mv "$staging" moved || exit 12
mkdir evil && ln -s "$2" evil/data && ln -s "$1/moved/archive" evil/archive || exit 13
ln -s evil "$staging" || exit 14
"""


@pytest.fixture
def reachable():
    """A folder every user may enter (pytest's own is root's alone), removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="restore-as-root-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def swap_staging_as_owner(data: Path, victim: Path) -> subprocess.CompletedProcess[str]:
    """The data dir's owner puts a link in place of the restore's staging folder: the new
    data dir would be built in `victim`, and handed to that owner."""
    return subprocess.run(["setpriv", f"--reuid={ATTACKER}", f"--regid={ATTACKER}",
                           "--clear-groups", "sh", "-c", SWAP, "sh", str(data), str(victim)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def root_victim(folder: Path) -> Path:
    victim = folder / "victim"
    victim.mkdir(mode=0o755)
    (victim / "roots-file").write_text("root's\n")
    return victim


def untouched(victim: Path) -> bool:
    entries = [(p.name, p.lstat().st_uid) for p in victim.iterdir()]
    return entries == [("roots-file", 0)] and victim.lstat().st_uid == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="about what root does")
def test_the_owner_of_a_mount_point_data_dir_cannot_swap_the_staging_folder(made, reachable):
    """A data dir on a file system of its own is restored through a staging folder inside it:
    for the restore, the data dir is root's alone, then its owner's again."""
    target = new_box(reachable)
    data = load(target).data_dir
    data.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(data)]).returncode != 0:
        pytest.skip("mounting a file system needs root")
    try:
        os.chown(data, ATTACKER, ATTACKER)
        data.chmod(0o750)
        victim = root_victim(reachable)
        tries = []

        def passphrase() -> str:  # asked for in the middle of the restore
            tries.append(swap_staging_as_owner(data, victim))
            return PASSPHRASE

        restore.restore(load(target), made, passphrase, force=False, config_to=None, actor="t")
        assert [t.returncode for t in tries] == [10], tries  # could not even enter it
        assert untouched(victim)
        assert (data.stat().st_uid, data.stat().st_mode & 0o7777) == (ATTACKER, 0o750)
        assert {p.lstat().st_uid for p in data.rglob("*")} == {ATTACKER}
    finally:
        subprocess.run(["umount", str(data)], check=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="about what root does")
def test_root_does_not_restore_through_a_folder_another_user_owns(made, reachable):
    """The staging folder is made beside the data dir: a parent of the appliance user's would
    let that user swap it for a link, and root would build and hand over the victim."""
    parent = reachable / "home"
    (parent / "data").mkdir(parents=True)  # made for the restore, the appliance user's
    for folder in (parent, parent / "data"):
        os.chown(folder, ATTACKER, ATTACKER)
    target = write_config(reachable / "etc" / "appliance.ini", parent / "data")
    victim = root_victim(reachable)
    tries = []

    def passphrase() -> str:
        tries.append(swap_staging_as_owner(parent, victim))
        return PASSPHRASE

    with pytest.raises(BackupError, match=rf"{parent} is not root's alone"):
        restore.restore(load(target), made, passphrase, force=False, config_to=None, actor="t")
    assert tries == [] and untouched(victim)
    assert list(parent.iterdir()) == [parent / "data"] and not any((parent / "data").iterdir())


@pytest.mark.parametrize("planted", ["archive", "passphrase file"])
def test_a_fifo_in_place_of_the_archive_or_the_passphrase_file_blocks_nothing(
    made, tmp_path, passphrase_file, planted
):
    """Archives are kept in a folder of the appliance user's, which root restores from."""
    fifo = tmp_path / "planted"
    os.mkfifo(fifo, 0o600)
    source, secret = (fifo, passphrase_file) if planted == "archive" else (made, fifo)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "appliance",
            "--config",
            new_box(tmp_path),
            "restore",
            source,
            "--passphrase-file",
            secret,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )  # a bound for a hang
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"appliance: {fifo} is not a regular file\n"
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["appliance.ini",
                                                                    "appliance.ini.d"]  # fmt: skip
