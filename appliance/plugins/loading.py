"""Where plugins come from: installed packages (entry-point group "appliance.plugins") and the
drop-in directory, whose `*.py` files are code the controller runs. So a drop-in file (and
its directory) is taken only when it is a real file (no symlink), owned by root or by the
controller's own user, and writable by nobody else; anything else is refused with a reason
and the other plugins load as usual."""

from __future__ import annotations

import importlib.metadata
import os
import re
import stat
import sys
import types
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

from appliance.plugins.spec import GROUP

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,49}")
MAX_SOURCE = 1_000_000  # bytes of one drop-in file


class Refused(Exception):
    """A plugin that is not loaded; the message is the one-line reason."""


@dataclass(frozen=True)
class Found:
    name: str
    origin: str  # "entry point <module:attr>" or the drop-in file's path
    load: types.FunctionType | object  # a callable giving the plugin object


def trusted_owners() -> frozenset[int]:
    return frozenset({0, os.geteuid()})


def check_node(path: Path, owners: Collection[int], directory: bool) -> os.stat_result:
    """lstat `path` and refuse a symlink, the wrong kind, a stranger's or a shared-writable
    node."""
    try:
        info = os.lstat(path)
    except OSError as exc:
        raise Refused(f"cannot be read ({exc.strerror})") from None
    if stat.S_ISLNK(info.st_mode):
        raise Refused("is a symlink")
    if directory and not stat.S_ISDIR(info.st_mode):
        raise Refused("is not a directory")
    if not directory and not stat.S_ISREG(info.st_mode):
        raise Refused("is not a regular file")
    if info.st_uid not in owners:
        raise Refused(f"is owned by uid {info.st_uid}, not root or the controller's user")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise Refused("is group- or world-writable")
    return info


def dropins(directory: Path, owners: Collection[int]) -> Iterator[Found | tuple[str, str, str]]:
    """Each `*.py` file of the directory: a Found, or (name, path, reason) when refused. A
    refused directory refuses everything (one entry for the directory)."""
    try:
        check_node(directory, owners, directory=True)
    except Refused as exc:
        if os.path.lexists(directory):
            yield ("(directory)", str(directory), f"the directory {exc}")
        return
    for path in sorted(directory.glob("*.py")):
        name = path.stem
        try:
            if not NAME.fullmatch(name):
                raise Refused("its name is not a Python identifier")
            check_node(path, owners, directory=False)
        except Refused as exc:
            yield (name[:50], str(path), str(exc))
            continue
        yield Found(name, str(path), _file_loader(path, name, owners))


def _file_loader(path: Path, name: str, owners: Collection[int]) -> object:
    def load() -> types.ModuleType:
        return import_file(path, name, owners)

    return load


def import_file(path: Path, name: str, owners: Collection[int]) -> types.ModuleType:
    """Run the file as module `appliance_plugin_<name>`; the file is opened without following
    links and checked again through the open descriptor (it cannot be swapped in between)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as source:
        info = os.fstat(source.fileno())
        if info.st_uid not in owners or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise Refused("changed while it was read")
        code = source.read(MAX_SOURCE + 1)
    if len(code) > MAX_SOURCE:
        raise Refused(f"is larger than {MAX_SOURCE} bytes")
    module = types.ModuleType(f"appliance_plugin_{name}")
    module.__file__ = str(path)
    sys.modules[module.__name__] = module
    try:
        exec(compile(code, str(path), "exec"), module.__dict__)  # noqa: S102 - the admin's plugin
    except BaseException:
        sys.modules.pop(module.__name__, None)
        raise
    return module


def entry_points() -> Iterator[Found]:
    for point in importlib.metadata.entry_points(group=GROUP):
        yield Found(point.name, f"entry point {point.value}", point.load)
