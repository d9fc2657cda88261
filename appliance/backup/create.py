"""`appliance backup`: one archive of the box, written while calls go on.

The database is read in one snapshot (SQLite: the online backup API into a private copy;
PostgreSQL: one repeatable-read, read-only transaction), so the archive holds exactly the
recordings that snapshot references: one sealed after it is left for the next backup. The
master keys are read before and after the snapshot and both sets kept, so a key rotation
meanwhile leaves no recording of the snapshot without its key. A recording erased or replaced
between the snapshot and its copy makes the whole backup start again (three times at most).

Plaintext (the database copy and its dump) is only ever written inside the data dir, in a
private work folder removed at the end, never beside the archive (which may be on a removable
disk). The archive is written to a private temporary file beside its name and moved into
place whole; it never replaces a file unless asked to."""

from __future__ import annotations

import base64
import datetime as dt
import errno
import hashlib
import os
import shutil
import sqlite3
import stat
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy.engine import make_url

from appliance import __version__, audit, tls
from appliance.backup import BackupError, archive, dump, sealing
from appliance.config import Config, config_files, key_passphrase
from appliance.db import engine as db
from appliance.recordings import keys
from appliance.recordings.container import encrypt, new_header

ATTEMPTS = 3
SECRET_SETTINGS = ("ami.secret", "smtp.password", "recordings.key_passphrase")


class _Moved(Exception):
    """A recording of the snapshot was erased or replaced before it was copied."""


@dataclass(frozen=True)
class Made:
    path: Path
    calls: int
    recordings: int
    revision: str
    size: int
    sha256: str


def backup(config: Config, output: Path, passphrase: str, *, force: bool, actor: str) -> Made:
    if os.geteuid() == 0 and config.data_dir.stat().st_uid != 0:
        # Its work folder is in the data dir, which that user could swap for a link while
        # root writes there.
        raise BackupError(
            "run backups as the user that owns the data dir (the appliance command does), "
            "not as root"
        )
    if len(passphrase) < sealing.MIN_PASSPHRASE:
        raise BackupError(f"the passphrase must be at least {sealing.MIN_PASSPHRASE} characters")
    output = Path(os.path.abspath(output))
    _check_output(output, force)
    for _ in range(ATTEMPTS):
        try:
            made = _attempt(config, output, passphrase, force)
        except _Moved:
            continue
        _audit(config, actor, made)
        return made
    raise BackupError(
        f"recordings were erased or replaced while the backup ran, {ATTEMPTS} times: try again"
    )


def _check_output(output: Path, force: bool) -> None:
    folder = os.stat(output.parent)
    if not stat.S_ISDIR(folder.st_mode):
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(output.parent))
    if folder.st_mode & stat.S_IWOTH and not folder.st_mode & stat.S_ISVTX:
        raise BackupError(f"{output.parent} is writable by every user: choose a private folder")
    if os.path.lexists(output):
        if not force:
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(output))
        if os.path.isdir(output) and not os.path.islink(output):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(output))


def _attempt(config: Config, output: Path, passphrase: str, force: bool) -> Made:
    work = Path(tempfile.mkdtemp(dir=config.data_dir, prefix=".backup-"))
    fd, name = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".partial")
    partial = Path(name)
    try:
        with os.fdopen(fd, "wb") as raw:
            out = _Counting(raw)
            made = _write(config, work, out, passphrase)
            raw.flush()
            os.fsync(raw.fileno())
        _publish(partial, output, force)
        return replace(made, path=output, size=out.size, sha256=out.hash.hexdigest())
    finally:
        partial.unlink(missing_ok=True)
        shutil.rmtree(work, ignore_errors=True)


def _write(config: Config, work: Path, out: archive.Sink, passphrase: str) -> Made:
    key_file, unlock = Path(config.recordings.key_file), key_passphrase(config)
    before = keys.load(key_file, unlock)
    created = dt.datetime.now(dt.UTC).replace(microsecond=0)
    dumped = _dump_database(config.database.url, work / "database.jsonl.gz")
    if len(dumped.recordings) > archive.MAX_RECORDINGS:  # a restore would refuse the archive
        raise BackupError(
            f"the database references {len(dumped.recordings):,} recordings, more than one "
            f"archive holds ({archive.MAX_RECORDINGS:,}): shorten their retention first"
        )
    ring = _merged(before, keys.load(key_file, unlock), {k for _, k in dumped.recordings})
    database_key = keys.new_data_key()
    with (work / "database.jsonl.gz").open("rb") as plain, (work / "db").open("wb") as sealed:
        encrypt(plain, sealed, database_key, new_header())
    writer = archive.Writer(out, created.timestamp())
    with (work / "db").open("rb") as sealed:
        writer.add(archive.DATABASE, sealed, os.fstat(sealed.fileno()).st_size)
    store = Path(config.recordings.store_dir)
    for file_name, _ in dumped.recordings:
        _add_recording(writer, store, file_name)
    cert, tls_key = tls.cert_paths(config.data_dir)
    has_tls = cert.is_file() and tls_key.is_file()
    if has_tls:
        writer.add_bytes(archive.CERTIFICATE, cert.read_bytes())
    manifest = archive.Manifest(
        __version__,
        dumped.revision,
        created.isoformat(),
        {"backend": make_url(config.database.url).get_backend_name(), "tables": dumped.counts},
    )
    payload = {
        "format": 1,
        "created": manifest.created,
        "schema_revision": manifest.schema_revision,
        "members": archive.sealed_digests(writer.members),
        "database_key": _b64(database_key),
        "master_keys": {
            "current": ring.current,
            "keys": {k: _b64(v) for k, v in ring.keys.items()},
        },
        "secret_box": _read_b64(config.secrets_dir / "box.key"),
        "secret_files": _secret_files(config),
        "tls_key": tls_key.read_text(encoding="utf-8") if has_tls else None,
        "config": _config(config),
    }
    writer.add_bytes(archive.SECRETS, sealing.seal(payload, passphrase))
    writer.finish(replace(manifest, members=writer.members))
    calls = dumped.counts.get("calls", 0)
    return Made(Path(), calls, len(dumped.recordings), dumped.revision, 0, "")


