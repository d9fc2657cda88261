"""`appliance restore`: a box rebuilt from a backup archive, onto a new data dir.

Order, so that a refusal leaves nothing behind: the targets are checked (a missing or empty
data dir, unless forced; an empty database; nothing in the way outside the data dir); the
archive is unpacked into a private folder beside the data dir and checked against its
manifest; the passphrase opens the sealed secrets, which must repeat the manifest's hashes;
then the new data dir is built in that folder (database, keys, secrets, certificate,
recordings) and moved into place in one rename. A data dir that was not empty (`--force`) is
moved aside, never merged with. An archive of an older schema is restored at its revision and
then migrated; one of a newer schema is refused."""

from __future__ import annotations

import base64
import datetime as dt
import errno
import io
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import MetaData, inspect
from sqlalchemy.engine import URL, make_url

from appliance import __version__, audit, private_file, tls
from appliance.backup import BackupError, archive, dump, sealing
from appliance.backup.create import SECRET_SETTINGS, setting_value
from appliance.config import Config, resolve_secret
from appliance.db import engine as db
from appliance.db.migrate import current_revision, known_revision, upgrade
from appliance.recordings import keys
from appliance.recordings.container import RecordingError, SealedRecording

DROPIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}\.ini")


@dataclass(frozen=True)
class Restored:
    manifest: archive.Manifest
    calls: int
    recordings: int
    revision: str
    aside: Path | None = None  # where a replaced data dir went
    kept: tuple[str, ...] = ()  # secret files found in place and left as they were
    config_written: tuple[Path, ...] = ()
    config_in_archive: bool = False


def restore(
    config: Config,
    source: Path,
    passphrase: Callable[[], str],
    *,
    force: bool,
    config_to: Path | None,
    actor: str,
) -> Restored:
    _check_targets(config, force, config_to)
    layout = _Layout(config.data_dir, force)
    try:
        members = layout.staging / "archive"
        with _opened(source) as stream:
            manifest = archive.extract(stream, members)
        if not known_revision(manifest.schema_revision):
            raise BackupError(
                f"the archive is of a schema ({archive.shown(manifest.schema_revision)}) this "
                f"version ({__version__}) does not know: restore it with the version that made "
                f"it ({archive.shown(manifest.appliance_version)}) or a later one"
            )
        secrets = sealing.unseal((members / archive.SECRETS).read_bytes(), passphrase())
        archive.check_sealed(manifest, secrets)
        settings = _Secrets(secrets)
        _check_config(settings.config, config_to)
        restored = _build(config, layout, members, manifest, settings, actor)
        restored.aside = layout.commit()
    except BaseException:
        layout.abandon()
        raise
    finally:
        layout.close()
    written = _write_config(config_to, settings.config)
    return Restored(
        manifest,
        restored.counts.get("calls", 0),
        restored.recordings,
        restored.revision,
        restored.aside,
        tuple(restored.kept),
        written,
        settings.config is not None,
    )


def _opened(source: Path) -> BinaryIO:
    """The archive, never a FIFO left in its place (it would block the restore for ever)."""
    try:
        return os.fdopen(private_file.open_regular(source), "rb")
    except private_file.UnsafeFile as exc:
        raise BackupError(str(exc)) from None


# the targets ---------------------------------------------------------------------------
def _check_targets(config: Config, force: bool, config_to: Path | None) -> None:
    """Refuse before anything is written: every place the restore writes must be free."""
    data_dir = config.data_dir
    if data_dir.is_symlink():
        raise BackupError(f"{data_dir} is a symbolic link: set paths.data_dir to the real path")
    if os.geteuid() == 0:
        _only_roots_folders(config, config_to)
    _check_data_dir(data_dir, force)
    _check_outside(config)
    url = make_url(config.database.url)
    if url.get_backend_name() != "sqlite":
        _check_empty(url)
    if config_to is not None:
        _check_config_to(config_to)


