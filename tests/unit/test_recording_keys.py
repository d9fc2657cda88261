import os
import stat

import pytest

from appliance.recordings import keys
from appliance.recordings.keys import KeyProblem


def test_key_file_is_private_and_never_overwritten(tmp_path):
    path = tmp_path / "secrets" / "recordings.keys"
    ring = keys.create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(KeyProblem, match="already exists"):
        keys.create(path)
    assert keys.load(path).keys == ring.keys


def test_wrap_unwrap_and_binding_to_the_recording(tmp_path):
    ring = keys.create(tmp_path / "k")
    data_key, file_id = keys.new_data_key(), os.urandom(16)
    wrapped = ring.wrap(data_key, file_id)
    assert data_key not in wrapped.blob
    assert ring.unwrap(wrapped, file_id) == data_key
    with pytest.raises(KeyProblem, match="does not open"):
        ring.unwrap(wrapped, os.urandom(16))  # moved to another recording


def test_rotation_rewraps_without_losing_old_recordings(tmp_path):
    path = tmp_path / "k"
    ring = keys.create(path)
    old_id = ring.current
    data_key, file_id = keys.new_data_key(), os.urandom(16)
    wrapped = ring.wrap(data_key, file_id)
    new_id = ring.add_key()
    keys.save(path, ring)
    assert keys.load(path).unwrap(wrapped, file_id) == data_key  # old key still there
    rewrapped = ring.rewrap(wrapped, file_id)
    assert rewrapped.key_id == new_id
    ring.retire(old_id)
    keys.save(path, ring)
    ring = keys.load(path)
    assert ring.unwrap(rewrapped, file_id) == data_key
    with pytest.raises(KeyProblem, match=f"master key {old_id} is not in the key file"):
        ring.unwrap(wrapped, file_id)
    with pytest.raises(KeyProblem, match="current master key cannot be retired"):
        ring.retire(new_id)


@pytest.mark.parametrize(
    ("content", "mode", "message"),
    [
        (None, 0o600, "is missing"),
        ("{}", 0o644, "readable by others"),
        ("not json", 0o600, "is damaged"),
        ('{"version": 9}', 0o600, "unsupported version"),
        ('{"version": 1, "current": "a", "keys": {"a": "c2hvcnQ="}}', 0o600, "is damaged"),
    ],
)
def test_bad_key_files_are_clear_errors(tmp_path, content, mode, message):
    path = tmp_path / "k"
    if content is not None:
        path.write_text(content)
        os.chmod(path, mode)
    with pytest.raises(KeyProblem, match=message):
        keys.load(path)


def test_key_file_sealed_under_a_passphrase(tmp_path):
    path = tmp_path / "k"
    ring = keys.create(path)
    keys.save(path, ring, passphrase="correct horse battery")
    assert ring.current not in path.read_text()  # the key ids and keys are sealed too
    with pytest.raises(KeyProblem, match=r"is sealed: set recordings\.key_passphrase"):
        keys.load(path)
    with pytest.raises(KeyProblem, match="wrong passphrase"):
        keys.load(path, "wrong horse")
    assert keys.load(path, "correct horse battery").keys == ring.keys
