"""The backup archive (docs/backup-format.md): a POSIX tar of regular files, the manifest last,
with the SHA-256 of every other member. No database, no keys: file objects in and out.

Reading trusts nothing in the archive. Only regular files with names a backup writes are
taken (never a link, a device, a directory, an absolute path or `..`), each copied into a new
private directory with its hash taken on the way; the manifest, read last, must list exactly
the members seen, with their hashes. A member's hash in the manifest only proves that the file
was not damaged: the sealed secrets repeat every hash under the passphrase (`check_sealed`),
which is what proves that nobody altered the archive."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol, cast

from appliance.backup import BackupError

FORMAT = 1
MANIFEST = "manifest.json"
SECRETS = "secrets.sealed"
DATABASE = "database.dump"
CERTIFICATE = "tls/cert.pem"
RECORDINGS = "recordings/"
FIXED = (SECRETS, DATABASE, CERTIFICATE)
RECORDING = re.compile(r"recordings/[0-9]{4}/[0-9]{2}/[A-Za-z0-9][A-Za-z0-9._-]{0,127}\.rec")
# One bound on the recordings an archive holds sets the others: the manifest and the sealed
# secrets list every member (~180 bytes each, with its SHA-256), and a reader counts members
# as they come, so that no archive makes it write more files than a backup can hold.
MAX_RECORDINGS = 150_000
MAX_MEMBERS = MAX_RECORDINGS + len(FIXED) + 1  # and the manifest
ROOM = 1 << 20  # keys, secrets, the config, the manifest's head: kilobytes
MAX_MANIFEST = ROOM + 256 * MAX_MEMBERS
MAX_SECRETS = ROOM + 256 * MAX_MEMBERS
COPY_CHUNK = 1 << 20


@dataclass(frozen=True)
class Member:
    sha256: str
    size: int


@dataclass(frozen=True)
class Manifest:
    appliance_version: str
    schema_revision: str
    created: str  # ISO 8601, UTC
    database: Mapping[str, Any]  # the backend it came from and its rows per table
    members: Mapping[str, Member] = field(default_factory=dict)

    def to_json(self) -> bytes:
        document = {
            "format": FORMAT,
            "appliance_version": self.appliance_version,
            "schema_revision": self.schema_revision,
            "created": self.created,
            "database": self.database,
            "members": {n: {"sha256": m.sha256, "size": m.size} for n, m in self.members.items()},
        }
        return json.dumps(document, indent=1, sort_keys=True).encode() + b"\n"

    @classmethod
    def from_json(cls, raw: bytes) -> Manifest:
        try:
            doc = json.loads(raw)
            if doc["format"] != FORMAT:
                raise BackupError(f"the archive's format {doc['format']!r} is not one this "
                                  "version reads")  # fmt: skip
            members = {
                str(name): Member(str(m["sha256"]), int(m["size"]))
                for name, m in doc["members"].items()
            }
            manifest = cls(
                str(doc["appliance_version"]),
                str(doc["schema_revision"]),
                str(doc["created"]),
                dict(doc["database"]),
                members,
            )
        except (ValueError, KeyError, TypeError, AttributeError, OverflowError, RecursionError):
            # OverflowError: a size of Infinity; RecursionError: JSON nested too deep
            raise BackupError("the archive's manifest is damaged") from None
        for name in manifest.members:
            check_name(name)
        return manifest


def check_name(name: str) -> str:
    """A member name a backup writes; BackupError (with the name, made printable) if not."""
    if name.startswith("/"):
        raise BackupError(f"member {shown(name)} has an absolute path: refused")
    if ".." in name.split("/") or "\\" in name:
        raise BackupError(f"member {shown(name)} leads out of the archive ('..'): refused")
    if name not in (MANIFEST, *FIXED) and not RECORDING.fullmatch(name):
        raise BackupError(f"member {shown(name)} is not part of a backup: refused")
    return name


def shown(name: str) -> str:
    """A name from an archive, safe to print on one line."""
    clean = "".join(ch if ch.isprintable() else "?" for ch in name[:100])
    return repr(clean + ("…" if len(name) > 100 else ""))


class _Hashing:
    """Reads through to `source`, hashing and counting."""

    def __init__(self, source: BinaryIO) -> None:
        self.source = source
        self.hash = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        self.hash.update(data)
        self.size += len(data)
        return data


class Sink(Protocol):
    def write(self, data: bytes, /) -> int: ...


class Writer:
    """Writes members to a tar stream, remembering each one's SHA-256; `finish` adds the
    manifest and ends the archive."""

    def __init__(self, out: Sink, mtime: float) -> None:
        stream = cast(BinaryIO, out)  # tar's stream mode only writes
        self._tar = tarfile.open(fileobj=stream, mode="w|", format=tarfile.PAX_FORMAT)  # noqa: SIM115
        self._mtime = int(mtime)
        self.members: dict[str, Member] = {}

    def add(self, name: str, source: BinaryIO, size: int) -> None:
        if name in self.members or check_name(name) == MANIFEST:
            raise ValueError(f"member {name!r} is already written")
        reader = _Hashing(source)
        self._tar.addfile(self._info(name, size), reader)
        self.members[name] = Member(reader.hash.hexdigest(), size)

    def add_bytes(self, name: str, data: bytes) -> None:
        self.add(name, io.BytesIO(data), len(data))

    def finish(self, manifest: Manifest) -> None:
        data = manifest.to_json()
        self._tar.addfile(self._info(MANIFEST, len(data)), io.BytesIO(data))
        self._tar.close()

    def _info(self, name: str, size: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime, info.type = size, 0o600, self._mtime, tarfile.REGTYPE
        return info


def extract(source: BinaryIO, into: Path) -> Manifest:
    """Copy every member of the archive into `into` (a new, private, empty directory) and
    check them against the manifest. BackupError for anything else than a whole, undamaged
    backup archive; nothing is written outside `into`."""
    seen: dict[str, Member] = {}
    manifest: bytes | None = None
    try:
        with tarfile.open(fileobj=source, mode="r|") as tar:
            for count, info in enumerate(tar, 1):
                if manifest is not None:
                    raise BackupError(f"member {shown(info.name)} follows the manifest: refused")
                if count > MAX_MEMBERS:
                    raise BackupError(
                        f"the archive holds more than {MAX_MEMBERS:,} members, more than a "
                        "backup does: refused"
                    )
                name = _checked(info)
                if name in seen:
                    raise BackupError(f"member {shown(name)} is in the archive twice: refused")
                stream = tar.extractfile(info)
                assert stream is not None  # a regular file
                if name == MANIFEST:
                    manifest = _manifest_bytes(stream, info.size)
                else:
                    seen[name] = _copy(stream, into / name)
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise
        raise BackupError("the archive is truncated or is not a backup archive") from None
    if manifest is None:
        raise BackupError("the archive is truncated: its manifest is missing")
    parsed = Manifest.from_json(manifest)
    _compare(parsed.members, seen)
    return parsed


def _checked(info: tarfile.TarInfo) -> str:
    if info.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):
        raise BackupError(f"member {shown(info.name)} is {_kind(info)}: refused")
    if info.sparse is not None:  # a few bytes in the archive, any size on the disk
        raise BackupError(f"member {shown(info.name)} is a sparse file: refused")
    name = check_name(info.name)
    if name == SECRETS and info.size > MAX_SECRETS:
        raise BackupError(f"member {SECRETS} is too big: refused")
    return name


def _kind(info: tarfile.TarInfo) -> str:
    kinds = (
        (info.issym, "a symbolic link"),
        (info.islnk, "a hard link"),
        (info.isdir, "a directory"),
        (info.ischr, "a device"),
        (info.isblk, "a device"),
        (info.isfifo, "a FIFO"),
    )
    return next((name for test, name in kinds if test()), "not a regular file")


def _manifest_bytes(stream: Any, size: int) -> bytes:
    if size > MAX_MANIFEST:
        raise BackupError("the archive's manifest is too big: refused")
    data: bytes = stream.read()
    if len(data) != size:
        raise BackupError("the archive is truncated in its manifest")
    return data


def private_dirs(folder: Path) -> Path:
    """`folder` and any missing parents, each made 0700 (mkdir's `parents` gives them the
    umask's mode)."""
    if not folder.is_dir():
        private_dirs(folder.parent)
        folder.mkdir(mode=0o700, exist_ok=True)
    return folder


def _copy(stream: Any, target: Path) -> Member:
    """One member into its own new file (0600), hashed on the way."""
    private_dirs(target.parent)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    digest, size = hashlib.sha256(), 0
    with os.fdopen(fd, "wb") as out:
        while chunk := stream.read(COPY_CHUNK):
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
    return Member(digest.hexdigest(), size)


def _compare(listed: Mapping[str, Member], seen: Mapping[str, Member]) -> None:
    for name in sorted(set(listed) - set(seen)):
        raise BackupError(f"member {shown(name)} is missing: the archive is truncated")
    for name in sorted(set(seen) - set(listed)):
        raise BackupError(f"member {shown(name)} is not in the manifest: refused")
    for name in sorted(seen):
        if seen[name] != listed[name]:
            raise BackupError(
                f"member {shown(name)} does not match its SHA-256 in the manifest: the archive "
                "is damaged or was altered"
            )
    if SECRETS not in seen or DATABASE not in seen:
        raise BackupError("the archive has no database or no sealed secrets: not a backup")


def sealed_digests(members: Mapping[str, Member]) -> dict[str, str]:
    """What the sealed secrets repeat of the manifest: every other member's SHA-256."""
    return {name: m.sha256 for name, m in members.items() if name not in (SECRETS, MANIFEST)}


def check_sealed(manifest: Manifest, sealed: Mapping[str, Any]) -> None:
    """The manifest and what was sealed with the passphrase must agree, member for member:
    whoever altered a member and its hash in the manifest could not seal the change."""
    same = (
        sealed.get("members") == sealed_digests(manifest.members)
        and sealed.get("schema_revision") == manifest.schema_revision
        and sealed.get("created") == manifest.created
    )
    if not same:
        raise BackupError(
            "the archive was altered: its manifest does not match what was sealed with the "
            "passphrase"
        )
