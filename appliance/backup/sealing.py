"""What an archive holds secret, sealed under the backup passphrase: scrypt, then AES-256-GCM.
Pure: bytes and mappings in and out.

An archive is read by whoever holds it, so the work factor is higher than the key file's (the
key file never leaves the box): 128 MiB of memory and about half a second a guess. The
parameters travel with the sealed box, bounded on the way in, so a crafted archive cannot make
a restore spend gigabytes."""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping
from typing import Any

from Crypto.Cipher import AES
from Crypto.Protocol.KDF import scrypt

from appliance.backup import BackupError

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**17, 8, 1
LIMITS = {"n": 2**20, "r": 16, "p": 4}
MAX_MEMORY = 1 << 30  # scrypt needs 128 * N * r bytes
CONTEXT = b"appliance backup secrets 1"  # associated data: a box is only ever this
MIN_PASSPHRASE = 12


def seal(
    payload: Mapping[str, Any], passphrase: str, work: tuple[int, int, int] | None = None
) -> bytes:
    """The payload (JSON-able) sealed under the passphrase, as a JSON document; `work` is
    scrypt's (N, r, p), by default SCRYPT_N, SCRYPT_R, SCRYPT_P."""
    n, r, p = work or (SCRYPT_N, SCRYPT_R, SCRYPT_P)
    salt, nonce = os.urandom(16), os.urandom(12)
    cipher = AES.new(_key(passphrase, salt, n, r, p), AES.MODE_GCM, nonce=nonce)
    cipher.update(CONTEXT)
    sealed, tag = cipher.encrypt_and_digest(json.dumps(payload, sort_keys=True).encode())
    box = {"format": 1, "kdf": "scrypt", "n": n, "r": r, "p": p, "cipher": "aes-256-gcm"}
    box |= {"salt": _b64(salt), "nonce": _b64(nonce), "ciphertext": _b64(sealed + tag)}
    return json.dumps(box, indent=1).encode() + b"\n"


def unseal(box: bytes, passphrase: str) -> dict[str, Any]:
    """The payload; BackupError for a wrong passphrase or a damaged box."""
    try:
        fields = json.loads(box)
        params = {name: int(fields[name]) for name in ("n", "r", "p")}
        salt, nonce, blob = (_unb64(fields[k]) for k in ("salt", "nonce", "ciphertext"))
        known = (fields["format"], fields["kdf"], fields["cipher"]) == (1, "scrypt", "aes-256-gcm")
    except (ValueError, KeyError, TypeError, binascii.Error, OverflowError, RecursionError):
        # OverflowError: a work factor of Infinity; RecursionError: JSON nested too deep
        raise BackupError("the sealed secrets in the archive are damaged") from None
    if not known or len(nonce) != 12 or len(blob) < 16:
        raise BackupError("the sealed secrets are in a form this version does not know")
    too_much = 128 * params["n"] * params["r"] > MAX_MEMORY
    if too_much or any(not 1 <= params[k] <= LIMITS[k] for k in LIMITS):
        raise BackupError("the sealed secrets ask for more key-derivation work than allowed")
    cipher = AES.new(_key(passphrase, salt, **params), AES.MODE_GCM, nonce=nonce)
    cipher.update(CONTEXT)
    try:
        plain = cipher.decrypt_and_verify(blob[:-16], blob[-16:])
    except ValueError:
        raise BackupError(
            "wrong passphrase (or the archive's sealed secrets were altered)"
        ) from None
    payload = json.loads(plain)
    if not isinstance(payload, dict):
        raise BackupError("the sealed secrets in the archive are damaged")
    return payload


def _key(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    try:
        return bytes(scrypt(passphrase.encode("utf-8"), salt, 32, n, r, p))
    except ValueError:  # n not a power of two
        raise BackupError("the sealed secrets' key-derivation parameters are invalid") from None


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: object) -> bytes:
    if not isinstance(text, str):
        raise TypeError("not base64 text")
    return base64.b64decode(text, validate=True)