def _check_data_dir(data_dir: Path, force: bool) -> None:
    """Empty, or not a mount point and moved aside with --force; its parent exists."""
    if _contents(data_dir) and os.path.ismount(data_dir):
        raise BackupError(f"{data_dir} is a mount point that is not empty: empty it first")
    if _contents(data_dir) and not force:
        raise BackupError(
            f"{data_dir} is not empty: restore onto a new data dir, or give --force to move "
            "it aside"
        )
    if not data_dir.parent.is_dir():
        raise BackupError(f"{data_dir.parent} does not exist: create it first")


def _check_outside(config: Config) -> None:
    """What is restored outside the data dir finds nothing there, or an empty folder."""
    for path in _outside(config):
        if os.path.lexists(path) and not (path.is_dir() and not any(path.iterdir())):
            raise BackupError(f"{path} is outside the data dir and in the way: move it first")


def _check_config_to(config_to: Path) -> None:
    """--config-to names a new file (and no drop-in folder beside it) in a folder that exists."""
    if not config_to.parent.is_dir():
        raise BackupError(f"--config-to: {config_to.parent} does not exist")
    for path in (config_to, config_to.with_name(config_to.name + ".d")):
        if os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path))


def _only_roots_folders(config: Config, config_to: Path | None) -> None:
    """Root writes only through folders no other user can change (another could swap one for
    a link while root writes there): the data dir's parent, where the new data dir is built,
    and the folders of what is restored outside it. A data dir that is a mount point is built
    inside it, and is root's alone for the while (`_Layout`)."""
    folders = [config.data_dir.parent, *(p.parent for p in _outside(config))]
    folders += [config_to.parent] if config_to is not None else []
    for folder in folders:
        found = private_file.not_roots_alone(_absolute(folder))
        if found is not None:
            raise BackupError(
                f"{found} is not root's alone: root would write through it, and its owner "
                "could swap what is there for a link. Restore as that user (runuser -u USER "
                "-- appliance restore ...), or keep the data dir and what the config puts "
                "outside it under folders only root may change"
            )


def _outside(config: Config) -> list[Path]:
    """What the restore writes outside the data dir (the config can put it elsewhere)."""
    paths = [Path(config.recordings.store_dir), Path(config.recordings.key_file)]
    url = make_url(config.database.url)
    if url.get_backend_name() == "sqlite" and url.database:
        database = Path(url.database)
        paths += [database, Path(f"{database}-wal"), Path(f"{database}-shm")]
    data_dir = config.data_dir
    return [p for p in map(_absolute, paths) if not _within(p, data_dir)]


def _check_empty(url: URL) -> None:
    engine = db.make_engine(url.render_as_string(hide_password=False))
    try:
        if inspect(engine).get_table_names():
            raise BackupError(
                "the database database.url names is not empty: restore needs an empty database "
                "(drop it and create it again)"
            )
    finally:
        engine.dispose()


def _check_config(archived: dict[str, Any] | None, config_to: Path | None) -> None:
    if archived is None or config_to is None:
        return
    for name in archived["dropins"]:
        if not DROPIN.fullmatch(name):
            raise BackupError(f"config drop-in {archive.shown(name)} is not a drop-in's name")


def _contents(folder: Path, *ignore: Path) -> list[Path]:
    """What a data dir holds (a mounted file system's lost+found does not count)."""
    if not folder.is_dir():
        return []
    spare = {folder / "lost+found"} if os.path.ismount(folder) else set()
    return [p for p in folder.iterdir() if p not in spare and p not in ignore]


def _absolute(path: Path) -> Path:
    return Path(os.path.abspath(path))


def _within(path: Path, folder: Path) -> bool:
    return path == folder or path.is_relative_to(folder)


