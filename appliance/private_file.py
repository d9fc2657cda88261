"""One way to read a private file: a key, a secret, a passphrase. Root reads some of them in
folders the appliance user owns (`config render`: the secret box key, the AMI secret, the key
passphrase; `restore`: the key passphrase and the backup passphrase), where that user could
leave a link to one of root's files, a hard link to one, a FIFO that blocks the reader for
ever, or a file too big to be a secret. So the file itself is opened (never through a link,
never blocking) and must be a regular file, small, closed to the writes (or reads) of
others, and, read by root, owned by the owner of the folder it is in."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

SMALL = 64 * 1024  # bytes: a secret, a key file, a passphrase


class UnsafeFile(Exception):
    """A private file that is not what it must be; the message names it and says why."""


def read(path: Path, *, closed: int = 0o022, limit: int = SMALL) -> bytes:
    """`path`'s bytes. FileNotFoundError and PermissionError as opening gives them;
    UnsafeFile for a link (the file or its folder), anything but a regular file, a file open
    to the permission bits in `closed`, larger than `limit`, or, for root, owned by another
    user than its folder's owner (a hard link to a file of root's)."""
    folder = _open_itself(path.parent, os.O_DIRECTORY)
    try:
        fd = _open_itself(path, os.O_NONBLOCK, dir_fd=folder)
        try:
            return _read_checked(fd, os.fstat(folder).st_uid, path, closed, limit)
        finally:
            os.close(fd)
    finally:
        os.close(folder)


def open_regular(path: Path) -> int:
    """A read-only descriptor of a regular file, opened without blocking (a FIFO planted in
    its place would block its reader for ever), then made blocking again for reading."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UnsafeFile(f"{path} is not a regular file")
    os.set_blocking(fd, True)
    return fd


def _open_itself(path: Path, flags: int, dir_fd: int | None = None) -> int:
    """`path` itself, never what a link there points to (in `dir_fd`: its last part only)."""
    name = path.name if dir_fd is not None else path
    try:
        return os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | flags, dir_fd=dir_fd)
    except OSError as exc:
        linked = exc.errno == errno.ELOOP or (exc.errno == errno.ENOTDIR and path.is_symlink())
        if linked:  # a link to a folder opened as one is "not a folder"
            raise UnsafeFile(f"{path} is a link: name the file by its real path") from None
        raise


def _read_checked(fd: int, folder_owner: int, path: Path, closed: int, limit: int) -> bytes:
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise UnsafeFile(f"{path} is not a regular file")
    if os.geteuid() == 0 and st.st_uid != folder_owner:
        raise UnsafeFile(
            f"{path} is owned by uid {st.st_uid}, not by the owner of its folder (uid "
            f"{folder_owner}): not read as root"
        )
    if st.st_mode & closed:
        if closed & 0o044:
            raise UnsafeFile(f"{path} is readable by others (chmod 600 {path})")
        raise UnsafeFile(f"{path} may be written by others than its owner (chmod go-w {path})")
    if st.st_size > limit:
        raise UnsafeFile(f"{path} is larger than {limit // 1024} KiB: not a secret")
    data = os.read(fd, limit + 1)
    if len(data) > limit:  # grew since fstat
        raise UnsafeFile(f"{path} is larger than {limit // 1024} KiB: not a secret")
    return data


def not_roots_alone(folder: Path) -> Path | None:
    """The first of `folder` and the folders above it that another user than root could
    change (its owner, or anyone who may write in it without the sticky bit /tmp has), or
    that is a link; None when only root can. Root writes only through folders that pass:
    another user could swap one for a link to where root's writes would land."""
    for path in [*reversed(folder.parents), folder]:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return None  # nothing below it exists either
        swappable = st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX
        if stat.S_ISLNK(st.st_mode) or st.st_uid != 0 or swappable:
            return path
    return None
