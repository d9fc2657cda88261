"""The guide's example plugin is the file the integration tests install (that every hook is
documented and tested: test_integrator_coverage.py)."""

from __future__ import annotations

from pathlib import Path

from appliance.plugins import spec

REPO = Path(__file__).parents[2]
HOOKS = sorted(name for name in dir(spec) if hasattr(getattr(spec, name), "appliance_spec"))


def test_the_guides_example_is_the_shipped_example_plugin():
    guide = (REPO / "docs" / "integrator-guide.md").read_text()
    shipped = (REPO / "docs" / "examples" / "plugins" / "vip_route.py").read_text()
    code = shipped.split('"""', 2)[2].strip()
    example = guide.split("### Example", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    assert example.strip() == code
