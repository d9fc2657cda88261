"""Local secrets: generated at init, kept in 0600 files, never printed twice."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from Crypto.Cipher import AES
from Crypto.Protocol.KDF import bcrypt, bcrypt_check

from appliance import private_file
from appliance.recordings import keys

BCRYPT_COST = 12


def hash_password(password: str, cost: int | None = None) -> str:
    """bcrypt over a SHA-256 pre-hash, so passwords longer than 72 bytes still count in full;
    at BCRYPT_COST unless told."""
    return bcrypt(_prehash(password), cost or BCRYPT_COST).decode("ascii")


def check_password(password: str, hashed: str) -> bool:
    try:
        bcrypt_check(_prehash(password), hashed.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        return False
    return True


def _prehash(password: str) -> bytes:
    return base64.b64encode(hashlib.sha256(password.encode("utf-8")).digest())


def new_password() -> str:
    return secrets.token_urlsafe(15)


def new_token() -> str:
    return "apk_" + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """API tokens are long and random: a plain SHA-256 is enough to store them safely."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def write_secret_file(path: Path, value: str | bytes) -> bool:
    """Create a 0600 secret file unless it exists; return True when it was created."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    data = value.encode("utf-8") if isinstance(value, str) else value
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return True


class SecretBox:
    """Seals short secrets (SIP passwords, destinations' tokens, TOTP seeds) with AES-256-GCM
    under a local key. The key file sits beside the recording keys and is sealed under the
    same optional passphrase (recordings.key_passphrase; see `appliance keys seal`)."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("secret box key must be 32 bytes")
        self._key = key

    @classmethod
    def from_file(cls, path: Path, unlock: Callable[[], str | None] = lambda: None) -> SecretBox:
        """The box of `path`, created if missing; `unlock` gives the passphrase of a sealed
        key file (asked only when the file is sealed)."""
        write_secret_file(path, secrets.token_bytes(32))
        return cls(read_box_key(path, unlock))

    def seal(self, plaintext: str) -> str:
        nonce = secrets.token_bytes(12)
        cipher = AES.new(self._key, AES.MODE_GCM, nonce=nonce)
        sealed, tag = cipher.encrypt_and_digest(plaintext.encode("utf-8"))
        return base64.b64encode(nonce + tag + sealed).decode("ascii")

    def open(self, token: str) -> str:
        raw = base64.b64decode(token)
        cipher = AES.new(self._key, AES.MODE_GCM, nonce=raw[:12])
        return cipher.decrypt_and_verify(raw[28:], raw[12:28]).decode("utf-8")


def read_box_key(path: Path, unlock: Callable[[], str | None]) -> bytes:
    """A box key file: the 32 bytes themselves, or those sealed like the recording keys.
    Root reads it too (`config render`), in a folder the appliance user owns."""
    try:
        data = private_file.read(path, closed=0o077)
    except private_file.UnsafeFile as exc:
        raise keys.KeyProblem(f"secret box key {exc}") from None
    if len(data) == 32:
        return data
    try:
        sealed = json.loads(data)["sealed"]
        return base64.b64decode(keys.unseal_text(path, sealed, unlock()), validate=True)
    except (ValueError, KeyError, TypeError):
        raise keys.KeyProblem(f"secret box key {path} is damaged") from None


def sealed_box_file(path: Path, passphrase: str, old_passphrase: str | None) -> bytes:
    """The box key file's new content, sealed under `passphrase` (nothing is written: the
    caller replaces the file with keys.replace_private once the recording keys are sealed)."""
    key = read_box_key(path, lambda: old_passphrase)
    return keys.seal_text(base64.b64encode(key).decode(), passphrase).encode()
