"""Fixtures of the integration tests that need more than the stack: a real browser."""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess

import pytest

from tests.harness import Stack
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
def world(tmp_path):
    """A fresh copy of the web world: accounts, users, numbers, recorded calls."""
    return build_world(tmp_path)


@pytest.fixture
async def client(world):
    """The admin application over that world."""
    client = await client_for(world)
    yield client
    await client.close()
