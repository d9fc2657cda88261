"""The restrict list, pure: numbers normalised, caller IDs matched in any form, and the
compiled dialplan that marks a restricted caller without an extra step."""

import random
import re

import phonenumbers
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


@pytest.mark.parametrize(
    "caller",
    [
        "011442071234567",  # a US carrier's spelling of a call from abroad
        "+44 (0) 20 7123 4567",
        "0044 (0)20 7123 4567",
        "011 44 (0) 20 7123 4567",
        "00442071234567",
        "tel:+44-20-7123-4567",
    ],
)
def test_a_caller_id_from_abroad_matches_in_the_carriers_forms(caller):
    assert restrict.is_restricted(caller, {"+442071234567"})


@pytest.mark.parametrize(
    "caller",
    ["", None, "+13125550112", "anonymous", "${SHELL(id)}", "+44 20 7123 4568", "٠٢٠٧١٢٣٤٥٦٧"],
)
def test_other_callers_do_not(caller):
    assert not restrict.is_restricted(caller, {"+13125550111"})


def test_the_digit_forms_a_caller_id_filters_down_to():
    assert restrict.caller_forms("+442071234567") == (
        "442071234567",
        "2071234567",
        "02071234567",
        "4402071234567",
        "00442071234567",
        "004402071234567",
        "011442071234567",
        "0114402071234567",
    )
    assert restrict.caller_forms("+13125550111") == (  # '1' is the country code, no trunk
        "13125550111",
        "3125550111",
        "0013125550111",
        "01113125550111",
    )


def restricted_forms(text: str, account: int) -> list[str]:
    block = text.split(f"[{var.RESTRICTED_CTX}{account}]\n", 1)[1].split("\n\n", 1)[0]
    return re.findall(r"^exten => (\d+),1,NoOp\(\)$", block, re.M)


def test_each_account_gets_a_context_of_its_callers_digit_forms():
    text = compiled()
    assert restricted_forms(text, 4) == list(restrict.caller_forms("+13125550111"))
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


# the Python check and the dialplan are one definition ------------------------------------------
LISTED = {  # numbers in several countries, with and without a national trunk prefix
    "US": ("+13125550111", "+12025550123"),
    "GB": ("+442071234567", "+447400123456"),
    "DE": ("+4930123456", "+4915123456789"),
    "FR": ("+33123456789", "+33612345678"),
    "AU": ("+61212345678", "+61412345678"),
    "IT": ("+390212345678",),  # a leading zero that is no trunk prefix
    "RU": ("+74951234567",),  # trunk prefix 8
    "HU": ("+3612345678",),  # trunk prefix 06
}


def spellings(e164: str, rng: random.Random) -> set[str]:
    """Caller IDs a carrier or a hostile caller may send for (or near) this number: its
    formats, international prefixes, a trunk prefix in brackets, noise between the digits,
    and near misses (a digit more, less or changed, other countries' prefixes)."""
    parsed = phonenumbers.parse(e164)
    country = str(parsed.country_code)
    significant = phonenumbers.national_significant_number(parsed)
    formats = [
        phonenumbers.format_number(parsed, kind)
        for kind in (
            phonenumbers.PhoneNumberFormat.E164,
            phonenumbers.PhoneNumberFormat.INTERNATIONAL,
            phonenumbers.PhoneNumberFormat.NATIONAL,
            phonenumbers.PhoneNumberFormat.RFC3966,
        )
    ]
    for region in ("US", "GB", "AU", "JP", "RU"):  # dialled out of other countries
        formats.append(phonenumbers.format_out_of_country_calling_number(parsed, region))
    bodies = [significant, *(trunk + significant for trunk in ("0", "8", "06", "1"))]
    for prefix in ("", "+", "00", "011", "0011", "810", "010", "1", "+0"):
        for body in bodies:
            formats.append(f"{prefix}{country}{body}")
            formats.append(
                f"{prefix}{country} ({body[: len(body) - len(significant)]}) {significant}"
            )
        formats.append(prefix + significant)
    digits = "".join(ch for ch in e164 if ch.isdigit())
    formats += [digits[:-1], digits + "0", digits[:-1] + str((int(digits[-1]) + 1) % 10)]
    found = set(formats)
    for text in formats:  # the same digits between noise a caller ID may hold
        noisy = "".join(
            ch + rng.choice(["", " ", "-", ".", "(", ")", "$", ",", "\n"]) for ch in text
        )
        found.add(noisy)
    return found


def test_every_caller_id_the_check_accepts_is_one_the_dialplan_matches():
    rng = random.Random(20240611)
    listed = tuple(e164 for numbers in LISTED.values() for e164 in numbers)
    compiled_forms = set(restricted_forms(compiled(restricted={4: listed}), 4))
    accepted = 0
    for e164 in listed:
        assert set(restrict.caller_forms(e164)) <= compiled_forms
        for caller in spellings(e164, rng):
            if restrict.is_restricted(caller, {e164}):
                accepted += 1
                assert restrict.caller_digits(caller) in compiled_forms, (e164, caller)
                assert restrict.is_restricted(caller, listed)
            else:
                assert restrict.caller_digits(caller) not in restrict.caller_forms(e164)
        for form in restrict.caller_forms(e164):
            assert restrict.is_restricted(form, {e164})
        for prefix in ("", "+", "00", "011"):  # how carriers present a call from abroad
            assert restrict.is_restricted(prefix + e164[1:], {e164})
        parsed = phonenumbers.parse(e164)
        national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
        assert restrict.is_restricted(national, {e164})
        if national.startswith("0"):  # '+44 (0) 20 7123 4567'
            trunked = f"+{parsed.country_code} (0) {national[1:]}"
            assert restrict.is_restricted(trunked, {e164}), trunked
    assert accepted > 30 * len(listed)


def test_every_region_example_number_is_matched_in_its_international_forms():
    """phonenumbers' example number of every region: E.164 digits, 00 and 011 before it,
    and the national spelling, all match, and all are among the compiled forms."""
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        example = phonenumbers.example_number(region)
        if example is None:
            continue
        e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
        national = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL)
        forms = set(restrict.caller_forms(e164))
        for caller in (e164, "00" + e164[1:], "011" + e164[1:], national):
            assert restrict.is_restricted(caller, {e164}), (region, caller)
            assert restrict.caller_digits(caller) in forms
