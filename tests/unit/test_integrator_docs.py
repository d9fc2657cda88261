"""The integrator guide's AGI section says what the code does: a heading per script and a
variables table that matches what each script sets (agi.SETS) and variables.py's names."""

from __future__ import annotations

import re

from appliance.calls import variables as var
from appliance.integrator import agi
from tests.harness import REPO

GUIDE = (REPO / "docs" / "integrator-guide.md").read_text("utf-8")
SECTION = GUIDE.split("## AGI scripts for your dialplan", 1)[1].split("\n## ", 1)[0]


def test_every_agi_script_has_its_heading_and_nothing_else_does():
    headings = re.findall(r"^### `([a-z]+)`$", SECTION, re.M)
    assert sorted(headings) == sorted(agi.SCRIPTS)


def test_the_variables_table_is_what_the_scripts_set():
    table = SECTION.split("### Variables", 1)[1].split("\n###", 1)[0]
    rows = re.findall(r"^\| `(APPLIANCE_[A-Z_]+)` \| ([a-z, ]+) \|", table, re.M)
    documented = {name: set(scripts.split(", ")) for name, scripts in rows}
    expected: dict[str, set[str]] = {}
    for script, names in agi.SETS.items():
        for name in names:
            expected.setdefault(name, set()).add(script)
    assert documented == expected
    assert set(documented) <= set(var.VARIABLES.values())
    for name in (var.STATUS, var.READY):
        assert f"`{name}`" in SECTION


def test_every_status_the_scripts_set_is_documented():
    code = "".join(
        (REPO / "appliance" / "integrator" / f).read_text("utf-8")
        for f in ("args.py", "context.py", "track.py", "lookup.py", "annotate.py", "route.py")
    )
    reasons = set(re.findall(r'Refused\(\s*"([a-z-]+)"', code))
    reasons |= set(re.findall(r'_refusing\(\s*"([a-z-]+)"', code))
    table = SECTION.split("| status | meaning |", 1)[1].split("\n\n", 1)[0]
    documented = set(re.findall(r"`([a-z-]+)`", table))
    assert reasons and reasons <= documented
