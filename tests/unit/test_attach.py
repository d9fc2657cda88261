"""Bring your own PBX: the snippets an admin pastes into the site's Asterisk use exactly the
code's names, a hostile value in the config is refused in one line, and attached mode writes
none of Asterisk's config (real SQLite where a store is involved)."""

from __future__ import annotations

import re
import time

import pytest

from appliance import cli, doctor, production
from appliance.asterisk import attach, render
from appliance.asterisk.ami import AmiClient
from appliance.calls import variables as var
from appliance.calls.model import CallStarted
from appliance.calls.outcome import CallOutcome
from appliance.calls.publish import DialplanPublisher
from appliance.calls.store import CallStore
from appliance.calls.tracker import CallTracker
from appliance.config import ConfigError, load
from appliance.db.engine import session_factory
from appliance.integrator.agi import SCRIPTS
from appliance.vocabulary import new_call_id
from tests.hostile import STRINGS
from tests.made_once import migrated_sqlite

pytestmark = pytest.mark.usefixtures("cheap_passwords")  # users are set-up here

SECRET = "s3cret-secret"


def attached(tmp_path, **more: str):
    environ = {
        "APPLIANCE_PATHS_DATA_DIR": str(tmp_path / "data"),
        "APPLIANCE_ASTERISK_MODE": "attached",
        **more,
    }
    return load(environ=environ)


@pytest.mark.parametrize("freepbx", [True, False])
def test_the_dialplan_snippet_uses_the_code_s_names_and_the_agi_port(tmp_path, freepbx):
    config = attached(tmp_path, APPLIANCE_AGI_PORT="612")
    text = attach.snippet(config, SECRET, freepbx).dialplan
    assert f"[{var.TRACK_CTX}]\nexten => s,1,AGI(agi://127.0.0.1:612/track," in text
    assert set(re.findall(r"agi://127\.0\.0\.1:(\d+)/", text)) == {"612"}
    scripts = set(re.findall(r"agi://[0-9.:]+/(\w+)", text))
    assert scripts <= set(SCRIPTS) and "track" in scripts
    assert set(re.findall(r"\b(APPLIANCE_[A-Z_]+)\b", text)) <= set(var.VARIABLES.values())
    dialled = "${FROM_DID}" if freepbx else "${ARG1}"
    assert f"/track,{dialled})\n same => n,Return()" in text
    assert ("Custom Destinations" in text) is freepbx


def test_the_manager_user_reads_only_calls_and_user_events_and_writes_nothing(tmp_path):
    text = attach.snippet(attached(tmp_path, APPLIANCE_AMI_USERNAME="tracker"), SECRET).manager
    assert "[tracker]\nsecret = s3cret-secret\n" in text
    assert re.findall(r"^read = (.*)$", text, re.M) == ["call,user"]
    assert re.findall(r"^write =(.*)$", text, re.M) == [""]
    assert "permit = 127.0.0.1/255.255.255.255" in text
    handled = {name[4:] for name in dir(CallTracker) if name.startswith("_on_")}
    allowed = {e.lower() for e in re.findall(r"^eventfilter = Event: (\w+)$", text, re.M)}
    assert allowed == handled == {e.lower() for e in render.CALL_EVENTS}


@pytest.mark.parametrize("hostile", STRINGS)
def test_a_hostile_secret_never_reaches_the_snippet(hostile):
    if render.AMI_SECRET.fullmatch(hostile):
        assert f"secret = {hostile}\n" in attach.manager_user("appliance", hostile)
        return
    with pytest.raises(ConfigError) as refused:
        attach.manager_user("appliance", hostile)
    assert "\n" not in str(refused.value) and "ami.secret" in str(refused.value)


@pytest.mark.parametrize("hostile", [*(s for s in STRINGS if "\x00" not in s), "General"])
@pytest.mark.parametrize("key", ["APPLIANCE_AMI_USERNAME", "APPLIANCE_AGI_HOST"])
def test_hostile_names_in_the_config_are_refused_in_one_line(tmp_path, key, hostile):
    try:
        config = attached(tmp_path, **{key: hostile})
    except ConfigError as refused:
        assert "\n" not in str(refused)
        return
    snippet = attach.snippet(config, SECRET)
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", config.ami.username)
    assert f"\n[{config.ami.username}]\nsecret = " in snippet.manager
    assert config.agi.host.startswith("127.")


