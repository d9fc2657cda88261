"""Root reads secrets in folders the appliance user owns (`config render`: the secret box key,
the AMI secret; `restore`: the key passphrase, the backup passphrase): a link to one of root's
files, a hard link to one, a FIFO or a huge file left there is refused in one line, and
nothing blocks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from appliance import private_file
from appliance.bootstrap import secret_box
from appliance.config import ConfigError, load, resolve_secret
from appliance.recordings import keys
from tests.inprocess import in_process
from tests.made_once import initialised

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="about what root reads")
APPLIANCE_UID = 12345  # the data dir's owner, as the appliance user is on a server
HANG = 60  # seconds: a bound that catches a read blocked on a FIFO


def read_in_child(path: Path, closed: int = 0o022) -> subprocess.CompletedProcess[str]:
    """private_file.read in a process of its own, so that a blocked read fails the test
    instead of hanging it."""
    code = (
        "import sys; from pathlib import Path; from appliance import private_file\n"
        "try: print(len(private_file.read(Path(sys.argv[1]), closed=int(sys.argv[2]))))\n"
        "except private_file.UnsafeFile as exc: print('refused:', exc)"
    )
    return subprocess.run([sys.executable, "-c", code, str(path), str(closed)],
                          capture_output=True, text=True, timeout=HANG)  # fmt: skip


@pytest.fixture
def root_secret(tmp_path: Path) -> Path:
    """A file of root's that the appliance user must never get root to read for it."""
    folder = tmp_path / "root-only"
    folder.mkdir(mode=0o700)
    secret = folder / "shadow"
    secret.write_text("root:$6$salt$hash:19000:0:99999:7:::\n")
    secret.chmod(0o600)
    return secret


@pytest.fixture
def owned(tmp_path: Path) -> Path:
    """A secrets folder of the appliance user's."""
    folder = tmp_path / "secrets"
    folder.mkdir(mode=0o700)
    if os.geteuid() == 0:
        os.chown(folder, APPLIANCE_UID, APPLIANCE_UID)
    return folder


def test_a_secret_of_the_folders_owner_is_read(owned):
    secret = owned / "ami.secret"
    secret.write_bytes(b"s3cret\n")
    secret.chmod(0o600)
    if os.geteuid() == 0:
        os.chown(secret, APPLIANCE_UID, APPLIANCE_UID)
    assert private_file.read(secret, closed=0o077) == b"s3cret\n"


@pytest.mark.parametrize("target", ["/etc/shadow", "root_secret"])
def test_a_link_is_never_followed(owned, root_secret, target):
    link = owned / "box.key"
    link.symlink_to(root_secret if target == "root_secret" else target)
    with pytest.raises(private_file.UnsafeFile, match=r"box\.key is a link"):
        private_file.read(link)


def test_a_folder_swapped_for_a_link_is_never_followed(tmp_path, root_secret):
    data = tmp_path / "data"
    data.mkdir()
    (data / "secrets").symlink_to(root_secret.parent)  # what the owner of data/ could do
    with pytest.raises(private_file.UnsafeFile, match="secrets is a link"):
        private_file.read(data / "secrets" / "shadow")


@as_root
def test_a_hard_link_to_a_file_of_roots_is_not_read_as_root(owned, root_secret):
    os.link(root_secret, owned / "box.key")  # the kernel lets root link, or a lax sysctl
    with pytest.raises(private_file.UnsafeFile, match="owned by uid 0, not by the owner of its"):
        private_file.read(owned / "box.key")


def test_a_fifo_is_refused_without_blocking(owned):
    os.mkfifo(owned / "box.key")
    read = read_in_child(owned / "box.key")
    assert read.returncode == 0, read.stderr
    assert read.stdout == f"refused: {owned / 'box.key'} is not a regular file\n"


def test_a_huge_file_is_refused_unread(owned):
    huge = owned / "box.key"
    with huge.open("wb") as out:
        out.truncate(1 << 30)  # 1 GiB, sparse
    huge.chmod(0o600)
    if os.geteuid() == 0:
        os.chown(huge, APPLIANCE_UID, APPLIANCE_UID)
    with pytest.raises(private_file.UnsafeFile, match="larger than 64 KiB: not a secret"):
        private_file.read(huge)


