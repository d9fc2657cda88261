"""The architecture's rules are import contracts (.importlinter, run by scripts/test): these
tests keep the contracts and the other lists of the same parts in step."""

from __future__ import annotations

import configparser
import tomllib
from pathlib import Path

import appliance

REPO = Path(__file__).resolve().parents[2]
PACKAGE = Path(appliance.__file__).parent


def contracts() -> configparser.ConfigParser:
    parsed = configparser.ConfigParser()
    parsed.read(REPO / ".importlinter")
    return parsed


def listed(section: str, option: str) -> list[str]:
    return contracts()[f"importlinter:contract:{section}"][option].split()


def test_the_pure_core_is_one_list_for_the_contract_and_for_strict_typing():
    overrides = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["mypy"]["overrides"]
    (strict,) = [o["module"] for o in overrides if o.get("disallow_untyped_defs")]
    assert sorted(listed("pure-core", "source_modules")) == sorted(strict)


def test_every_feature_is_held_by_each_rule_about_features():
    features = listed("features-independent", "modules")
    assert sorted(listed("features-not-web-or-cli", "source_modules")) == sorted(features)
    for rule, option in (("adapters", "forbidden_modules"), ("seam", "forbidden_modules")):
        assert set(features) <= set(listed(rule, option)), rule


def test_every_package_of_the_appliance_has_its_place():
    """A new package is a feature, an adapter or the web app (docs/architecture.md)."""
    packages = {f"appliance.{p.parent.name}" for p in PACKAGE.glob("*/__init__.py")}
    placed = {
        *listed("features-independent", "modules"),
        *listed("adapters", "source_modules"),
        "appliance.web",
    }
    assert packages == placed
