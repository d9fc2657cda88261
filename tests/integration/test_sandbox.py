"""The sandbox root gives Asterisk the host's own asterisk account, never someone else's ids.

The sid root's package picks the first free system uid of the root (101), which on a Debian 12
host is typically postgres: Asterisk's files and the recording spool then showed up as owned by
postgres on the host.
"""

from __future__ import annotations

import grp
import os
import pwd
import subprocess
from pathlib import Path

import pytest

from tests.harness import REPO, asterisk_root, costs


@pytest.fixture
@costs("asterisk")
def sandbox() -> Path:
    root = asterisk_root()
    if root == Path("/"):
        pytest.skip("the host's own Asterisk is used: there is no sandbox root")
    return root


def _entry(path: Path, name: str) -> list[str]:
    for line in path.read_text().splitlines():
        fields = line.split(":")
        if fields[0] == name:
            return fields
    raise AssertionError(f"no {name!r} in {path}")


def _host_asterisk() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam("asterisk")
    except KeyError:
        hint = "scripts/asterisk-sandbox build creates it"
        raise AssertionError(f"no asterisk account on the host ({hint})") from None


def test_root_asterisk_has_the_host_asterisk_uid_and_gid(sandbox: Path):
    fields = _entry(sandbox / "etc" / "passwd", "asterisk")
    host = _host_asterisk()
    assert (int(fields[2]), int(fields[3])) == (host.pw_uid, host.pw_gid)
    assert int(_entry(sandbox / "etc" / "group", "asterisk")[2]) == host.pw_gid
    assert grp.getgrgid(host.pw_gid).gr_name == "asterisk"


def test_no_other_host_account_shares_the_asterisk_uid(sandbox: Path):
    uid = int(_entry(sandbox / "etc" / "passwd", "asterisk")[2])
    sharing = [e.pw_name for e in pwd.getpwall() if e.pw_uid == uid and e.pw_name != "asterisk"]
    assert sharing == []


def test_asterisk_files_in_the_root_belong_to_the_remapped_account(sandbox: Path):
    host = _host_asterisk()
    for path in ("var/lib/asterisk", "var/spool/asterisk", "etc/asterisk"):
        st = (sandbox / path).stat()
        assert (st.st_uid, st.st_gid) == (host.pw_uid, host.pw_gid), path


def test_root_has_time_zones_and_setpriv(sandbox: Path):
    assert (sandbox / "usr" / "share" / "zoneinfo" / "America" / "New_York").exists()
    assert os.access(sandbox / "usr" / "bin" / "setpriv", os.X_OK)


def test_build_on_the_cached_root_is_idempotent(sandbox: Path):
    if not (sandbox / ".appliance-ready").exists():
        pytest.skip(f"{sandbox} was not made by scripts/asterisk-sandbox build")
    env = {**os.environ, "APPLIANCE_SANDBOX_ROOT": str(sandbox)}
    build = [str(REPO / "scripts" / "asterisk-sandbox"), "build"]
    first = subprocess.run(build, env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    passwd = (sandbox / "etc" / "passwd").read_text()
    again = subprocess.run(build, env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == str(sandbox)
    assert again.stderr == ""  # nothing left to fix or install
    assert (sandbox / "etc" / "passwd").read_text() == passwd
