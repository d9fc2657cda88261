"""The restrict list, pure: numbers normalised, caller IDs matched in any form, and the
compiled dialplan that marks a restricted caller without an extra step."""

import re

import pytest

from appliance.calls import variables as var
from appliance.calls.dialplan import compile_routes
from appliance.calls.model import NumberInfo, RoutingTable
from appliance.calls.routing import RoutePlan
from appliance.privacy import restrict
from tests.hostile import STRINGS
from tests.unit.test_dialplan import DESK, LINE, SETTINGS, context

SPRING = RoutePlan(id=5, name="Spring", account_id=4, targets=DESK)
DEFAULT = RoutePlan(id=6, name="Default", account_id=1, targets=DESK)
LIST = {4: ("+13125550111",), 1: ("+442071234567",)}
CHECK = (
    f"{var.RESTRICTED}=${{DIALPLAN_EXISTS({var.RESTRICTED_CTX}4,"
    "${FILTER(0-9,${CALLERID(num)})},1)}"
)


def compiled(restricted=LIST, default=DEFAULT) -> str:
    table = RoutingTable(
        (NumberInfo(3, 4, "+12025550123", SPRING),), default, restricted=restricted
    )
    text = compile_routes(table, SETTINGS).text
    assert all(LINE.match(line) for line in text.splitlines()), text
    return text


@pytest.mark.parametrize("raw", ["+1 (312) 555-0111", "312.555.0111", "0013125550111"])
def test_a_number_in_any_format_is_kept_as_e164(raw):
    assert restrict.normalised(raw) == "+13125550111"


@pytest.mark.parametrize("raw", [*STRINGS, "+1-800-FLOWERS", "12"])
def test_anything_else_is_one_clear_line(raw):
    try:
        restrict.normalised(raw)
    except restrict.InvalidNumber as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 120
    else:  # a few hostile strings are valid numbers ("tel:+1...", "0012025550123")
        assert re.fullmatch(r"\+[0-9]{8,15}", restrict.normalised(raw))


@pytest.mark.parametrize(
    "caller", ["+13125550111", "13125550111", "3125550111", "0013125550111", "(312) 555-0111"]
)
def test_a_caller_id_matches_in_every_form(caller):
    assert restrict.is_restricted(caller, {"+13125550111"})


@pytest.mark.parametrize("caller", ["+442071234567", "442071234567", "02071234567", "2071234567"])
def test_a_caller_id_matches_as_the_dialplan_does_whatever_the_default_region(caller):
    assert restrict.is_restricted(caller, {"+13125550111", "+442071234567"})


@pytest.mark.parametrize("caller", ["", None, "+13125550112", "anonymous", "${SHELL(id)}"])
def test_other_callers_do_not(caller):
    assert not restrict.is_restricted(caller, {"+13125550111"})


def test_the_digit_forms_a_caller_id_filters_down_to():
    assert restrict.caller_forms("+442071234567") == (
        "442071234567",
        "2071234567",
        "02071234567",
        "00442071234567",
    )


def restricted_forms(text: str, account: int) -> list[str]:
    block = text.split(f"[{var.RESTRICTED_CTX}{account}]\n", 1)[1].split("\n\n", 1)[0]
    return re.findall(r"^exten => (\d+),1,NoOp\(\)$", block, re.M)


def test_each_account_gets_a_context_of_its_callers_digit_forms():
    text = compiled()
    assert restricted_forms(text, 4) == ["13125550111", "3125550111", "0013125550111"]
    assert restricted_forms(text, 1) == list(restrict.caller_forms("+442071234567"))


def test_the_dialled_number_step_marks_the_caller_without_another_step():
    text = compiled()
    spring = text.split("exten => 12025550123,1,", 1)[1].split("exten =>", 1)[0]
    assert spring.count("same =>") == 2  # as without a list: tag, then the route
    assert CHECK in spring
    default = text.split("exten => _X.,1,", 1)[1]
    assert f"DIALPLAN_EXISTS({var.RESTRICTED_CTX}1," in default.split("exten =>", 1)[0]


def test_the_caller_id_is_filtered_to_digits_before_the_lookup():
    """Whatever a caller sends as caller ID (',', ')', '$', newlines) reaches the function
    as digits only: FILTER runs on the value, never on dialplan text."""
    for line in compiled().splitlines():
        if "CALLERID(num)" in line:
            assert "${FILTER(0-9,${CALLERID(num)})}" in line
            assert line.count("CALLERID") == 1


def test_no_list_no_lookup():
    text = compiled(restricted={})
    assert "DIALPLAN_EXISTS" not in text and var.RESTRICTED_CTX not in text
    other = compiled(restricted={9: ("+13125550111",)})
    assert "DIALPLAN_EXISTS" not in other.split(f"[{var.RESTRICTED_CTX}9]")[0]


def test_the_route_event_tells_the_controller_what_the_dialplan_found():
    (report,) = [step for step in context(compiled(), "appliance-connect-5") if "UserEvent" in step]
    assert report.endswith(f"Restricted: ${{{var.RESTRICTED}}})")


def test_a_default_route_of_no_account_looks_nothing_up():
    text = compiled(default=RoutePlan(id=6, name="Default", targets=DESK))
    assert "DIALPLAN_EXISTS" not in text.split("exten => _X.,1,", 1)[1]
