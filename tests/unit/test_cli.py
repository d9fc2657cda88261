"""The appliance command, run as an admin would run it."""

import os
import stat
import subprocess
import sys

import pytest


@pytest.fixture
def run(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_")}
    env["APPLIANCE_PATHS_DATA_DIR"] = str(tmp_path / "data")
    env["APPLIANCE_ASTERISK_ROOT"] = str(tmp_path / "root")

    def run(*args, stdin=None, **extra):
        return subprocess.run(
            [sys.executable, "-m", "appliance", *args],
            input=stdin,
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=60,
        )

    return run


def test_init_is_idempotent_and_shows_the_password_once(run, tmp_path):
    first = run("init")
    assert first.returncode == 0, first.stderr
    assert "one-time password: " in first.stdout
    second = run("init")
    assert second.returncode == 0
    assert "one-time password" not in second.stdout
    secrets = tmp_path / "data" / "secrets"
    for path in secrets.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "data" / "tls" / "key.pem").stat().st_mode) == 0o600


def test_admin_commands_and_their_errors(run):
    assert run("init").returncode == 0
    ok = run(
        "user",
        "add",
        "ops",
        "--role",
        "manager",
        "--password-stdin",
        stdin="a-very-long-password\n",
    )
    assert ok.returncode == 0 and "one-time password" not in ok.stdout
    assert run("account", "add", "Dental clinic").returncode == 0
    assert run("trunk", "add", "carrier", "--host", "127.0.0.1").returncode == 0
    hours = ("--hours", "mon-fri 09:00-17:00", "--timezone", "Europe/Paris")
    route = run(
        "route", "add", "Front desk", "--endpoint", "desk-1", *hours, "--after-hours", "Night"
    )
    assert route.returncode == 2 and "no route 'Night' for after hours" in route.stderr
    assert run("route", "add", "Night", "--endpoint", "night-desk").returncode == 0
    route = run(
        "route",
        "add",
        "Front desk",
        "--forward",
        "+12025550199",
        "--trunk",
        "carrier",
        *hours,
        "--after-hours",
        "Night",
    )
    assert route.returncode == 0, route.stderr
    number = run(
        "number", "add", "(202) 555-0123", "--route", "Front desk", "--source", "Google Ads"
    )
    assert "tracking number +12025550123 added" in number.stdout

    for args, message in [
        (("number", "add", "555"), "'555' is not a valid number"),
        (("number", "add", "+12025550123"), "already exists"),
        (("trunk", "add", "Bad!", "--host", "x"), "trunk name"),
        (("user", "add", "ops"), "user 'ops' already exists"),
        (("account", "add", "x", "--parent", "99"), "no account with id 99"),
    ]:
        result = run(*args)
        assert result.returncode == 2, args
        assert message in result.stderr
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_migrate_reports_the_revision(run):
    result = run("migrate")
    assert result.returncode == 0
    assert "database at revision 0006 (was None)" in result.stdout
    assert "database at revision 0006" in run("migrate").stdout


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"APPLIANCE_PATHS_DATA_DIR": "/proc/appliance"}, "paths.data_dir: /proc/appliance"),
        ({"APPLIANCE_HTTP_PORT": "http"}, "http.port: 'http' is not an integer"),
        ({"APPLIANCE_DATABASE_URL": "nonsense"}, "database.url: 'nonsense' is not a database URL"),
    ],
)
def test_bad_setup_is_one_clear_line(run, env, message):
    result = run("init", **env)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_refuses_a_missing_or_unmigrated_database(run, tmp_path):
    result = run("serve")
    assert result.returncode == 2
    assert "does not exist (run 'appliance init')" in result.stderr
    (tmp_path / "data").mkdir()
    result = run("serve")
    assert result.returncode == 2
    assert "database is not migrated (run 'appliance migrate')" in result.stderr


def test_config_show_prints_every_section(run):
    out = run("config", "show").stdout
    for section in ("paths", "database", "http", "agi", "ami", "asterisk", "log"):
        assert f"[{section}]" in out


def test_sealing_the_key_file_and_unlocking_it(run):
    assert run("init").returncode == 0
    sealed = run("keys", "seal", "--password-stdin", stdin="a sealed passphrase\n")
    assert sealed.returncode == 0, sealed.stderr
    locked = run("doctor")
    assert "recordings: key file" in locked.stdout and "is sealed" in locked.stdout
    unlocked = {"APPLIANCE_RECORDINGS_KEY_PASSPHRASE": "a sealed passphrase"}
    opened = run("doctor", **unlocked).stdout
    assert "recordings:" in opened and "is sealed" not in opened and "passphrase" not in opened
    rotated = run("keys", "rotate", **unlocked)
    assert rotated.returncode == 0 and "0 recording key(s) re-wrapped" in rotated.stdout
    assert "is sealed" in run("doctor").stdout  # rotation kept it sealed
    wrong = run("keys", "rotate", APPLIANCE_RECORDINGS_KEY_PASSPHRASE="nope")
    assert wrong.returncode == 2 and "wrong passphrase" in wrong.stderr
