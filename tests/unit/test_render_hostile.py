"""Root writes Asterisk's config: never through a directory or link another user controls,
and never with an AMI secret that would add lines to manager.conf."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from appliance.asterisk import render
from appliance.config import ConfigError, load, resolve_secret

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="the checks guard what root does")
ASTERISK_UID = 23456


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A minimal root holding Asterisk's user and modules, as render reads them."""
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text(
        f"asterisk:x:{ASTERISK_UID}:{ASTERISK_UID}::/:/bin/false\n"
    )
    (root / "etc" / "group").write_text(f"asterisk:x:{ASTERISK_UID}:\n")
    (root / "usr" / "lib" / "asterisk" / "modules").mkdir(parents=True)
    return root


def config_for(root: Path, tmp_path: Path, directory: str = "/srv/asterisk", secret: str = ""):
    environ = {
        "APPLIANCE_PATHS_DATA_DIR": str(tmp_path / "data"),
        "APPLIANCE_ASTERISK_ROOT": str(root),
        "APPLIANCE_ASTERISK_DIR": directory,
        "APPLIANCE_RECORDINGS_SPOOL_DIR": f"{directory}/spool/recordings",
        "APPLIANCE_AMI_SECRET": secret or "a-good-secret-0123456789",
    }
    (tmp_path / "data").mkdir(exist_ok=True)
    return load(environ=environ)


@as_root
def test_render_refuses_a_directory_another_user_could_swap(root, tmp_path):
    (root / "srv").mkdir()
    os.chown(root / "srv", 12345, 12345)  # e.g. the data dir, which the appliance user owns
    with pytest.raises(ConfigError, match=r"srv is not root's alone"):
        render.write(config_for(root, tmp_path), [], "")
    assert not (root / "srv" / "asterisk").exists()


@as_root
def test_render_never_follows_a_link_planted_in_asterisks_own_directory(root, tmp_path):
    config = config_for(root, tmp_path)
    render.write(config, [], "")
    victim = tmp_path / "victim"
    victim.mkdir(mode=0o755)
    cdr = root / "srv" / "asterisk" / "log" / "cdr-custom"
    cdr.rmdir()
    cdr.symlink_to(victim)  # what the asterisk user, owner of log/, could do
    with pytest.raises(ConfigError, match="is a link"):
        render.write(config, [], "")
    st = victim.stat()
    assert (st.st_uid, st.st_mode & 0o7777) == (0, 0o755)


@pytest.mark.parametrize(
    "secret",
    ["a-good-secret\nwrite = system,command", "secret;comment-1234", "short", "x" * 129],
)
def test_an_ami_secret_that_could_change_manager_conf_is_refused(root, tmp_path, secret):
    user = render.SystemUser(ASTERISK_UID, ASTERISK_UID, "asterisk")
    with pytest.raises(ConfigError, match=r"ami\.secret"):
        render.context(config_for(root, tmp_path, secret=secret), user)


def test_a_secret_file_is_never_read_through_a_link(tmp_path):
    private = tmp_path / "shadow"
    private.write_text("root:$6$hash\n")
    link = tmp_path / "ami.secret"
    link.symlink_to(private)
    with pytest.raises(ConfigError, match="is a link"):
        resolve_secret("ami.secret", f"file:{link}")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="not a regular file"):
        resolve_secret("ami.secret", f"file:{fifo}")
