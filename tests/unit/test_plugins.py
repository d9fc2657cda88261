"""The plugin manager: where plugins come from, which drop-in files it refuses (hostile files
and directories, each alone), and how one plugin's failure, slowness or hang stays its own."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path

import pytest

from appliance.plugins import manager as manager_module
from appliance.plugins.manager import PluginManager

GOOD = """
from appliance.plugins import hookimpl

@hookimpl
def call_ended(call):
    return call["call_id"]
"""


def drop(directory: Path, name: str, text: str = GOOD, mode: int = 0o644) -> Path:
    path = directory / f"{name}.py"
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.fixture
def plugin_dir(tmp_path):
    directory = tmp_path / "plugins.d"
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)
    return directory


def states(plugins: PluginManager) -> dict[str, tuple[str, str]]:
    return {p["name"]: (p["state"], p["reason"]) for p in plugins.listing()}


def test_drop_in_files_load_as_plugins_named_after_their_file(plugin_dir):
    drop(plugin_dir, "first")
    drop(plugin_dir, "second")
    plugins = PluginManager()
    plugins.load(plugin_dir, installed=False)
    assert states(plugins) == {"first": ("loaded", ""), "second": ("loaded", "")}
    listed = {p["name"]: p for p in plugins.listing()}
    assert listed["first"]["hooks"] == ["call_ended"]
    assert listed["first"]["origin"] == str(plugin_dir / "first.py")
    assert plugins.call("call_ended", call={"call_id": "x"}) == [("second", "x"), ("first", "x")]


def hostile_setups():
    def symlinked_file(d: Path) -> None:
        target = drop(d.parent, "elsewhere")
        (d / "evil.py").symlink_to(target)

    def world_writable(d: Path) -> None:
        drop(d, "evil", mode=0o646)

    def group_writable(d: Path) -> None:
        drop(d, "evil", mode=0o664)

    def strangers(d: Path) -> None:
        os.chown(drop(d, "evil"), 4242, 4242)

    def not_a_file(d: Path) -> None:
        (d / "evil.py").mkdir()

    def bad_name(d: Path) -> None:
        drop(d, "evil-name")

    def broken(d: Path) -> None:
        drop(d, "evil", "raise SystemExit('no')\n")

    def unknown_hook(d: Path) -> None:
        text = "from appliance.plugins import hookimpl\n@hookimpl\ndef call_exploded(call): pass\n"
        drop(d, "evil", text)

    def wrong_argument(d: Path) -> None:
        text = "from appliance.plugins import hookimpl\n@hookimpl\ndef call_ended(cal): pass\n"
        drop(d, "evil", text)

    return [
        symlinked_file,
        world_writable,
        group_writable,
        strangers,
        not_a_file,
        bad_name,
        broken,
        unknown_hook,
        wrong_argument,
    ]


@pytest.mark.parametrize("setup", hostile_setups(), ids=lambda f: f.__name__)
def test_a_hostile_drop_in_file_is_refused_with_its_reason_and_nothing_else_is(plugin_dir, setup):
    if os.geteuid() != 0 and setup.__name__ == "strangers":
        pytest.skip("needs root to give a file away")
    drop(plugin_dir, "good")
    setup(plugin_dir)
    plugins = PluginManager()
    plugins.load(plugin_dir, installed=False)
    found = states(plugins)
    assert found.pop("good") == ("loaded", "")
    ((name, (state, reason)),) = found.items()
    assert name.startswith("evil") and state == "refused" and reason
    assert "\n" not in reason
    assert [n for n, _ in plugins.call("call_ended", call={"call_id": "x"})] == ["good"]


@pytest.mark.parametrize(
    "setup",
    [
        lambda d, tmp: (d.chmod(0o777), d)[1],
        lambda d, tmp: (d.chmod(0o775), d)[1],
        lambda d, tmp: ((tmp / "link").symlink_to(d), tmp / "link")[1],
        lambda d, tmp: (os.chown(d, 4242, 4242), d)[1],
        lambda d, tmp: ((tmp / "file").write_text(""), tmp / "file")[1],
    ],
    ids=["world-writable", "group-writable", "symlink", "stranger's", "not-a-directory"],
)
def test_a_hostile_drop_in_directory_refuses_all_its_files(plugin_dir, tmp_path, setup):
    drop(plugin_dir, "good")
    directory = setup(plugin_dir, tmp_path)
    plugins = PluginManager()
    plugins.load(directory, installed=False)
    ((name, (state, reason)),) = states(plugins).items()
    assert name == "(directory)" and state == "refused" and reason.startswith("the directory")
    assert plugins.call("call_ended", call={"call_id": "x"}) == []


def test_a_missing_directory_is_no_plugins_and_no_error(tmp_path):
    plugins = PluginManager()
    plugins.load(tmp_path / "absent", installed=False)
    assert plugins.listing() == []


class Raises:
    def call_ended(self, call):
        raise RuntimeError("boom\nsecond line")


class Sleeps:
    def __init__(self) -> None:
        self.release = threading.Event()

    def call_ended(self, call):
        self.release.wait(30)
        return "late"


class Fine:
    def call_ended(self, call):
        call["call_id"] = "changed"  # its own copy: the others never see it
        return "fine"


def isolated(timeout: float = 0.2) -> tuple[PluginManager, Sleeps]:
    from appliance.plugins import hookimpl

    for cls in (Raises, Sleeps, Fine):
        cls.call_ended = hookimpl(cls.call_ended)
    plugins = PluginManager(timeout)
    sleeper = Sleeps()
    for name, plugin in (("raises", Raises()), ("sleeps", sleeper), ("fine", Fine())):
        plugins._register(plugin, name, "test")
    return plugins, sleeper


def test_an_exception_or_a_timeout_is_counted_for_its_plugin_and_the_others_go_on():
    plugins, sleeper = isolated()
    try:
        call = {"call_id": "x"}
        assert plugins.call("call_ended", call=call) == [("fine", "fine")]
        assert call == {"call_id": "x"}
        assert asyncio.run(plugins.acall("call_ended", call=call)) == [("fine", "fine")]
        listed = {p["name"]: p for p in plugins.listing()}
        assert listed["raises"]["failures"] == 2 and listed["raises"]["timeouts"] == 0
        assert listed["sleeps"]["timeouts"] == 2 and listed["sleeps"]["failures"] == 0
        assert listed["fine"]["failures"] == listed["fine"]["timeouts"] == 0
        assert plugins.totals()["plugin_failures"] == 2
        assert plugins.totals()["plugin_timeouts"] == 2
    finally:
        sleeper.release.set()


def test_a_stuck_plugin_is_skipped_instead_of_piling_up_threads():
    plugins, sleeper = isolated(timeout=0.05)
    try:
        before = threading.active_count()
        for _ in range(manager_module.MAX_STUCK + 5):
            plugins.call("call_ended", call={"call_id": "x"})
        assert threading.active_count() - before <= manager_module.MAX_STUCK
        listed = {p["name"]: p for p in plugins.listing()}
        assert listed["sleeps"]["skipped"] == 5
        assert listed["sleeps"]["calls"] == manager_module.MAX_STUCK
    finally:
        sleeper.release.set()


def test_async_implementations_run_on_the_loop_within_the_timeout():
    from appliance.plugins import hookimpl

    class Slow:
        @hookimpl
        async def call_ended(self, call):
            await asyncio.sleep(30)

    class Quick:
        @hookimpl
        async def call_ended(self, call):
            return call["call_id"]

    plugins = PluginManager(0.1)
    plugins._register(Slow(), "slow", "test")
    plugins._register(Quick(), "quick", "test")
    assert asyncio.run(plugins.acall("call_ended", call={"call_id": "y"})) == [("quick", "y")]
    assert {p["name"]: p["timeouts"] for p in plugins.listing()} == {"slow": 1, "quick": 0}
    assert plugins.call("call_ended", call={"call_id": "z"}) == [("quick", "z")]


def test_a_plugin_name_already_taken_is_refused(plugin_dir):
    drop(plugin_dir, "routing")
    plugins = PluginManager()
    plugins._register(Fine(), "routing", "built-in")
    plugins.load(plugin_dir, installed=False)
    refused = [p for p in plugins.listing() if p["state"] == "refused"]
    assert [p["reason"] for p in refused] == ["its name is taken by another plugin"]


def test_an_async_plugin_that_ignores_its_cancellation_delays_nothing_nor_piles_up():
    """A coroutine that swallows CancelledError (a bare except in a retry loop) still has its
    caller back within the timeout, and is skipped while MAX_STUCK of it still run after their
    timeout."""
    from appliance.plugins import hookimpl

    until = time.monotonic() + 2
    ended: list[bool] = []

    class Stubborn:
        @hookimpl
        async def call_ended(self, call):
            while time.monotonic() < until:
                try:
                    await asyncio.sleep(0.01)
                except BaseException:  # the plugin's own bad habit
                    continue
            ended.append(True)

    async def calls() -> None:
        plugins = PluginManager(0.05)
        plugins._register(Stubborn(), "stubborn", "test")
        for _ in range(manager_module.MAX_STUCK + 2):
            assert await plugins.acall("call_ended", call={"call_id": "x"}) == []
            assert not ended, "the caller waited for the plugin to give up by itself"
        listed = {p["name"]: p for p in plugins.listing()}["stubborn"]
        assert listed["calls"] == manager_module.MAX_STUCK and listed["skipped"] == 2
        assert listed["timeouts"] == manager_module.MAX_STUCK

    asyncio.run(calls())


def test_plugins_list_runs_no_plugin_code_and_shows_what_the_controller_loaded(
    plugin_dir, tmp_path
):
    """`appliance plugins list` (often run with sudo, as root) imports nothing: the running
    controller's status file says what it loaded; without one, the files it would find."""
    from appliance.config import load
    from appliance.plugins import commands, status

    ran = tmp_path / "ran"
    drop(plugin_dir, "side_effect", f"open({str(ran)!r}, 'w').close()\n{GOOD}")
    data = tmp_path / "data"
    data.mkdir()
    environ = {"APPLIANCE_PATHS_DATA_DIR": str(data), "APPLIANCE_PLUGINS_DIR": str(plugin_dir)}
    config = load(environ=environ)
    listed = {p["name"]: p for p in commands.describe(config)}
    assert not ran.exists()
    assert listed["side_effect"]["state"] == "found" and listed["side_effect"]["hooks"] == []
    assert listed["routing"]["state"] == "loaded" and listed["routing"]["failures"] is None
    controller = PluginManager()
    controller.load(plugin_dir, installed=False)
    controller.call("call_ended", call={"call_id": "x"})
    status.write(config, controller)
    listed = {p["name"]: p for p in commands.describe(config)}
    assert listed["side_effect"]["state"] == "loaded"
    assert listed["side_effect"]["hooks"] == ["call_ended"]
    assert listed["side_effect"]["failures"] == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="gives files to another user")
