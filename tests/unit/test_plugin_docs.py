"""Every hook is documented in the integrator guide and has a test named after it; the guide's
example plugin is the file the integration tests install."""

from __future__ import annotations

import ast
from pathlib import Path

from appliance.plugins import spec

REPO = Path(__file__).parents[2]
HOOKS = sorted(name for name in dir(spec) if hasattr(getattr(spec, name), "appliance_spec"))


def test_every_hook_is_documented_and_tested():
    guide = (REPO / "docs" / "integrator-guide.md").read_text()
    tests = {
        node.name
        for path in (REPO / "tests").rglob("test_*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef)
    }
    assert len(HOOKS) == 9
    for hook in HOOKS:
        assert f"| `{hook}` |" in guide, f"{hook} is not in the guide's hook table"
        assert any(t.startswith(f"test_hook_{hook}") for t in tests), f"{hook} has no test"


def test_the_guides_example_is_the_shipped_example_plugin():
    guide = (REPO / "docs" / "integrator-guide.md").read_text()
    shipped = (REPO / "docs" / "examples" / "plugins" / "vip_route.py").read_text()
    code = shipped.split('"""', 2)[2].strip()
    example = guide.split("### Example", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    assert example.strip() == code
