"""The appliance command, run as an admin would run it.

Most commands run in this process through appliance.cli.main, the function the installed
`appliance` script calls, each with only the environment, stdin, stdout and stderr the test
gives it: a process of its own would spend seconds importing the appliance before each one.
A few run the installed script end to end (end_to_end=True): --version, the first init (a
success), serve's refusals (a failure: exit code 2 and the logged line on stderr; serve also
lowers its process's CPU priority, which must not be pytest's) and a password read from stdin."""

import getpass
import os
import stat
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from appliance import __version__
from appliance.db.migrate import head_revision
from tests.inprocess import HANG, in_process
from tests.made_once import initialised

pytestmark = pytest.mark.usefixtures("cheap_passwords")  # users are set-up here

INSTALLED = Path(sys.executable).with_name("appliance")  # the console script of this venv


@pytest.fixture
def run(tmp_path):
    env = {
        "APPLIANCE_PATHS_DATA_DIR": str(tmp_path / "data"),
        "APPLIANCE_ASTERISK_ROOT": str(tmp_path / "root"),
    }

    def run(*args, stdin=None, end_to_end=False, **extra):
        command = installed if end_to_end else in_process
        return command(args, stdin, {**env, **extra})

    return run


def installed(
    args: Sequence[str], stdin: str | None, env: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    """The installed script in a process of its own."""
    assert INSTALLED.is_file(), f"{INSTALLED}: the appliance is not installed in this venv"
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_")}
    return subprocess.run(
        [str(INSTALLED), *args],
        input=stdin,
        env={**inherited, **env},
        capture_output=True,
        text=True,
        timeout=HANG,
    )


def test_init_is_idempotent_and_shows_the_password_once(run, tmp_path):
    version = run("--version", end_to_end=True)  # the installed script, as an admin first runs it
    assert version.returncode == 0 and version.stdout == f"appliance {__version__}\n"
    first = run("init", end_to_end=True)
    assert first.returncode == 0, first.stderr
    assert "one-time password: " in first.stdout
    second = run("init")
    assert second.returncode == 0
    assert "one-time password" not in second.stdout
    secrets = tmp_path / "data" / "secrets"
    for path in secrets.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "data" / "tls" / "key.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700


def test_admin_commands_and_their_errors(run, tmp_path):
    initialised(tmp_path / "data")
    ok = run(
        "user",
        "add",
        "ops",
        "--role",
        "manager",
        "--password-stdin",
        stdin="a-very-long-password\n",
        end_to_end=True,
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
    assert f"database at revision {head_revision()} (was None)" in result.stdout
    assert f"database at revision {head_revision()}" in run("migrate").stdout


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
    result = run("serve", end_to_end=True)
    assert result.returncode == 2
    assert "does not exist (run 'appliance init')" in result.stderr
    (tmp_path / "data").mkdir()
    result = run("serve", end_to_end=True)
    assert result.returncode == 2
    assert "database is not migrated (run 'appliance migrate')" in result.stderr


def test_config_show_prints_every_section(run):
    out = run("config", "show").stdout
    for section in ("paths", "database", "http", "agi", "ami", "asterisk", "log"):
        assert f"[{section}]" in out


def test_sealing_the_key_file_and_unlocking_it(run, tmp_path):
    initialised(tmp_path / "data")
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


def test_passwords_tokens_and_the_audit_of_who_did_it(run, tmp_path):
    import sqlite3

    initialised(tmp_path / "data")
    database = tmp_path / "data" / "appliance.db"
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    assert (
        run("user", "add", "reader", "--password-stdin", stdin="a-long-password-1\n").returncode
        == 0
    )
    generated = run("user", "passwd", "reader")
    assert generated.returncode == 0 and "one-time password: " in generated.stdout
    typed = run("user", "passwd", "reader", "--password-stdin", stdin="reader\n")
    assert typed.returncode == 2 and "at least 12" in typed.stderr
    assert run("user", "passwd", "nobody", "--password-stdin", stdin="x" * 20).returncode == 2

    added = run("apikey", "add", "reader", "--scope", "calls:read", "--days", "30", "--name", "BI")
    assert added.returncode == 0 and added.stdout.count("apk_") == 1
    bad = run("apikey", "add", "reader", "--days", "0")
    assert bad.returncode == 2 and "1 to 3650 days" in bad.stderr
    listed = run("apikey", "list").stdout
    assert "apk_" not in listed
    assert "\treader\tBI\tcalls:read\t" in listed and listed.rstrip().endswith("active")
    assert run("apikey", "revoke", "1").returncode == 0
    assert run("apikey", "list").stdout.rstrip().endswith("revoked")
    assert run("apikey", "revoke", "99").returncode == 2

    connection = sqlite3.connect(database)
    rows = connection.execute("SELECT actor, action, subject FROM audit_log").fetchall()
    me = os.environ.get("SUDO_USER") or getpass.getuser()
    assert rows[0] == ("system", "user.add", "admin")  # appliance init
    assert {actor for actor, _, _ in rows[1:]} == {f"cli:{me}"}
    assert [a for _, a, _ in rows] == [
        "user.add",
        "user.add",
        "user.password",
        "apikey.add",
        "apikey.revoke",
    ]


def test_networks_locked_out_of_a_user_are_shown_and_cleared_by_a_new_password(run, tmp_path):
    from appliance import accounts
    from appliance.db.engine import make_engine, session_factory

    initialised(tmp_path / "data")
    engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'appliance.db'}")
    for _ in range(5):
        assert accounts.sign_in(session_factory(engine), "admin", "wrong!", "2001:db8::9") is None
    engine.dispose()
    assert "locked out networks: 2001:db8::/64" in run("user", "show", "admin").stdout
    assert run("user", "list").stdout.splitlines()[1].endswith("\t1")
    assert run("user", "passwd", "admin").returncode == 0
    assert "locked out networks: -" in run("user", "show", "admin").stdout
    assert run("user", "list").stdout.splitlines()[1].endswith("\t0")


def test_missing_folders_and_unknown_hosts_end_in_one_line(run, tmp_path):
    initialised(tmp_path / "data")
    export = run("recordings", "export", "0" * 32, str(tmp_path / "no" / "such" / "x.wav"))
    assert export.returncode == 2 and "No such file or directory" in export.stderr
    assert "Traceback" not in export.stderr
    doctor = run("doctor", APPLIANCE_HTTP_HOST="no-such-host.invalid")
    assert "Traceback" not in doctor.stderr + doctor.stdout
    assert "'no-such-host.invalid' is not a host this machine can find" in doctor.stdout


def test_lists_edits_and_removals(run, tmp_path):
    initialised(tmp_path / "data")
    assert run("trunk", "add", "carrier", "--host", "127.0.0.1").returncode == 0
    forward = ("--forward", "+12025550199", "--trunk", "carrier")
    assert run("route", "add", "Front desk", *forward).returncode == 0
    assert run("route", "add", "Night", *forward).returncode == 0
    number = ("+12025550123", "--route", "Front desk", "--source", "Ads", "--label", "Spring")
    assert run("number", "add", *number).returncode == 0
    assert run("user", "add", "ops", "--role", "manager").returncode == 0

    assert "carrier\tip\t127.0.0.1\t5060\t-\t127.0.0.1/32" in run("trunk", "list").stdout
    assert "Front desk\t1\t+12025550199\tsimultaneous" in run("route", "list").stdout
    assert "+12025550123\t1\tSpring\tAds\tFront desk\tactive" in run("number", "list").stdout
    users = run("user", "list").stdout
    assert "admin\towner\t1\tyes" in users and "ops\tmanager\t1\tyes" in users

    for args, message in [
        (("trunk", "remove", "carrier"), "routes forward over trunk 'carrier'"),
        (("route", "remove", "Front desk"), "numbers take route 'Front desk': +12025550123"),
        (("user", "remove", "admin"), "admin is the last owner"),
        (("user", "role", "admin", "analyst"), "admin is the last owner"),
        (("number", "edit", "+12025550123", "--route", "Nope"), "no route 'Nope'"),
        (("number", "release", "+12025550000"), "no tracking number +12025550000"),
        (("calls", "list", "--from", "yesterday"), "from: a date as YYYY-MM-DD"),
    ]:
        result = run(*args)
        assert result.returncode == 2, args
        assert message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr

    edit = run("number", "edit", "(202) 555-0123", "--route", "Night", "--source", "")
    assert edit.returncode == 0, edit.stderr
    assert "+12025550123\t1\tSpring\t-\tNight\tactive" in run("number", "list").stdout
    assert run("route", "remove", "Front desk").returncode == 0
    assert run("number", "release", "+12025550123").returncode == 0
    assert "\treleased" in run("number", "list").stdout
    again = run("number", "add", "+12025550123", "--route", "Night")
    assert again.returncode == 0 and "\tactive" in run("number", "list").stdout
    assert run("user", "role", "ops", "owner").returncode == 0
    assert run("user", "remove", "admin").returncode == 0
    assert run("calls", "list").stdout.startswith("call\tstarted (UTC)")

    import sqlite3

    connection = sqlite3.connect(tmp_path / "data" / "appliance.db")
    changes = dict(
        connection.execute(
            "SELECT action, detail FROM audit_log WHERE action IN ('number.edit', 'user.role')"
        ).fetchall()
    )
    assert changes["number.edit"] == "route: 'Front desk' -> 'Night'; source: 'Ads' -> None"
    assert changes["user.role"] == "role: 'manager' -> 'owner'"


def test_show_and_edit_what_is_there(run, tmp_path):
    initialised(tmp_path / "data")
    assert run("trunk", "add", "carrier", "--host", "127.0.0.1").returncode == 0
    forward = ("--forward", "+12025550199", "--trunk", "carrier")
    assert run("route", "add", "Night", *forward).returncode == 0
    assert run("route", "add", "Front", *forward, "--ring-timeout", "20").returncode == 0
    assert run("number", "add", "+12025550123", "--route", "Front").returncode == 0
    assert run("endpoint", "add", "desk-1").returncode == 0

    hours = ("--hours", "mon-fri 09:00-17:00", "--after-hours", "Night")
    edit = run("route", "edit", "Front", "--ring-timeout", "45", "--endpoint", "desk-1", *hours)
    assert edit.returncode == 0, edit.stderr
    shown = run("route", "show", "Front").stdout
    assert "ring_timeout: 45" in shown and "endpoints: desk-1" in shown
    assert "hours: mon-fri 09:00-17:00" in shown and "after_hours: Night" in shown
    assert "forward_to: +12025550199" in shown  # what was not asked for stays
    for args, words in [
        (("route", "edit", "Front"), "nothing to change"),
        (("route", "edit", "Front", "--after-hours", "Front"), "its own after-hours route"),
        (("route", "edit", "Front", "--rename", "Night"), "already exists"),
        (("route", "edit", "Front", "--ring-timeout", "0"), "1 to 600"),
        (("trunk", "edit", "carrier", "--match", "0.0.0.0/0"), "from anywhere"),
        (("user", "email", "admin", "not-an-address"), "not an e-mail address"),
        (("route", "show", "Nope"), "no route 'Nope'"),
    ]:
        result = run(*args)
        assert result.returncode == 2 and words in result.stderr, (args, result.stderr)
    assert run("route", "edit", "Front", "--hours", "-", "--after-hours", "-").returncode == 0
    assert "hours: -" in run("route", "show", "Front").stdout

    assert (
        run("trunk", "edit", "carrier", "--host", "203.0.113.5", "--port", "5070").returncode == 0
    )
    trunk = run("trunk", "show", "carrier").stdout
    assert "carrier: 203.0.113.5:5070" in trunk and "takes calls from: 203.0.113.5/32" in trunk
    assert run("user", "email", "admin", "Ops@Example.com").returncode == 0
    user = run("user", "show", "admin").stdout
    assert "e-mail: ops@example.com" in user and "role: owner" in user
    assert "two-step sign-in: off" in user
    assert "route: Front" in run("number", "show", "(202) 555-0123").stdout
    assert run("source", "add", "Radio", "--medium", "broadcast").returncode == 0
    assert "\tRadio\tbroadcast\t" in run("source", "list").stdout
    assert run("source", "remove", "99").returncode == 2
    assert run("endpoint", "edit", "desk-1", "--label", "Front <desk>").returncode == 0
    assert "\tFront <desk>\t" in run("endpoint", "list").stdout


def test_websites_conversions_and_destinations_from_the_command_line(run, tmp_path):
    initialised(tmp_path / "data")
    for number in ("+12025550130", "+12025550131", "+12025550140"):
        assert run("number", "add", number).returncode == 0
    added = run(
        "site", "add", "Shop", "--origin", "https://www.example.com/", "--replace",
        "(202) 555-0100", "--form", "contact",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert '<script src="https://127.0.0.1:8444/t/v1/snippet.js" data-site="' in added.stdout
    assert run("site", "pool", "Shop", "+12025550130", "+12025550131").returncode == 0
    assert run("site", "rule", "add", "Shop", "source=news", "+12025550140").returncode == 0
    shown = run("site", "show", "Shop").stdout
    assert "https://www.example.com" in shown and "+12025550130 +12025550131" in shown
    assert "source contains 'news' -> +12025550140" in shown
    bad = run("site", "rule", "add", "Shop", "keyword=x", "+12025550140")
    assert bad.returncode == 2 and bad.stderr.startswith("appliance: a rule looks at one of")
    bad = run("site", "pool", "Shop", "+12025550140")
    assert bad.returncode == 2 and "a rule's number" in bad.stderr
    assert run("site", "edit", "Shop", "--hold", "45", "--consent").returncode == 0
    assert "hold (minutes): 45" in run("site", "show", "Shop").stdout

    assert run("conversion", "add", "Qualified call", "--answered", "--min-talk", "60",
               "--value", "50").returncode == 0  # fmt: skip
    listed = run("conversion", "list").stdout
    assert "answered, talk >= 60 s" in listed and "50 USD" in listed
    hook = run("destination", "add", "CRM", "webhook", "--url", "https://crm.example.com/h")
    assert hook.returncode == 0 and "signing secret (shown once): whsec_" in hook.stdout
    secret = hook.stdout.rsplit(" ", 1)[1].strip()
    assert secret not in run("destination", "list").stdout
    meta = run("destination", "add", "Meta", "meta", "--setting", "pixel_id=42",
               "--secrets-stdin", stdin='{"token": "EAAB"}')  # fmt: skip
    assert meta.returncode == 0, meta.stderr
    bad = run("destination", "add", "M2", "meta", "--setting", "pixel_id=42", "--secrets-stdin",
              stdin="not json")  # fmt: skip
    assert bad.returncode == 2 and "JSON object" in bad.stderr
    bad = run("destination", "action", "Meta", "Qualified call", "1")
    assert bad.returncode == 2 and "Google Ads" in bad.stderr
    assert "no deliveries" not in run("deliveries", "list").stderr
    bad = run("deliveries", "retry", "999")
    assert bad.returncode == 2 and "no delivery 999" in bad.stderr
    assert run("destination", "remove", "CRM").returncode == 0
    assert run("conversion", "remove", "Qualified call").returncode == 0
    assert run("site", "remove", "Shop").returncode == 0


def test_jobs_are_listed_and_parked_ones_retried(run, tmp_path):
    import sqlite3

    initialised(tmp_path / "data")
    with sqlite3.connect(tmp_path / "data" / "appliance.db") as db:
        db.execute(
            "INSERT INTO jobs (kind, key, state, attempts, run_after, created_at, last_error) "
            "VALUES ('conversions.call', 'c1', 'parked', 10, '2026-01-01', '2026-01-01', 'down')"
        )
    listed = run("jobs", "list", "--state", "parked")
    assert "conversions.call" in listed.stdout and "down" in listed.stdout
    assert run("jobs", "retry", "1").returncode == 0
    assert "queued" in run("jobs", "list").stdout
    again = run("jobs", "retry", "1")
    assert again.returncode == 2 and "no parked job 1" in again.stderr
