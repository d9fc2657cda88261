import pytest

from appliance.numbers import InvalidNumber, dialled_to_e164, to_e164


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+1 (202) 555-0123", "+12025550123"),
        ("202-555-0123", "+12025550123"),
        ("0044 20 7183 8750", "+442071838750"),
    ],
)
def test_to_e164(raw, expected):
    assert to_e164(raw) == expected


def test_to_e164_uses_the_region_for_national_numbers():
    assert to_e164("020 7183 8750", "GB") == "+442071838750"


@pytest.mark.parametrize("raw", ["", "555", "hello", "+1" + "9" * 80, "\x00\x01"])
def test_invalid_numbers_are_rejected_with_a_printable_message(raw):
    with pytest.raises(InvalidNumber) as info:
        to_e164(raw)
    assert all(ch.isprintable() for ch in str(info.value))


@pytest.mark.parametrize(
    ("dnid", "expected"),
    [
        ("+12025550123", "+12025550123"),
        ("12025550123", "+12025550123"),
        ("2025550123", "+12025550123"),
        ("442071838750", "+442071838750"),
        ("s", None),
        ("", None),
        ("1'; DROP TABLE calls", None),
    ],
)
def test_dialled_numbers_from_carriers(dnid, expected):
    assert dialled_to_e164(dnid) == expected
