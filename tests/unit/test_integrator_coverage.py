"""Everything an integrator can hook into is documented and tested: every AGI script, plugin
hook and webhook event appears in the integrator guide and has a test named after it, and
every channel variable name the code uses is in the guide."""

import ast
import re
from pathlib import Path

import pytest

from appliance.calls import variables
from appliance.conversions.store import EVENTS
from appliance.integrator.agi import SCRIPTS
from appliance.plugins import spec

REPO = Path(__file__).resolve().parents[2]
GUIDE = (REPO / "docs" / "integrator-guide.md").read_text(encoding="utf-8")


def _test_names() -> set[str]:
    names = set()
    for path in (REPO / "tests").rglob("test_*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names |= {
            node.name
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.name.startswith("test_")
        }
    return names


TESTS = _test_names()
HOOKS = sorted(name for name in dir(spec) if hasattr(getattr(spec, name), f"{spec.PROJECT}_spec"))


def _tested(prefix: str) -> bool:
    return any(name == prefix or name.startswith(prefix + "_") for name in TESTS)


def test_the_lists_are_what_the_guide_promises():
    assert sorted(SCRIPTS) == ["lookup", "note", "route", "score", "tag", "track"]
    assert len(HOOKS) == 9 and len(EVENTS) == 7


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_every_agi_script_is_documented_and_tested(script):
    assert re.search(rf"`{script}\b", GUIDE), f"AGI script {script} is not in the guide"
    assert _tested(f"test_agi_{script}"), f"no test named test_agi_{script}..."


@pytest.mark.parametrize("hook", HOOKS)
def test_every_plugin_hook_is_documented_and_tested(hook):
    assert f"| `{hook}` |" in GUIDE, f"hook {hook} is not in the guide's hook table"
    assert _tested(f"test_hook_{hook}"), f"no test named test_hook_{hook}..."


@pytest.mark.parametrize("event", EVENTS)
def test_every_webhook_event_is_documented_and_tested(event):
    assert f"`{event}`" in GUIDE, f"webhook event {event} is not in the guide"
    prefix = "test_event_" + event.replace(".", "_")
    assert _tested(prefix), f"no test named {prefix}..."


@pytest.mark.parametrize("name", sorted(variables.VARIABLES.values()))
def test_every_channel_variable_is_documented(name):
    assert f"`{name}`" in GUIDE, f"{name} is not in the guide"