class _Layout:
    """Where each restored file is written: inside the data dir, into the new data dir being
    built in a staging folder only root (or the user restoring) may enter; outside it, beside
    its final place under a temporary name. `commit` moves both into place; `abandon` removes
    what was written outside; `close` removes the staging folder.

    The staging folder is made beside the data dir (whose parent `_check_targets` found to be
    root's alone), or inside it when it is a mount point, which cannot be renamed. Such a data
    dir is its owner's: run as root, the restore makes it root's alone (0700) until it is done,
    so that its owner cannot swap the staging folder for a link meanwhile."""

    def __init__(self, data_dir: Path, force: bool) -> None:
        self.data_dir, self.force = data_dir, force
        self.moves: list[tuple[Path, Path]] = []
        self.cleanups: list[Callable[[], None]] = []
        self.owner = _owner(data_dir)
        self.mounted = os.path.ismount(data_dir)
        self.taken = _take(data_dir) if self.mounted and os.geteuid() == 0 else None
        beside = data_dir if self.mounted else data_dir.parent  # the same file system
        try:
            self.staging = Path(tempfile.mkdtemp(dir=beside, prefix=f".{data_dir.name}.restore-"))
        except BaseException:
            if self.taken is not None:
                _give_back(*self.taken)
            raise
        self.built = self.staging / "data"
        self.built.mkdir(mode=0o700)

    def path(self, target: Path) -> Path:
        target = _absolute(target)
        if _within(target, self.data_dir):
            staged = self.built / target.relative_to(self.data_dir)
        else:
            staged = target.with_name(f".{target.name}.restoring-{os.urandom(4).hex()}")
            self.moves.append((staged, target))
        archive.private_dirs(staged.parent)
        return staged

    def commit(self) -> Path | None:
        """The new data dir in place of the old (moved aside, if it was not empty), in one
        rename; into a mount point (which cannot be renamed), entry by entry."""
        aside, found = None, _contents(self.data_dir, self.staging)
        if found and (not self.force or self.mounted):
            raise BackupError(f"{self.data_dir} was written to meanwhile: not replaced")
        if os.geteuid() == 0 and self.owner is not None:
            _give(self.built, *self.owner)
        if self.mounted:
            for entry in self.built.iterdir():
                os.rename(entry, self.data_dir / entry.name)
        else:
            if found:
                stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
                aside = self.data_dir.with_name(f"{self.data_dir.name}.replaced-{stamp}")
                os.rename(self.data_dir, aside)
            elif self.data_dir.is_dir():
                self.data_dir.rmdir()
            os.rename(self.built, self.data_dir)
        for staged, target in self.moves:
            if os.path.lexists(staged):
                os.rename(staged, target)  # a missing file, or an empty folder: replaced
        return aside

    def abandon(self) -> None:
        for staged, _ in self.moves:
            if staged.is_dir() and not staged.is_symlink():
                shutil.rmtree(staged, ignore_errors=True)
            else:
                for path in (staged, Path(f"{staged}-wal"), Path(f"{staged}-shm")):
                    path.unlink(missing_ok=True)
        for cleanup in self.cleanups:
            cleanup()

    def close(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
        if self.taken is not None:
            _give_back(*self.taken)


def _owner(data_dir: Path) -> tuple[int, int] | None:
    """The restored files' owner, run as root: that of the data dir they replace (the
    service's user), not root."""
    try:
        st = os.lstat(data_dir)
    except FileNotFoundError:
        return None
    return (st.st_uid, st.st_gid) if stat.S_ISDIR(st.st_mode) else None


def _take(data_dir: Path) -> tuple[int, os.stat_result]:
    """The data dir made root's alone, and what it was (to give it back)."""
    fd = os.open(data_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    was = os.fstat(fd)
    os.fchmod(fd, 0o700)
    os.fchown(fd, 0, 0)
    return fd, was


def _give_back(fd: int, was: os.stat_result) -> None:
    try:
        os.fchown(fd, was.st_uid, was.st_gid)
        os.fchmod(fd, stat.S_IMODE(was.st_mode))  # after chown, which clears setgid
    finally:
        os.close(fd)


def _give(built: Path, uid: int, gid: int) -> None:
    """Every file and folder of the new data dir to `uid`:`gid`, never through a link."""
    os.chown(built, uid, gid, follow_symlinks=False)
    for _, folders, files, fd in os.fwalk(built, follow_symlinks=False):
        for name in folders + files:
            os.chown(name, uid, gid, dir_fd=fd, follow_symlinks=False)


# building the new box ------------------------------------------------------------------
class _Secrets:
    """The sealed payload, its parts checked for type."""

    def __init__(self, payload: dict[str, Any]) -> None:
        try:
            self.database_key = _unb64(payload["database_key"])
            master = payload["master_keys"]
            ring = {str(k): _unb64(v) for k, v in master["keys"].items()}
            if len(self.database_key) != 32 or any(len(k) != 32 for k in ring.values()):
                raise ValueError("a key of the wrong length")
            self.ring = keys.KeyRing(ring, str(master["current"]))
            box = payload.get("secret_box")
            self.secret_box = _unb64(box) if box is not None else None
            self.files = {str(k): str(v) for k, v in (payload.get("secret_files") or {}).items()}
            tls_key = payload.get("tls_key")
            self.tls_key = str(tls_key) if tls_key is not None else None
            config = payload.get("config")
            self.config = _config_payload(config) if config is not None else None
        except (KeyError, TypeError, ValueError, AttributeError, keys.KeyProblem):
            raise BackupError("the sealed secrets in the archive are damaged") from None


def _config_payload(config: Any) -> dict[str, Any]:
    dropins = {str(k): str(v) for k, v in config["dropins"].items()}
    return {"file": str(config["file"]), "text": str(config["text"]), "dropins": dropins}


def _unb64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise TypeError("not base64 text")
    return base64.b64decode(text, validate=True)


@dataclass
class _Built:
    counts: dict[str, int]
    recordings: int
    revision: str
    kept: list[str] = field(default_factory=list)
    aside: Path | None = None


def _build(
    config: Config,
    layout: _Layout,
    members: Path,
    manifest: archive.Manifest,
    secrets: _Secrets,
    actor: str,
) -> _Built:
    placed, kept = _place_secret_files(config, layout, secrets.files)
    keys.save(layout.path(Path(config.recordings.key_file)), secrets.ring, _unlock(config, placed))
    if secrets.secret_box is not None:
        _write_new(layout.path(config.secrets_dir / "box.key"), secrets.secret_box)
    cert, key = tls.cert_paths(config.data_dir)
    if (members / archive.CERTIFICATE).is_file() and secrets.tls_key is not None:
        _write_new(layout.path(cert), (members / archive.CERTIFICATE).read_bytes(), 0o644)
        _write_new(layout.path(key), secrets.tls_key.encode())
    names = _place_recordings(config, layout, members, manifest)
    loaded, revision, url = _restore_database(config, layout, members, manifest, secrets)
    if loaded.file_names != names:
        raise BackupError("the archive's database and its recordings do not agree: refused")
    built = _Built(loaded.counts, len(names), revision, kept)
    _audit(url, actor, manifest, built)  # in the new database, before it is in place
    return built


def _place_secret_files(
    config: Config, layout: _Layout, archived: dict[str, str]
) -> tuple[dict[str, str], list[str]]:
    """The `file:` secrets the config names, from the archive: inside the data dir always,
    outside it only where no file is (one found there is kept)."""
    placed, kept = {}, []
    for setting in SECRET_SETTINGS:
        value = setting_value(config, setting)
        if not value.startswith("file:") or setting not in archived:
            continue
        target = _absolute(Path(value[5:]))
        if not _within(target, config.data_dir) and os.path.lexists(target):
            kept.append(setting)
            continue
        _write_new(layout.path(target), archived[setting].encode())
        placed[setting] = archived[setting]
    return placed, kept


def _unlock(config: Config, placed: dict[str, str]) -> str | None:
    """The passphrase the restored key file is sealed under: this box's own setting."""
    value = config.recordings.key_passphrase
    if not value:
        return None
    if "recordings.key_passphrase" in placed:
        return placed["recordings.key_passphrase"].strip()
    if value.startswith("file:") and _within(_absolute(Path(value[5:])), config.data_dir):
        raise BackupError(
            "recordings.key_passphrase names a file in the data dir that the archive does not "
            "hold: give it as env:NAME or a file outside the data dir"
        )
    return resolve_secret("recordings.key_passphrase", value)


def _place_recordings(
    config: Config, layout: _Layout, members: Path, manifest: archive.Manifest
) -> set[str]:
    store = archive.private_dirs(layout.path(Path(config.recordings.store_dir)))
    names = set()
    for name in manifest.members:
        if name.startswith(archive.RECORDINGS):
            file_name = name.removeprefix(archive.RECORDINGS)
            archive.private_dirs((store / file_name).parent)
            shutil.move(members / name, store / file_name)
            names.add(file_name)
    return names


def _restore_database(
    config: Config, layout: _Layout, members: Path, manifest: archive.Manifest, secrets: _Secrets
) -> tuple[dump.Loaded, str, str]:
    """The database loaded and migrated; with its revision and where it is."""
    url = make_url(config.database.url)
    if url.get_backend_name() == "sqlite":
        url = url.set(database=str(layout.path(Path(url.database or ""))))
    else:
        layout.cleanups.append(lambda: _drop_everything(url))
    where = url.render_as_string(hide_password=False)
    engine = db.make_engine(where)
    try:
        upgrade(engine, manifest.schema_revision)
        with (members / archive.DATABASE).open("rb") as sealed, engine.begin() as connection:
            plain = io.BufferedReader(_Plain(SealedRecording(sealed, secrets.database_key)))
            loaded = dump.load(connection, plain, manifest.schema_revision)
        upgrade(engine)
        return loaded, current_revision(engine) or "", where
    except RecordingError:
        raise BackupError("the database dump does not open: the archive was altered") from None
    finally:
        engine.dispose()


class _Plain(io.RawIOBase):
    """A sealed file's plaintext as a stream, chunk by chunk (each one checked)."""

    def __init__(self, recording: SealedRecording) -> None:
        self._chunks: Iterator[bytes] = recording.read()
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = chunk
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def _drop_everything(url: URL) -> None:
    """Undo a restore into PostgreSQL (whose database was checked to be empty)."""
    engine = db.make_engine(url.render_as_string(hide_password=False))
    try:
        metadata = MetaData()
        metadata.reflect(engine)
        metadata.drop_all(engine)
    finally:
        engine.dispose()


def _write_new(path: Path, data: bytes, mode: int = 0o600) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(path, mode)  # whatever the umask


def _write_config(config_to: Path | None, archived: dict[str, Any] | None) -> tuple[Path, ...]:
    if config_to is None or archived is None:
        return ()
    written = [config_to]
    _write_new(config_to, archived["text"].encode())
    if archived["dropins"]:
        folder = config_to.with_name(config_to.name + ".d")
        folder.mkdir(mode=0o700)
        for name, text in sorted(archived["dropins"].items()):
            _write_new(folder / name, text.encode())
            written.append(folder / name)
    return tuple(written)


def _audit(url: str, actor: str, manifest: archive.Manifest, built: _Built) -> None:
    engine = db.make_engine(url)
    detail = (
        f"archive of {manifest.created} (appliance {manifest.appliance_version}, schema "
        f"{manifest.schema_revision}): {built.counts.get('calls', 0)} calls, "
        f"{built.recordings} recordings; schema now {built.revision}"
    )
    try:
        with db.session_factory(engine).begin() as session:
            audit.record(session, actor, "backup.restore", detail=detail)
    finally:
        engine.dispose()