def test_the_snippet_command_prints_both_parts_and_says_when_the_mode_is_not_attached(
    tmp_path, monkeypatch, capsys
):
    secret = tmp_path / "ami.secret"
    secret.write_text(SECRET)
    monkeypatch.setenv("APPLIANCE_PATHS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("APPLIANCE_AMI_SECRET", f"file:{secret}")
    assert cli.main(["attach", "snippet", "--freepbx"]) == 0
    out, err = capsys.readouterr()
    assert "[appliance]\nsecret = s3cret-secret" in out and "${FROM_DID}" in out
    assert err.startswith("note: asterisk.mode is managed")
    monkeypatch.setenv("APPLIANCE_ASTERISK_MODE", "attached")
    assert cli.main(["attach", "snippet", "--part", "dialplan"]) == 0
    out, err = capsys.readouterr()
    assert "[appliance]" not in out and f"[{var.TRACK_CTX}]" in out and err == ""


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["config", "render"], "Asterisk's config is the site's"),
        (["trunk", "add", "carrier", "--host", "203.0.113.5"], "trunks are the site's PBX's"),
        (["endpoint", "add", "desk-1"], "phones are the site's PBX's"),
    ],
)
def test_commands_that_make_no_sense_attached_say_so_in_one_line(
    tmp_path, monkeypatch, capsys, argv, says
):
    monkeypatch.setenv("APPLIANCE_PATHS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("APPLIANCE_ASTERISK_MODE", "attached")
    assert cli.main(["init"]) == 0
    capsys.readouterr()
    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    assert err.startswith("appliance: asterisk.mode is attached") and says in err
    assert err.count("\n") == 1 and out == ""
    assert not (tmp_path / "data" / "asterisk").exists()


def test_the_mode_is_managed_unless_set_and_nothing_else_is_a_mode(tmp_path):
    assert not load(environ={"APPLIANCE_PATHS_DATA_DIR": str(tmp_path)}).attached
    assert attached(tmp_path).attached
    with pytest.raises(ConfigError, match=r"^asterisk\.mode: managed or attached$"):
        attached(tmp_path, APPLIANCE_ASTERISK_MODE="Attached")


def test_attached_mode_writes_nothing_and_keeps_no_cdr_directory(tmp_path):
    config = attached(tmp_path)
    with pytest.raises(ConfigError, match="writes none of it"):
        render.write(config, [], "")
    assert not config.asterisk_dir_on_host.exists()
    assert render.cdr_dir(config) is None
    assert render.cdr_dir(load(environ={"APPLIANCE_PATHS_DATA_DIR": str(tmp_path)})) is not None


@pytest.fixture
def store(tmp_path):
    engine = migrated_sqlite(tmp_path / "calls.db")
    yield CallStore(session_factory(engine), only_tracked=True)
    engine.dispose()


def outcome(linkedid: str) -> CallOutcome:
    now = time.time()
    return CallOutcome(
        linkedid, "7001", "13125550111", "", now - 5, now, now - 3, now - 4, "answered"
    )


def test_attached_the_outcome_of_a_call_nothing_tracked_is_not_recorded(store):
    started = CallStarted(
        "2.1", new_call_id(), "+12025550123", "13125550111", "", time.time(), None, None, False
    )
    results = store.write([outcome("1.1"), started, outcome("2.1")])
    assert [news for _, news in results] == [False, True, True]  # started, then finished
    assert results[2][0] == started.call_id
    assert store.finished_linkedids(["1.1", "2.1"]) == {"2.1"}


async def test_attached_the_publisher_keeps_the_routing_table_and_writes_nothing(store, tmp_path):
    ami = AmiClient("127.0.0.1", 1, "appliance", SECRET, allowed_uids={0})
    publisher = DialplanPublisher(store, None, render.dialplan_settings(attached(tmp_path)), ami)
    await publisher.refresh()
    await publisher.on_login()
    assert publisher.table.routes == {} and publisher.healthy
    assert publisher.reloads == publisher.pjsip_reloads == 0
    assert not [p for p in tmp_path.iterdir() if not p.name.startswith("calls.db")]


def test_doctor_attached_checks_neither_the_config_nor_the_spool_nor_asterisk_s_unit(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("APPLIANCE_PATHS_DATA_DIR", str(tmp_path / "data"))
    assert cli.main(["init"]) == 0
    config = attached(tmp_path)
    names = [f.check for f in doctor.findings(config)]
    assert "Asterisk config" not in names and "routes" not in names
    assert "FastAGI" in names and ("AMI login" in names or "Asterisk" in names)
    recordings = doctor.check_recordings(config)
    assert (recordings.status, recordings.detail) == (
        doctor.OK,
        "none: attached calls are tracked, not recorded",
    )
    assert "asterisk" not in production.services(attached=True)
    assert "asterisk" in production.services(attached=False)


def test_attached_the_calls_in_progress_are_only_those_track_adopted():
    attached_tracker, managed = CallTracker(only_ours=True), CallTracker()
    for linkedid in ("1.1", "2.1"):
        event = {"Event": "Newchannel", "Linkedid": linkedid, "Uniqueid": linkedid, "Channel": "x"}
        attached_tracker.feed(event)
        managed.feed(event)
    assert attached_tracker.in_progress() == []
    attached_tracker.adopt("2.1", 7, "+12025550123")
    assert [c.linkedid for c in attached_tracker.in_progress()] == ["2.1"]
    assert [c.linkedid for c in managed.in_progress()] == ["1.1", "2.1"]  # all the appliance's
