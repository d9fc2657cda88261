"""A backup works in the data dir, which the appliance user owns: root would write through
folders that user could swap for links, so root is sent to that user instead."""

import os

import pytest

from appliance.backup import BackupError
from appliance.backup.create import backup
from appliance.config import load


@pytest.mark.skipif(os.geteuid() != 0, reason="about what root may do")
def test_root_does_not_back_up_a_data_dir_another_user_owns(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    os.chown(data, 12345, 12345)
    config = load(environ={"APPLIANCE_PATHS_DATA_DIR": str(data)})
    with pytest.raises(BackupError, match="not as root"):
        backup(config, tmp_path / "box.tar", "a long passphrase here", force=False, actor="t")
    assert not (tmp_path / "box.tar").exists()
