"""Vosk models in the model directory (transcription.model_dir): installed from an official
model archive (.zip or .tar.gz) that an admin brought to the box, checked on the way in.

An archive is untrusted. Its table of contents is read and judged before anything is
written: at most MAX_MEMBERS members (a model has a few dozen files), MAX_BYTES unpacked,
only files and folders (no links, no devices), no absolute path, no `..`, no name twice, one
top folder holding a Vosk model (am/final.mdl and a conf/ folder). Then the members are
written in one pass in archive order, each looked up by its own entry rather than by name.
The model appears under its name only once it is complete (unpacked beside, then renamed),
so a worker never loads half a model; a refusal leaves nothing behind."""

from __future__ import annotations

import os
import re
import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

MAX_BYTES = 4 * 1024**3  # unpacked, in all
MAX_MEMBERS = 10_000  # files and folders; an official model has a few dozen
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
REQUIRED = ("am/final.mdl", "conf")
COPY_CHUNK = 1 << 20


class ModelError(ValueError):
    """An archive or model that cannot be installed; the message says why."""


@dataclass(frozen=True)
class Model:
    name: str
    path: Path
    bytes: int


@dataclass(frozen=True)
class Member:
    """One entry of an archive's table of contents, kept so that it is read without a
    search by name (which is linear in a tar: quadratic over the archive)."""

    path: PurePosixPath
    folder: bool
    size: int
    entry: zipfile.ZipInfo | tarfile.TarInfo


def is_model(path: Path) -> bool:
    return all((path / part).exists() for part in REQUIRED)


def installed(model_dir: Path) -> list[Model]:
    if not model_dir.is_dir():
        return []
    found = []
    for path in sorted(model_dir.iterdir()):
        if (
            path.is_dir()
            and not path.is_symlink()
            and not path.name.startswith(".")
            and is_model(path)
        ):
            size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
            found.append(Model(path.name, path, size))
    return found


def install(archive: Path, model_dir: Path, name: str | None = None) -> Model:
    """Unpack a model archive into model_dir/NAME (NAME: the archive's top folder)."""
    if not archive.is_file():
        raise ModelError(f"{archive}: no such file")
    with _opened(archive) as opened:
        members = _contents(opened)
        top = checked_model(members)
        name = name or top
        if not MODEL_NAME.fullmatch(name):
            raise ModelError(f"{name[:80]!r} is not a model name (letters, digits, . _ -)")
        model_dir.mkdir(parents=True, exist_ok=True)
        target = model_dir / name
        if target.exists():
            raise ModelError(f"a model {name!r} is already installed")
        work = Path(tempfile.mkdtemp(prefix=".unpacking-", dir=model_dir))
        try:
            _unpack(opened, work, members)
            os.rename(work / top, target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return next(m for m in installed(model_dir) if m.name == name)


def remove(model_dir: Path, name: str) -> None:
    if not MODEL_NAME.fullmatch(name) or not (model_dir / name).is_dir():
        raise ModelError(f"no model {name[:80]!r}")
    shutil.rmtree(model_dir / name)


# judging the table of contents (no I/O) ------------------------------------------------
def safe_path(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not name or "\\" in name or "\0" in name:
        raise ModelError(f"the archive names a path outside the model: {name[:80]!r}")
    return path


def checked_model(members: list[Member]) -> str:
    """The archive's top folder, if its members make one Vosk model and nothing else;
    ModelError saying what is wrong otherwise."""
    if sum(m.size for m in members) > MAX_BYTES:
        raise ModelError("the archive unpacks to more than 4 GiB")
    paths: set[PurePosixPath] = set()
    for member in members:
        if member.path in paths:
            raise ModelError(f"the archive names {str(member.path)[:80]!r} twice")
        paths.add(member.path)
    folders = {parent for path in paths for parent in path.parents if parent.parts}
    folders |= {m.path for m in members if m.folder}
    for member in members:
        if not member.folder and member.path in folders:
            raise ModelError(f"the archive has {str(member.path)[:80]!r} as a file and a folder")
    tops = {path.parts[0] for path in paths}
    if len(tops) != 1:
        raise ModelError("a model archive holds one folder (the model) and nothing beside it")
    (top,) = tops
    files = {m.path for m in members if not m.folder}
    if PurePosixPath(top, "am/final.mdl") not in files or PurePosixPath(top, "conf") not in folders:
        raise ModelError("the archive is not a Vosk model (it lacks am/final.mdl or conf/)")
    return top


# reading and writing -------------------------------------------------------------------
Opened = zipfile.ZipFile | tarfile.TarFile


def _opened(archive: Path) -> Opened:
    try:
        if zipfile.is_zipfile(archive):
            return zipfile.ZipFile(archive)
        return tarfile.open(archive)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError):
        raise ModelError(f"{archive.name}: not a .zip or .tar.gz archive") from None


def _contents(opened: Opened) -> list[Member]:
    """The archive's members worth writing, read no further than MAX_MEMBERS; anything but
    files and folders is refused."""
    members: list[Member] = []
    try:
        for member in _entries(opened):
            if len(members) == MAX_MEMBERS:
                raise ModelError(
                    f"the archive holds more than {MAX_MEMBERS:,} members: not a Vosk model "
                    "(one has a few dozen files)"
                )
            if member.path.parts:
                members.append(member)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError):
        raise ModelError("the archive is damaged or truncated") from None
    return members


def _entries(opened: Opened) -> Iterator[Member]:
    if isinstance(opened, zipfile.ZipFile):
        for info in opened.infolist():  # the central directory, already read
            kind = (info.external_attr >> 16) & 0o170000
            if kind not in (0, 0o100000, 0o040000):  # files, folders: nothing else
                raise ModelError(f"the archive holds a link or device: {info.filename[:80]!r}")
            yield Member(safe_path(info.filename), info.is_dir(), info.file_size, info)
        return
    for entry in opened:  # header by header: a huge archive is not read to its end
        if not (entry.isfile() or entry.isdir()):
            raise ModelError(f"the archive holds a link or device: {entry.name[:80]!r}")
        yield Member(safe_path(entry.name), entry.isdir(), entry.size, entry)


def _unpack(opened: Opened, into: Path, members: list[Member]) -> None:
    """Write each judged member, in archive order, by hand: no extractor decides where a
    file goes."""
    try:
        for member in members:
            target = into.joinpath(*member.path.parts)
            if member.folder:
                target.mkdir(mode=0o755, parents=True, exist_ok=True)
                continue
            target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            with _source(opened, member) as source, _new_file(target) as sink:
                shutil.copyfileobj(source, sink, COPY_CHUNK)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError):
        raise ModelError("the archive is damaged or truncated") from None


def _source(opened: Opened, member: Member) -> IO[bytes]:
    if isinstance(member.entry, zipfile.ZipInfo):
        assert isinstance(opened, zipfile.ZipFile)
        return opened.open(member.entry)
    assert isinstance(opened, tarfile.TarFile)
    source = opened.extractfile(member.entry)
    if source is None:
        raise ModelError(f"cannot read {str(member.path)[:80]!r} from the archive")
    return source


def _new_file(target: Path) -> IO[bytes]:
    """A new file of our own: never one already there, never through a link."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    return os.fdopen(os.open(target, flags, 0o644), "wb")