def test_plugins_list_run_as_root_trusts_the_controller_s_user(plugin_dir, tmp_path):
    """Under sudo the controller's user is the data dir's owner, not root: its drop-in files
    are found, not refused as a stranger's."""
    from appliance.config import load
    from appliance.plugins import commands

    controller_uid = 65534
    data = tmp_path / "data"
    data.mkdir()
    os.chown(data, controller_uid, controller_uid)
    os.chown(drop(plugin_dir, "theirs"), controller_uid, controller_uid)
    os.chown(drop(plugin_dir, "stranger"), 12345, 12345)
    environ = {"APPLIANCE_PATHS_DATA_DIR": str(data), "APPLIANCE_PLUGINS_DIR": str(plugin_dir)}
    listed = {p["name"]: p for p in commands.describe(load(environ=environ))}
    assert listed["theirs"]["state"] == "found"
    assert listed["stranger"]["state"] == "refused"


def test_a_refused_file_s_name_cannot_forge_log_lines_or_listing_rows(plugin_dir, caplog):
    drop(plugin_dir, "x\nALERT disk full\tnow")
    plugins = PluginManager()
    with caplog.at_level("INFO", logger="appliance.plugins.manager"):
        plugins.load(plugin_dir, installed=False)
    (refused,) = plugins.listing()
    assert refused["state"] == "refused"
    assert refused["name"].isprintable() and refused["origin"].isprintable()
    assert all(r.getMessage().isprintable() for r in caplog.records)


def test_a_quick_plugin_keeps_up_with_a_burst_of_calls():
    """Fifty calls setting up at once each get the plugin's answer: only calls left running
    after their timeout count against it, not calls still within it."""
    from appliance.plugins import hookimpl

    class Quick:
        @hookimpl
        def call_ended(self, call):
            time.sleep(0.02)  # the plugin's own work, e.g. a lookup
            return call["call_id"]

    async def burst() -> list:
        plugins = PluginManager(2.0)
        plugins._register(Quick(), "quick", "test")
        answers = await asyncio.gather(
            *(plugins.acall("call_ended", call={"call_id": str(n)}) for n in range(50))
        )
        assert {p["name"]: p["skipped"] for p in plugins.listing()} == {"quick": 0}
        return answers

    assert sorted(int(a[0][1]) for a in asyncio.run(burst())) == list(range(50))
