"""What is slow to make and the same for every test that starts from it, made once per test
process and copied for each test: a database at the newest revision (migrating runs every
batch table rebuild again, about half a second; a copy takes a millisecond) and the data dir
`appliance init` leaves (a second more: a bcrypt hash, a certificate). Tests of migrating or
of init themselves run them."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

from sqlalchemy import Engine

from appliance.db.engine import make_engine
from appliance.db.migrate import upgrade
from tests.inprocess import in_process

_MIGRATED: Path | None = None
_INITIALISED: Path | None = None


def _template() -> Path:
    global _MIGRATED
    if _MIGRATED is None:
        folder = tempfile.mkdtemp(prefix="appliance-migrated-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        template = Path(folder) / "head.db"
        engine = make_engine(f"sqlite:///{template}")
        upgrade(engine)
        engine.dispose()  # the last connection closed: the write-ahead log is in the file
        if Path(f"{template}-wal").exists():
            raise RuntimeError(f"{template}: its write-ahead log was left beside it")
        _MIGRATED = template
    return _MIGRATED


def migrated_sqlite(database: Path) -> Engine:
    """An engine on `database`, a new SQLite file at the newest revision."""
    shutil.copyfile(_template(), database)
    os.chmod(database, 0o600)
    return make_engine(f"sqlite:///{database}")


def migrated(url: str) -> Engine:
    """An engine on the empty database at `url`, at the newest revision: a copy for SQLite,
    the migrations themselves for PostgreSQL."""
    if url.startswith("sqlite:///"):
        return migrated_sqlite(Path(url.removeprefix("sqlite:///")))
    engine = make_engine(url)
    upgrade(engine)
    return engine


def initialised(data_dir: Path) -> None:
    """Make `data_dir` (which must not exist) the data dir of a box just initialised, for a
    config that sets its data_dir and nothing else init reads. Every copy holds the same keys,
    certificate and first password: a test of boxes that differ runs init itself."""
    global _INITIALISED
    if _INITIALISED is None:
        folder = Path(tempfile.mkdtemp(prefix="appliance-initialised-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        config = folder / "appliance.ini"
        config.write_text(f"[paths]\ndata_dir = {folder / 'data'}\n")
        done = in_process(["--config", str(config), "init"], None, {})
        if done.returncode:
            raise RuntimeError(f"appliance init: {done.stderr}")
        _INITIALISED = folder / "data"
    shutil.copytree(_INITIALISED, data_dir, symlinks=True)
