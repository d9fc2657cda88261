import os
import stat

import pytest

from appliance import admin
from appliance.db.engine import session_factory
from appliance.secrets import SecretBox, check_password, hash_password, write_secret_file
from tests.made_once import migrated_sqlite


def test_passwords_hash_and_check_including_long_ones():
    hashed = hash_password("correct horse battery staple" * 4, cost=4)
    assert hashed.startswith("$2")
    assert check_password("correct horse battery staple" * 4, hashed)
    assert not check_password("correct horse battery staple" * 3, hashed)
    assert not check_password("x", "not a hash")


def test_stored_passwords_cost_bcrypt_two_to_the_twelve_rounds(tmp_path):
    """The work factor of every password the appliance stores (tests may store cheaper ones)."""
    engine = migrated_sqlite(tmp_path / "t.db")
    with session_factory(engine).begin() as session:
        user = admin.add_user(session, "pat", "correct horse battery", "owner")
        assert user.password_hash.startswith(("$2a$12$", "$2b$12$"))
        assert check_password("correct horse battery", user.password_hash)
    engine.dispose()


def test_secret_files_are_private_and_never_overwritten(tmp_path):
    path = tmp_path / "secrets" / "k"
    assert write_secret_file(path, "one")
    assert not write_secret_file(path, "two")
    assert path.read_text() == "one"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700


def test_secret_box_round_trip_and_tamper_detection(tmp_path):
    box = SecretBox.from_file(tmp_path / "box.key")
    sealed = box.seal("trunk-password")
    assert "trunk-password" not in sealed
    assert box.open(sealed) == "trunk-password"
    other = SecretBox(os.urandom(32))
    with pytest.raises(ValueError):
        other.open(sealed)