def _dump_database(url: str, target: Path) -> dump.Dumped:
    parsed = make_url(url)
    sqlite = parsed.get_backend_name() == "sqlite"
    if sqlite:
        copy = target.with_name("snapshot.db")
        _sqlite_snapshot(Path(parsed.database or ""), copy)
        parsed = parsed.set(database=str(copy))
    engine = db.make_engine(parsed.render_as_string(hide_password=False))
    try:
        with engine.connect() as connection, target.open("wb") as out:
            if not sqlite:
                connection = connection.execution_options(isolation_level="REPEATABLE READ")
            with connection.begin():
                if connection.dialect.name == "postgresql":
                    connection.exec_driver_sql("SET TRANSACTION READ ONLY")
                return dump.dump(connection, out)
    finally:
        engine.dispose()


def _sqlite_snapshot(database: Path, copy: Path) -> None:
    """A consistent copy of a live SQLite database through its online backup API (the live
    file is never copied: its WAL would be left behind)."""
    if not database.is_file():
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(database))
    os.close(os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
    source = sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True, timeout=15)
    try:
        target = sqlite3.connect(copy)
        try:
            source.backup(target)
        finally:
            target.close()
    finally:
        source.close()


def _merged(before: keys.KeyRing, after: keys.KeyRing, needed: set[str]) -> keys.KeyRing:
    ring = keys.KeyRing(before.keys | after.keys, after.current)
    missing = needed - set(ring.keys)
    if missing:  # rotated twice during the snapshot: try again
        raise _Moved(f"master keys {sorted(missing)} are gone")
    return ring


def _add_recording(writer: archive.Writer, store: Path, file_name: str) -> None:
    name = archive.RECORDINGS + file_name
    if not archive.RECORDING.fullmatch(name):
        raise BackupError(f"recording file {archive.shown(file_name)} is not one the vault writes")
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(store / file_name, flags)
    except FileNotFoundError:
        raise _Moved(file_name) from None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO):
            raise BackupError(f"recording file {file_name} is not a regular file") from None
        raise
    with os.fdopen(fd, "rb") as sealed:
        seen = os.fstat(sealed.fileno())
        if not stat.S_ISREG(seen.st_mode):
            raise BackupError(f"recording file {file_name} is not a regular file")
        writer.add(name, sealed, seen.st_size)


def _secret_files(config: Config) -> dict[str, str]:
    """The secrets the config names as `file:` (the AMI secret, ...), as they are."""
    found = {}
    for setting in SECRET_SETTINGS:
        value = setting_value(config, setting)
        if value.startswith("file:") and Path(value[5:]).is_file():
            found[setting] = Path(value[5:]).read_text(encoding="utf-8")
    return found


def setting_value(config: Config, setting: str) -> str:
    section, key = setting.split(".")
    return str(getattr(getattr(config, section), key))


def _config(config: Config) -> dict[str, Any] | None:
    if config.source == "defaults":
        return None
    main, *dropins = config_files(Path(config.source))
    return {
        "file": main.name,
        "text": main.read_text(encoding="utf-8"),
        "dropins": {p.name: p.read_text(encoding="utf-8") for p in dropins},
    }


def _read_b64(path: Path) -> str | None:
    return _b64(path.read_bytes()) if path.is_file() else None


def _b64_values(found: dict[str, bytes]) -> dict[str, str]:
    return {name: _b64(value) for name, value in found.items()}


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _publish(partial: Path, output: Path, force: bool) -> None:
    """Move the finished archive into place: over an existing file only when forced."""
    if force:
        os.replace(partial, output)
    else:
        try:
            os.link(partial, output)  # fails, atomically, when the name is taken
        except FileExistsError:
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(output)) from None
        except OSError:  # a file system without hard links
            if os.path.lexists(output):
                raise FileExistsError(
                    errno.EEXIST, os.strerror(errno.EEXIST), str(output)
                ) from None
            os.rename(partial, output)
    fd = os.open(output.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _Counting:
    """Writes through, hashing and counting: the archive's SHA-256 goes to the audit log."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.size += len(data)
        return self.out.write(data)


def _audit(config: Config, actor: str, made: Made) -> None:
    engine = db.make_engine(config.database.url)
    try:
        with db.session_factory(engine).begin() as session:
            audit.record(
                session,
                actor,
                "backup.create",
                detail=f"{made.calls} calls, {made.recordings} recordings, schema "
                f"{made.revision}, {made.size} bytes, sha256 {made.sha256}",
            )
    finally:
        engine.dispose()
