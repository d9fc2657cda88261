"""What plugins return is untrusted: every value is taken whole or refused in one line."""

from __future__ import annotations

import pytest

from appliance.calls import variables as var
from appliance.plugins import checks
from appliance.plugins.checks import PluginValueError
from tests.hostile import STRINGS

ALLOWED = {7, 8}


def test_a_valid_route_answer_is_taken_whole():
    answer = checks.route_answer(
        {"route": 8, "variables": {"VIP_LEVEL": "gold", "TIER": 2}, "tags": ["VIP", "x"]},
        ALLOWED,
    )
    assert answer == checks.RouteAnswer(8, {"VIP_LEVEL": "gold", "TIER": "2"}, ("vip", "x"))
    assert checks.route_answer(None, ALLOWED) == checks.RouteAnswer()


@pytest.mark.parametrize(
    "value",
    [
        {"route": 9},  # another account's route, or none at all
        {"route": "8"},
        {"route": True},
        {"route": 8.0},
        {"route": -1},
        {"dial": "PJSIP/+19005550100@carrier"},
        {"variables": {"APPLIANCE_CONNECT": "7"}},
        {"variables": {var.READY: "1"}},
        {"variables": {"DYNAMIC_FEATURES": "blindxfer"}},
        {"variables": {"GOTO_ON_BLINDXFR": "from-internal^s^1"}},
        {"variables": {"PARKINGLOT": "other"}},
        {"variables": {"CDR(userfield)": "x"}},
        {"variables": {"lower": "x"}},
        {"variables": {"A" * 41: "x"}},
        {"variables": {"OK": "line\nbreak"}},
        # a caller's name passed on: would split the arguments of Dial(...,${OK}) or expand
        {"variables": {"OK": "Jane,,,G(evil^s^1)"}},
        {"variables": {"OK": "${SHELL(id)}"}},
        {"variables": {"OK": "$[1+1]"}},
        {"variables": {"OK": "a|b"}},
        {"variables": {"OK": "a)"}},
        {"variables": {"OK": "x" * 201}},
        {"variables": {"OK": ["list"]}},
        {"variables": {f"V{i}": "x" for i in range(11)}},
        {"variables": ["OK"]},
        {"tags": ["not a tag!"]},
        {"tags": 5},
        "route 8",
        ["route", 8],
    ],
)
def test_a_hostile_route_answer_is_refused_in_one_line(value):
    with pytest.raises(PluginValueError) as caught:
        checks.route_answer(value, ALLOWED)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("text", STRINGS)
def test_hostile_strings_as_variable_names_values_tags_and_extra_fields(text):
    for check in (
        lambda: checks.clean_variable(text, "x"),
        lambda: checks.clean_variable("OK", text),
        lambda: checks.clean_tags([text]),
        lambda: checks.clean_extra({text: 1}),
        lambda: checks.analysis_answer({"note": text, "points": text}),
    ):
        try:
            taken = check()
        except PluginValueError as exc:
            assert "\n" not in str(exc) and len(str(exc)) < 300
            continue
        assert "\n" not in repr(taken) or "\\n" in repr(taken)


@pytest.mark.parametrize("name", sorted(var.VARIABLES.values()))
def test_the_appliances_own_variables_are_never_set_by_a_plugin(name):
    with pytest.raises(PluginValueError, match="reserved"):
        checks.clean_variable(name, "1")


def test_analysis_answers_are_checked_by_the_annotation_rules():
    answer = checks.analysis_answer({"tags": "hot, lead", "points": -7, "note": "a\nb"})
    assert answer == checks.AnalysisAnswer(("hot", "lead"), -7, "a b")
    for bad in ({"points": 101}, {"points": True}, {"points": 1.5}, {"score": 5}, {"note": ""}):
        with pytest.raises(PluginValueError):
            checks.analysis_answer(bad)


def test_conversion_answers_veto_or_add_plain_extra_fields():
    assert checks.conversion_answer({"veto": True}).veto
    assert checks.conversion_answer({"extra": {"crm_id": "A-1", "n": [1, 2]}}).extra == {
        "crm_id": "A-1",
        "n": [1, 2],
    }
    for bad in (
        {"veto": "yes"},
        {"extra": {"x": {"nested": "dict"}}},
        {"extra": {"x": float("nan")}},
        {"extra": {"x": "y" * 3000}},
        {"extra": {f"k{i}": 1 for i in range(21)}},
        {"extra": {"x": object()}},
        {"send_to": "elsewhere"},
    ):
        with pytest.raises(PluginValueError):
            checks.conversion_answer(bad)
