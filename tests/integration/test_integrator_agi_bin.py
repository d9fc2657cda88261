"""The integrator AGI scripts in their classic form, AGI(appliance-agi,...) from Asterisk's
agi-bin, with the appliance's Python visible inside Asterisk's root. A stack per test: each
gives Asterisk read-only mounts of its own, and one stops the controller."""

from __future__ import annotations

import shutil
import sys
import sysconfig
from pathlib import Path

import pytest

from appliance.asterisk import render
from appliance.calls import variables as var
from tests.harness import REPO, Stack, invited
from tests.integration.test_integrator_agi import TRACKED, call, install, kept, results


# the classic form: AGI(appliance-agi,...) from Asterisk's agi-bin ------------------------------
@pytest.fixture
def classic(stack: Stack):
    """The `running` appliance, with this Python visible to Asterisk (in its root, read-only:
    the interpreter at /mnt; at /srv a copy, readable by Asterisk's user, of what the entry
    point imports: the appliance's code and pyst2 with its one dependency; nothing of the
    root's own is covered) and the agi-bin wrapper running the entry point from there."""
    packages = Path(sysconfig.get_paths()["purelib"])
    code = str(REPO), str(packages)
    inside_root = stack.root != Path("/")
    if inside_root:
        copy = stack.data_dir.parent / "agi-code"
        ignore = shutil.ignore_patterns("__pycache__")
        shutil.copytree(REPO / "appliance", copy / "appliance", ignore=ignore)
        shutil.copytree(packages / "asterisk", copy / "asterisk", ignore=ignore)
        shutil.copy2(packages / "six.py", copy / "six.py")
        copy.chmod(0o755)
        stack.mounts = [(Path(sys.base_prefix), "/mnt"), (copy, "/srv")]
        code = ("/srv",)
    python = Path(sys.executable).resolve()
    interpreter = f"/mnt/{python.relative_to(sys.base_prefix)}" if inside_root else str(python)
    stack.appliance(
        "trunk", "add", "carrier", "--host", "127.0.0.1", "--port", str(stack.phone_port)
    )
    stack.appliance(
        "route", "add", "Spring flyer", "--forward", "+12025550199", "--trunk", "carrier"
    )
    number = (TRACKED, "--label", "Spring flyer", "--source", "Google Ads")
    stack.appliance("number", "add", *number, "--route", "Spring flyer")
    stack.appliance("config", "render")
    wrapper = stack.asterisk_dir_on_host / "agi-bin" / "appliance-agi"
    assert wrapper.stat().st_mode & 0o777 == 0o750  # written by config render
    argv = [
        "env", "LD_LIBRARY_PATH=/mnt/lib" if inside_root else "LD_LIBRARY_PATH=",
        f"PYTHONPATH={':'.join(code)}", interpreter, "-m", "appliance.integrator.classic",
        "--host", "127.0.0.1", "--port", str(stack.agi_port),
    ]  # fmt: skip
    gid = render.lookup_user(stack.root, "asterisk").gid
    render.write_agi_wrapper(stack.asterisk_dir_on_host, argv, gid)
    stack.start_asterisk()
    stack.start_controller()
    return stack


def test_agi_track_and_tag_run_from_agi_bin_through_the_classic_entry_point(classic: Stack):
    install(
        classic,
        {
            "5550108": [
                f"AGI(appliance-agi,track,{TRACKED})",
                f"KEEP track=${{AGISTATUS}}/{results(var.STATUS, var.READY, var.CALL_ID)}",
                f"KEEP source=${{{var.SOURCE}}}",
                "AGI(appliance-agi,tag,vip)",
                f"KEEP tag={results(var.STATUS, var.READY, var.TAGS)}",
                "AGI(appliance-agi,tag,not a tag!)",
                f"KEEP refused={results(var.STATUS, var.READY)}",
                "Answer()",
                "Wait(10)",
            ]
        },
    )
    call(classic, "5550108")
    (record,) = classic.finished()
    values = kept(classic)
    assert values["track"] == f"SUCCESS/ok/1/{record['id']}"
    assert values["source"] == "Google Ads" and values["tag"] == "ok/1/vip"
    assert values["refused"] == "bad-tags/"
    assert classic.query("SELECT tag FROM call_tags WHERE call_id = ?", record["id"])[0][0] == "vip"


def test_agi_track_from_agi_bin_with_the_controller_down_goes_on(classic: Stack, phone):
    controller = classic.processes.pop()
    classic.stop(controller)
    carrier = phone()
    install(
        classic,
        {
            "5550109": [
                f"AGI(appliance-agi,track,{TRACKED})",
                f"KEEP down=${{AGISTATUS}}/{results(var.STATUS, var.READY)}",
                "Dial(PJSIP/+12025550199@carrier,5)",
            ]
        },
    )
    call(classic, "5550109")
    assert kept(classic)["down"] == "SUCCESS//"
    assert invited(carrier.trace) == ["+12025550199"]
