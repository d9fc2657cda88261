"""Vosk models in the model directory (transcription.model_dir): installed from an official
model archive (.zip or .tar.gz) that an admin brought to the box, checked on the way in.

An archive is untrusted: nothing is written outside the new model's folder (no absolute
paths, no `..`, no links, no devices), its size is bounded, and it must hold a Vosk model
(am/final.mdl and a conf/ folder). The model appears under its name only once it is complete
(unpacked beside, then renamed), so a worker never loads half a model."""

from __future__ import annotations

import os
import re
import shutil
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

MAX_BYTES = 4 * 1024**3  # unpacked, in all
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
REQUIRED = ("am/final.mdl", "conf")


class ModelError(ValueError):
    """An archive or model that cannot be installed; the message says why."""


@dataclass(frozen=True)
class Model:
    name: str
    path: Path
    bytes: int


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


def _safe_member(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not name or "\\" in name:
        raise ModelError(f"the archive names a path outside the model: {name[:80]!r}")
    return path


Member = tuple[str, PurePosixPath, bool, int]  # name in the archive, path, is a folder, size


def _members(archive: Path) -> list[Member]:
    """Each member worth writing; refuses anything but files and folders."""
    out: list[Member] = []
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            for info in z.infolist():
                mode = info.external_attr >> 16
                if (mode & 0o170000) not in (0, 0o100000, 0o040000):  # files, folders: nothing else
                    raise ModelError(f"the archive holds a link or device: {info.filename[:80]!r}")
                out.append((info.filename, _safe_member(info.filename), info.is_dir(),
                            info.file_size))  # fmt: skip
    else:
        try:
            with tarfile.open(archive) as t:
                for member in t.getmembers():
                    if not (member.isfile() or member.isdir()):
                        raise ModelError(
                            f"the archive holds a link or device: {member.name[:80]!r}"
                        )
                    out.append((member.name, _safe_member(member.name), member.isdir(),
                                member.size))  # fmt: skip
        except tarfile.TarError:
            raise ModelError(f"{archive.name}: not a .zip or .tar.gz archive") from None
    return [m for m in out if m[1].parts]


def install(archive: Path, model_dir: Path, name: str | None = None) -> Model:
    """Unpack a model archive into model_dir/NAME (NAME: the archive's top folder)."""
    if not archive.is_file():
        raise ModelError(f"{archive}: no such file")
    members = _members(archive)
    if sum(size for _, _, _, size in members) > MAX_BYTES:
        raise ModelError("the archive unpacks to more than 4 GiB")
    tops = {path.parts[0] for _, path, _, _ in members}
    if len(tops) != 1:
        raise ModelError("a model archive holds one folder (the model) and nothing beside it")
    (top,) = tops
    name = name or top
    if not MODEL_NAME.fullmatch(name):
        raise ModelError(f"{name[:80]!r} is not a model name (letters, digits, . _ -)")
    model_dir.mkdir(parents=True, exist_ok=True)
    target = model_dir / name
    if target.exists():
        raise ModelError(f"a model {name!r} is already installed")
    work = Path(tempfile.mkdtemp(prefix=".unpacking-", dir=model_dir))
    try:
        _unpack(archive, work, members)
        unpacked = work / top
        if not is_model(unpacked):
            raise ModelError("the archive is not a Vosk model (it lacks am/final.mdl or conf/)")
        os.rename(unpacked, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return next(m for m in installed(model_dir) if m.name == name)


def _unpack(archive: Path, into: Path, members: list[Member]) -> None:
    """Write each checked member by hand: no extractor decides where a file goes."""
    zipped = zipfile.is_zipfile(archive)
    with zipfile.ZipFile(archive) if zipped else tarfile.open(archive) as opened:
        for name, path, folder, _ in members:
            target = into.joinpath(*path.parts)
            if folder:
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(opened, zipfile.ZipFile):
                source: IO[bytes] | None = opened.open(name)
            else:
                source = opened.extractfile(name)
            if source is None:
                raise ModelError(f"cannot read {name[:80]!r} from the archive")
            with source, open(target, "xb") as sink:  # x: a name twice is refused
                shutil.copyfileobj(source, sink)


def remove(model_dir: Path, name: str) -> None:
    if not MODEL_NAME.fullmatch(name) or not (model_dir / name).is_dir():
        raise ModelError(f"no model {name[:80]!r}")
    shutil.rmtree(model_dir / name)
