"""Python plugins on the real call path: the example plugin, installed from the drop-in
directory, moves a VIP caller's call to another route and tags it; a plugin that raises and
one that hangs leave the call to its compiled route, and are counted."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.harness import Stack, invited, sipp_call, wait_for
from tests.integration.test_routes import CARRIER_TARGET, add_desk_phone

EXAMPLE = Path(__file__).parents[2] / "docs" / "examples" / "plugins" / "vip_route.py"
VIP_CALLER, OTHER_CALLER = "13125550111", "13125550999"

BROKEN = """
from appliance.plugins import hookimpl

@hookimpl
def claims_route(route):
    return route["name"] == "Sales"

@hookimpl
def call_started(call, deciding):
    raise RuntimeError("broken plugin")
"""

STUCK = """
import time
from appliance.plugins import hookimpl

@hookimpl
def claims_route(route):
    return route["name"] == "Sales"

@hookimpl
def call_started(call, deciding):
    if deciding:
        time.sleep(60)
    return {"route": 0}
"""


def install(stack: Stack, files: dict[str, str | Path]) -> None:
    directory = stack.data_dir.parent / "plugins.d"
    directory.mkdir()
    directory.chmod(0o755)
    for name, source in files.items():
        target = directory / f"{name}.py"
        if isinstance(source, Path):
            shutil.copyfile(source, target)
        else:
            target.write_text(source)
        target.chmod(0o644)
    stack.extra_env["APPLIANCE_PLUGINS_DIR"] = str(directory)


def start(stack: Stack, files: dict[str, str | Path]) -> Stack:
    """'Sales' rings the carrier target, 'VIP' the desk phone; a number for each."""
    stack.appliance(
        "trunk", "add", "carrier", "--host", "127.0.0.1", "--port", str(stack.phone_port)
    )
    stack.appliance("route", "add", "Sales", "--forward", CARRIER_TARGET, "--trunk", "carrier")
    stack.appliance("route", "add", "VIP", "--endpoint", "desk-1")
    stack.appliance("number", "add", "+12025550105", "--route", "Sales")
    stack.appliance("number", "add", "+12025550106", "--route", "VIP")
    stack.appliance("config", "render")
    stack.desk_port = add_desk_phone(stack)
    install(stack, files)
    stack.start_asterisk()
    stack.start_controller()
    return stack


def test_hook_call_started_example_plugin_puts_a_vip_through_to_its_route_and_tags_it(
    stack: Stack, phone
):
    start(stack, {"vip_route": EXAMPLE})
    carrier, desk = phone(), phone(port=stack.desk_port)
    assert sipp_call(stack, "12025550105", VIP_CALLER, "Jane", talk_ms=300).returncode == 0
    (call,) = stack.finished()
    assert call["route_name"] == "VIP" and invited(desk.trace) == ["desk-1"]
    assert CARRIER_TARGET not in carrier.trace.read_text()
    wait_for(lambda: stack.query("SELECT tag, origin FROM call_tags"), what="the plugin's tag")
    rows = stack.query("SELECT call_id, tag, origin FROM call_tags")
    assert [tuple(r) for r in rows] == [(call["id"], "vip", "plugin:vip_route")]
    listed = stack.appliance("plugins", "list").stdout
    assert "vip_route\t" in listed and "call_started claims_route\tloaded" in listed


def test_hook_call_started_example_plugin_leaves_other_callers_on_the_compiled_route(
    stack: Stack, phone
):
    start(stack, {"vip_route": EXAMPLE})
    carrier = phone()
    assert sipp_call(stack, "12025550105", OTHER_CALLER, "Joe", talk_ms=300).returncode == 0
    (call,) = stack.finished()
    assert call["route_name"] == "Sales" and invited(carrier.trace) == [CARRIER_TARGET]
    assert stack.query("SELECT * FROM call_tags") == []


def test_hook_call_started_a_raising_and_a_hanging_plugin_leave_the_call_to_its_route(
    stack: Stack, phone
):
    start(stack, {"broken": BROKEN, "stuck": STUCK})
    carrier = phone()
    assert sipp_call(stack, "12025550105", VIP_CALLER, "Jane", talk_ms=300).returncode == 0
    (call,) = stack.finished()
    assert call["route_name"] == "Sales" and invited(carrier.trace) == [CARRIER_TARGET]
    assert stack.counter("agi_answered") == 1  # the dynamic step answered: the fallback
    assert stack.counter("plugin_failures") == 1
    assert stack.counter("plugin_timeouts") == 1


def test_a_refused_drop_in_file_is_listed_with_its_reason_and_the_others_run(stack: Stack, phone):
    start(stack, {"vip_route": EXAMPLE, "shared": BROKEN})
    (stack.data_dir.parent / "plugins.d" / "shared.py").chmod(0o666)
    # the controller, stopped (its FastAGI port free again) and started to load them anew
    assert stack.stop(stack.processes.pop()) == 0
    stack.start_controller()
    desk = phone(port=stack.desk_port)
    assert sipp_call(stack, "12025550105", VIP_CALLER, "Jane", talk_ms=300).returncode == 0
    assert stack.finished()[0]["route_name"] == "VIP" and invited(desk.trace) == ["desk-1"]
    listed = stack.appliance("plugins", "list").stdout
    assert "shared\t" in listed and "refused: is group- or world-writable" in listed
