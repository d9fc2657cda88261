"""Master keys and the data keys they wrap (docs/recording-format.md).

Each recording has its own data key, kept only wrapped: sealed with AES-256-GCM under a master
key, with the recording's file id and the master key's id as associated data, so a wrapped key
cannot be moved to another recording. The master keys live in one 0600 key file; rotating adds
a new current key and re-wraps data keys without touching the audio. Destroying a recording's
wrapped key makes the recording unreadable for good (crypto-erasure).
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path

from Crypto.Cipher import AES
from Crypto.Protocol.KDF import scrypt

from appliance import private_file

KEYFILE_VERSION = 1
MAX_KEY_FILE = 1 << 20  # bytes: thousands of master keys


class KeyProblem(Exception):
    """A key file or wrapped key that cannot be used; the message says what to fix."""


@dataclass(frozen=True)
class WrappedKey:
    key_id: str
    blob: bytes  # nonce (12) + sealed data key (32) + tag (16)


class KeyRing:
    def __init__(self, keys: dict[str, bytes], current: str) -> None:
        if current not in keys:
            raise KeyProblem(f"current master key {current!r} is not in the key file")
        self.keys = keys
        self.current = current

    def wrap(self, data_key: bytes, file_id: bytes) -> WrappedKey:
        nonce = os.urandom(12)
        cipher = AES.new(self.keys[self.current], AES.MODE_GCM, nonce=nonce)
        cipher.update(file_id + self.current.encode())
        sealed, tag = cipher.encrypt_and_digest(data_key)
        return WrappedKey(self.current, nonce + sealed + tag)

    def unwrap(self, wrapped: WrappedKey, file_id: bytes) -> bytes:
        master = self.keys.get(wrapped.key_id)
        if master is None:
            raise KeyProblem(f"master key {wrapped.key_id} is not in the key file")
        blob = wrapped.blob
        cipher = AES.new(master, AES.MODE_GCM, nonce=blob[:12])
        cipher.update(file_id + wrapped.key_id.encode())
        try:
            return cipher.decrypt_and_verify(blob[12:-16], blob[-16:])
        except ValueError:
            raise KeyProblem(
                "wrapped data key does not open: wrong master key or damaged"
            ) from None

    def rewrap(self, wrapped: WrappedKey, file_id: bytes) -> WrappedKey:
        if wrapped.key_id == self.current:
            return wrapped
        return self.wrap(self.unwrap(wrapped, file_id), file_id)

    def add_key(self) -> str:
        key_id = os.urandom(8).hex()
        self.keys[key_id] = os.urandom(32)
        self.current = key_id
        return key_id

    def retire(self, key_id: str) -> None:
        if key_id == self.current:
            raise KeyProblem("the current master key cannot be retired")
        self.keys.pop(key_id, None)


def new_data_key() -> bytes:
    return os.urandom(32)


def create(path: Path) -> KeyRing:
    """Create the key file with one master key; never overwrite an existing one."""
    key_id = os.urandom(8).hex()
    ring = KeyRing({key_id: os.urandom(32)}, key_id)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyProblem(f"key file {path} already exists") from None
    with os.fdopen(fd, "w") as fh:
        fh.write(_dump(ring))
    return ring


def save(path: Path, ring: KeyRing, passphrase: str | None = None) -> None:
    """Replace the key file atomically (0600); sealed under the passphrase if one is given."""
    text = _dump(ring)
    replace_private(path, (seal_text(text, passphrase) if passphrase else text).encode())


def replace_private(path: Path, data: bytes) -> None:
    """Replace `path` atomically with a new 0600 file: its temporary file is made afresh
    (a leftover one, or a link put in its place, is removed, never followed)."""
    tmp = path.with_name(path.name + ".new")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load(path: Path, passphrase: str | None = None) -> KeyRing:
    try:
        text = private_file.read(path, closed=0o077, limit=MAX_KEY_FILE)
    except FileNotFoundError:
        raise KeyProblem(f"key file {path} is missing (run 'appliance init')") from None
    except PermissionError:
        raise KeyProblem(f"key file {path} is not readable by this user") from None
    except private_file.UnsafeFile as exc:
        raise KeyProblem(f"key file {exc}") from None
    try:
        data = json.loads(text)
        if "sealed" in data:
            data = json.loads(unseal_text(path, data["sealed"], passphrase))
        if data.get("version") != KEYFILE_VERSION:
            raise KeyProblem(f"key file {path}: unsupported version {data.get('version')!r}")
        keys = {k: base64.b64decode(v, validate=True) for k, v in data["keys"].items()}
        if any(len(v) != 32 for v in keys.values()):
            raise ValueError("key length")
        return KeyRing(keys, data["current"])
    except (ValueError, KeyError, TypeError, AttributeError):
        raise KeyProblem(f"key file {path} is damaged") from None


def _dump(ring: KeyRing) -> str:
    keys = {k: base64.b64encode(v).decode() for k, v in ring.keys.items()}
    return json.dumps({"version": KEYFILE_VERSION, "current": ring.current, "keys": keys})


SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1


def seal_text(text: str, passphrase: str) -> str:
    """A key file sealed under an admin passphrase: scrypt, then AES-256-GCM."""
    salt, nonce = os.urandom(16), os.urandom(12)
    key = scrypt(passphrase.encode(), salt, 32, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    sealed, tag = AES.new(key, AES.MODE_GCM, nonce=nonce).encrypt_and_digest(text.encode())
    box = {"kdf": "scrypt", "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P}
    for name, value in (("salt", salt), ("nonce", nonce), ("ciphertext", sealed + tag)):
        box[name] = base64.b64encode(value).decode()
    return json.dumps({"version": KEYFILE_VERSION, "sealed": box})


def unseal_text(path: Path, box: dict[str, object], passphrase: str | None) -> str:
    if not passphrase:
        raise KeyProblem(f"key file {path} is sealed: set recordings.key_passphrase to unlock it")
    salt, nonce, blob = (base64.b64decode(str(box[k])) for k in ("salt", "nonce", "ciphertext"))
    n, r, p = (int(str(box[k])) for k in ("n", "r", "p"))
    key = scrypt(passphrase.encode(), salt, 32, n, r, p)
    try:
        plain = AES.new(key, AES.MODE_GCM, nonce=nonce).decrypt_and_verify(blob[:-16], blob[-16:])
    except ValueError:
        raise KeyProblem(f"key file {path}: wrong passphrase") from None
    return str(plain.decode())
