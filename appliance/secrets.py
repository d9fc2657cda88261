"""Local secrets: generated at init, kept in 0600 files, never printed twice."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from pathlib import Path

from Crypto.Cipher import AES
from Crypto.Protocol.KDF import bcrypt, bcrypt_check

BCRYPT_COST = 12


def hash_password(password: str, cost: int = BCRYPT_COST) -> str:
    """bcrypt over a SHA-256 pre-hash, so passwords longer than 72 bytes still count in full."""
    return bcrypt(_prehash(password), cost).decode("ascii")


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
    """Seals short secrets (trunk passwords) with AES-256-GCM under a local key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("secret box key must be 32 bytes")
        self._key = key

    @classmethod
    def from_file(cls, path: Path) -> SecretBox:
        write_secret_file(path, secrets.token_bytes(32))
        return cls(path.read_bytes())

    def seal(self, plaintext: str) -> str:
        nonce = secrets.token_bytes(12)
        cipher = AES.new(self._key, AES.MODE_GCM, nonce=nonce)
        sealed, tag = cipher.encrypt_and_digest(plaintext.encode("utf-8"))
        return base64.b64encode(nonce + tag + sealed).decode("ascii")

    def open(self, token: str) -> str:
        raw = base64.b64decode(token)
        cipher = AES.new(self._key, AES.MODE_GCM, nonce=raw[:12])
        return cipher.decrypt_and_verify(raw[28:], raw[12:28]).decode("utf-8")
