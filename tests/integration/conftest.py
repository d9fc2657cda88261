"""Fixtures of the integration tests that need more than the stack: a real browser, an empty
database of each kind, the web world."""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from appliance.db.engine import make_engine
from appliance.db.models import Base
from tests.harness import Stack, costs
from tests.web_world import build_world, client_for

CHROMIUM = shutil.which("chromium")


def spki_hash(cert_path) -> str:
    """The certificate's public key hash, so Chromium trusts exactly this certificate and no
    other (rather than ignoring certificate errors)."""
    der = subprocess.run(
        ["openssl", "x509", "-in", str(cert_path), "-noout", "-pubkey"],
        capture_output=True,
        check=True,
    ).stdout
    spki = subprocess.run(
        ["openssl", "pkey", "-pubin", "-outform", "der"],
        input=der,
        capture_output=True,
        check=True,
    ).stdout
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


@pytest.fixture
@costs("chromium")
def browser(stack: Stack):
    if CHROMIUM is None:
        pytest.fail("chromium is not installed (scripts/test installs it)")
    from playwright.sync_api import sync_playwright

    trusted = spki_hash(stack.data_dir / "tls" / "cert.pem")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--autoplay-policy=no-user-gesture-required",
                f"--ignore-certificate-errors-spki-list={trusted}",
            ],
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
@costs("web")
def world(tmp_path):
    """A fresh copy of the web world: accounts, users, numbers, recorded calls."""
    return build_world(tmp_path)


@pytest.fixture
@costs("web")
async def client(world):
    """The admin application over that world."""
    client = await client_for(world)
    yield client
    await client.close()


def _empty(url: str) -> None:
    if url.startswith("sqlite:///"):  # a new file: nothing of the last test is left
        database = Path(url.removeprefix("sqlite:///"))
        for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
            path.unlink(missing_ok=True)
        return
    engine = make_engine(url)
    Base.metadata.drop_all(engine)
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """An empty database, on SQLite and on a real PostgreSQL, emptied again afterwards."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/test.db"
    else:
        url = request.getfixturevalue("postgres_url")
    _empty(url)
    yield url
    _empty(url)
