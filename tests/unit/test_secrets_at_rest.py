"""Secrets at rest: SIP passwords, webhook secrets and ad platform tokens are sealed in the
database under the secret box, whose key file sits beside the recording keys and is sealed
under the same passphrase by `appliance keys seal`."""

from __future__ import annotations

import io
import json
import re
import sys
from pathlib import Path

import pytest

from appliance import admin, bootstrap, cli
from appliance.config import load
from appliance.db.engine import make_engine, session_factory
from appliance.recordings.keys import KeyProblem
from appliance.secrets import read_box_key
from tests.made_once import initialised

KEY_PASSPHRASE = "the key files' own passphrase"
TRUNK_PASSWORD = "Trunk-Pa55word-at-rest"
META_TOKEN = "meta-token-at-rest-0123456789"


@pytest.fixture
def run(capsys, monkeypatch):
    def run(*args: object, stdin: str = "") -> tuple[int, str, str]:
        capsys.readouterr()
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = cli.main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    for name in ("APPLIANCE_CONFIG",):
        monkeypatch.delenv(name, raising=False)
    return run


@pytest.fixture
def box(tmp_path, run) -> Path:
    """An initialised box holding a registration trunk, a phone and a Meta destination."""
    data = tmp_path / "data"
    config = tmp_path / "appliance.ini"
    config.write_text(
        f"[paths]\ndata_dir = {data}\n\n[recordings]\n"
        f"key_passphrase = file:{data}/secrets/key.pass\n\n[log]\nlevel = warning\n"
    )
    initialised(data)
    assert run("--config", config, "trunk", "add", "carrier", "--kind", "registration",
               "--host", "sip.example.com", "--username", "me", "--password-stdin",
               stdin=TRUNK_PASSWORD)[0] == 0  # fmt: skip
    code, out, _ = run("--config", config, "endpoint", "add", "desk-1")
    assert code == 0
    phone_password = re.search(r"password \(shown once\): (\S+)", out)
    assert phone_password, out
    (tmp_path / "phone.pass").write_text(phone_password.group(1))
    assert run("--config", config, "destination", "add", "ads", "meta", "--setting",
               "pixel_id=123", "--secrets-stdin", stdin=json.dumps({"token": META_TOKEN})
               )[0] == 0  # fmt: skip
    return config


def trunk_password(config_path: Path) -> str:
    config = load(config_path)
    engine = make_engine(config.database.url)
    try:
        with session_factory(engine)() as session:
            (trunk,) = admin.trunk_views(session, bootstrap.secret_box(config))
    finally:
        engine.dispose()
    return trunk.password


def test_no_secret_is_in_the_database_in_plaintext(box, tmp_path):
    config = load(box)
    phone_password = (tmp_path / "phone.pass").read_text()
    database = b"".join(p.read_bytes() for p in config.data_dir.glob("appliance.db*"))
    assert b"SQLite format 3" in database
    for secret in (TRUNK_PASSWORD, phone_password, META_TOKEN):
        assert secret.encode() not in database
    assert trunk_password(box) == TRUNK_PASSWORD


def test_keys_seal_seals_the_secret_box_too(box, run):
    config = load(box)
    box_file = config.secrets_dir / "box.key"
    key = box_file.read_bytes()
    assert len(key) == 32
    (config.secrets_dir / "key.pass").write_text(KEY_PASSPHRASE)
    (config.secrets_dir / "key.pass").chmod(0o600)
    code, out, err = run("--config", box, "keys", "seal", "--password-stdin", stdin=KEY_PASSPHRASE)
    assert code == 0, err
    assert "secret box" in out
    sealed = box_file.read_bytes()
    assert key not in sealed and len(sealed) > 32
    assert box_file.stat().st_mode & 0o777 == 0o600
    assert read_box_key(box_file, lambda: KEY_PASSPHRASE) == key
    # the sealed trunk password still opens, through the passphrase the config names
    assert trunk_password(box) == TRUNK_PASSWORD
    # both are sealed at the full work factor (other tests seal cheaply; each file keeps its own)
    for sealed_file in (box_file, Path(config.recordings.key_file)):
        work = json.loads(sealed_file.read_text())["sealed"]
        assert (work["kdf"], work["n"], work["r"], work["p"]) == ("scrypt", 2**15, 8, 1)


def test_a_sealed_box_without_its_passphrase_is_one_clear_line(box, run):
    config = load(box)
    (config.secrets_dir / "key.pass").write_text(KEY_PASSPHRASE)
    (config.secrets_dir / "key.pass").chmod(0o600)
    assert run("--config", box, "keys", "seal", "--password-stdin", stdin=KEY_PASSPHRASE)[0] == 0
    box_file = config.secrets_dir / "box.key"
    with pytest.raises(KeyProblem, match="wrong passphrase"):
        read_box_key(box_file, lambda: "not the passphrase")
    with pytest.raises(KeyProblem, match="is sealed"):
        read_box_key(box_file, lambda: None)
    box_file.write_bytes(b'{"sealed": "nonsense"}')
    with pytest.raises(KeyProblem, match="damaged"):
        read_box_key(box_file, lambda: KEY_PASSPHRASE)


def test_sealing_never_writes_through_a_link_or_a_leftover_file(box, run, tmp_path):
    config = load(box)
    (config.secrets_dir / "key.pass").write_text(KEY_PASSPHRASE)
    (config.secrets_dir / "key.pass").chmod(0o600)
    victim = tmp_path / "victim"
    victim.write_text("untouched")
    (config.secrets_dir / "box.key.new").symlink_to(victim)
    leftover = config.secrets_dir / "recordings.keys.new"
    leftover.write_text("old")
    leftover.chmod(0o644)
    code, _, err = run("--config", box, "keys", "seal", "--password-stdin", stdin=KEY_PASSPHRASE)
    assert code == 0, err
    assert victim.read_text() == "untouched"
    for name in ("box.key", "recordings.keys"):
        assert (config.secrets_dir / name).stat().st_mode & 0o777 == 0o600
        assert not (config.secrets_dir / f"{name}.new").exists()
    assert trunk_password(box) == TRUNK_PASSWORD