@pytest.mark.parametrize(
    ("mode", "closed", "says"),
    [
        (0o620, 0o022, "may be written by others than its owner (chmod go-w"),
        (0o602, 0o022, "may be written by others than its owner (chmod go-w"),
        (0o640, 0o077, "is readable by others (chmod 600"),
    ],
)
def test_a_file_open_to_others_is_refused(tmp_path, mode, closed, says):
    secret = tmp_path / "secret"
    secret.write_text("x")
    secret.chmod(mode)
    with pytest.raises(private_file.UnsafeFile) as refused:
        private_file.read(secret, closed=closed)
    assert str(refused.value).startswith(f"{secret} {says}")


# the callers: every secret is read this one way ----------------------------------------


def hostile(kind: str, path: Path, root_secret: Path) -> None:
    path.unlink(missing_ok=True)
    if kind == "link":
        path.symlink_to("/etc/shadow")
    elif kind == "hard link":
        os.link(root_secret, path)
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        with path.open("wb") as out:
            out.truncate(100 << 20)
        path.chmod(0o600)
        os.chown(path, APPLIANCE_UID, APPLIANCE_UID)


SAYS = {
    "link": "is a link: name the file by its real path",
    "hard link": "is owned by uid 0, not by the owner of its folder",
    "fifo": "is not a regular file",
    "huge": "is larger than",
}


def config_file(folder: Path) -> Path:
    config = folder / "appliance.ini"
    config.write_text(f"[paths]\ndata_dir = {folder / 'data'}\n\n[log]\nlevel = warning\n")
    return config


@pytest.fixture
def box(tmp_path: Path) -> Path:
    """An initialised box whose data dir the appliance user owns, and its config (root's)."""
    initialised(tmp_path / "data")
    for path in [tmp_path / "data", *(tmp_path / "data").rglob("*")]:
        os.lchown(path, APPLIANCE_UID, APPLIANCE_UID)
    return config_file(tmp_path)


def appliance(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The command as the installed script runs it; in_process's time bound ends a read
    blocked on a FIFO."""
    return in_process(["--config", str(config), *args], None, {})


@as_root
@pytest.mark.parametrize("kind", sorted(SAYS))
@pytest.mark.parametrize("name", ["box.key", "ami.secret"])
def test_config_render_as_root_refuses_a_planted_secret_in_one_line(box, root_secret, name,
                                                                    kind):  # fmt: skip
    secrets = box.parent / "data" / "secrets"
    hostile(kind, secrets / name, root_secret)
    done = appliance(box, "config", "render")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and SAYS[kind] in done.stderr, done.stderr
    assert str(secrets / name) in done.stderr
    assert "root:$6$" not in done.stderr and not (box.parent / "data" / "asterisk").exists()


@as_root
def test_the_secrets_of_the_appliance_user_are_read_by_root(box):
    config = load(box)
    assert secret_box(config).open(secret_box(config).seal("x")) == "x"
    assert resolve_secret("ami.secret", config.ami.secret)
    keys.load(Path(config.recordings.key_file))


@as_root
@pytest.mark.parametrize("kind", ["link", "hard link", "huge"])  # a FIFO: in a child above
def test_the_key_file_and_a_key_passphrase_are_read_the_same_way(box, root_secret, kind):
    config = load(box)
    key_file = Path(config.recordings.key_file)
    hostile(kind, key_file, root_secret)
    with pytest.raises(keys.KeyProblem, match=SAYS[kind]):
        keys.load(key_file)
    passphrase = key_file.with_name("key.pass")
    hostile(kind, passphrase, root_secret)
    with pytest.raises(ConfigError, match=f"recordings.key_passphrase: secret file .*{SAYS[kind]}"):
        resolve_secret("recordings.key_passphrase", f"file:{passphrase}")


@as_root
def test_config_render_as_root_never_makes_a_secret_box_key_of_roots(box):
    key = box.parent / "data" / "secrets" / "box.key"
    key.unlink()
    done = appliance(box, "config", "render")
    assert done.returncode == 2
    assert done.stderr == f"appliance: secret box key {key} is missing (run 'appliance init')\n"
    assert not key.exists()
