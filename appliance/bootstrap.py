"""First start: data directory, secrets, certificate, schema and the first admin. Idempotent."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from appliance import admin, tls
from appliance.config import Config, ConfigError, key_passphrase
from appliance.db import engine as db
from appliance.db.migrate import upgrade
from appliance.db.models import User
from appliance.recordings import keys
from appliance.secrets import SecretBox, new_password, read_box_key, write_secret_file


@dataclass(frozen=True)
class InitResult:
    created: list[str]
    admin_password: str | None


def prepare_data_dir(config: Config) -> None:
    path = config.data_dir
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except PermissionError:
        raise ConfigError(f"paths.data_dir: {path} is not writable by this user") from None
    except OSError as exc:
        raise ConfigError(f"paths.data_dir: {path} cannot be used: {exc.strerror}") from None


def secret_box(config: Config) -> SecretBox:
    return SecretBox.from_file(config.secrets_dir / "box.key", lambda: key_passphrase(config))


def existing_secret_box(config: Config) -> SecretBox:
    """The secret box, never created here: root renders Asterisk's config with it, and a key
    file root made in the appliance user's folder would be root's (unreadable by the
    services)."""
    path = config.secrets_dir / "box.key"
    try:
        return SecretBox(read_box_key(path, lambda: key_passphrase(config)))
    except FileNotFoundError:
        raise keys.KeyProblem(f"secret box key {path} is missing (run 'appliance init')") from None


def initialise(config: Config, admin_username: str = "admin") -> InitResult:
    prepare_data_dir(config)
    created: list[str] = []
    secret_file = config.ami.secret[5:] if config.ami.secret.startswith("file:") else None
    if secret_file and write_secret_file(Path(secret_file), secrets.token_urlsafe(24)):
        created.append(f"AMI secret {secret_file}")
    if not (config.secrets_dir / "box.key").exists():
        secret_box(config)
        created.append("secret box key")
    for folder in (Path(config.recordings.store_dir), Path(config.transcription.model_dir)):
        # there before any service starts: the workers' unit makes them read-only, which
        # systemd can only do to a folder that exists
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    key_file = Path(config.recordings.key_file)
    if not key_file.exists():
        keys.create(key_file)
        created.append(f"recording master key {key_file}")
    if config.http.tls and tls.ensure_certificate(config):
        created.append("self-signed TLS certificate")
    engine = db.make_engine(config.database.url)
    try:
        upgrade(engine)
        password = None
        with db.session_factory(engine).begin() as session:
            admin.default_account(session)
            if session.scalar(select(User.id).limit(1)) is None:
                password = new_password()
                admin.add_user(session, admin_username, password, "owner")
                created.append(f"admin user {admin_username!r}")
    finally:
        engine.dispose()
    return InitResult(created=created, admin_password=password)
