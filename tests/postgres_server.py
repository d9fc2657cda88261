"""A real, temporary PostgreSQL server on loopback (Debian's binaries), for tests and
benchmarks; removed when done."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.harness import free_port


def _pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found:
        raise RuntimeError("PostgreSQL is not installed (scripts/test installs it)")
    return Path(found[-1]).parent


@contextmanager
def temporary_server() -> Iterator[str]:
    """Yields the SQLAlchemy URL of a fresh server."""
    bindir = _pg_bin()
    base = Path(tempfile.mkdtemp(prefix="appliance-pg-"))
    port = free_port()
    user = None
    if os.geteuid() == 0:
        user = "postgres"
        shutil.chown(base, user=pwd.getpwnam(user).pw_uid)

    def run(*argv: str) -> None:
        command = ["runuser", "-u", user, "--", *argv] if user else list(argv)
        subprocess.run(command, check=True, capture_output=True, cwd=base)

    data = str(base / "data")
    run(str(bindir / "initdb"), "-D", data, "-U", "appliance", "--auth=trust", "-E", "UTF8")
    run(
        str(bindir / "pg_ctl"), "-D", data, "-l", str(base / "log"), "-w", "start",
        "-o", f"-h 127.0.0.1 -p {port} -k {base} -F",
    )  # fmt: skip
    try:
        yield f"postgresql+psycopg://appliance@127.0.0.1:{port}/postgres"
    finally:
        run(str(bindir / "pg_ctl"), "-D", data, "-m", "immediate", "stop")
        shutil.rmtree(base, ignore_errors=True)
