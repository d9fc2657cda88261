"""Who a request is about: numbers in any format, e-mail addresses, visitor ids; hostile
text is refused in one line or matches nothing."""

from __future__ import annotations

import pytest

from appliance.privacy.subject import InvalidSubject, Kind, parse, same_number, strings_in
from tests.hostile import STRINGS


@pytest.mark.parametrize(
    "typed", ["+13125550111", "(312) 555-0111", "312.555.0111", "1 312 555 0111", "0013125550111"]
)
def test_a_number_in_any_format_is_one_subject(typed):
    subject = parse(typed)
    assert (subject.kind, subject.value, str(subject)) == (Kind.NUMBER, "+13125550111",
                                                           "+13125550111")  # fmt: skip


@pytest.mark.parametrize(
    "stored", ["+13125550111", "13125550111", "3125550111", "+1 (312) 555-0111", "001 312 555 0111"]
)
def test_stored_forms_of_the_number_match(stored):
    assert parse("+13125550111").matches(stored)


@pytest.mark.parametrize("stored", ["+13125550112", "3125550", "+443125550111", "", "anonymous"])
def test_other_numbers_do_not_match(stored):
    assert not parse("+13125550111").matches(stored)


def test_a_national_form_with_a_trunk_prefix_matches_its_own_country_only():
    assert same_number("020 7123 4567", "+442071234567")
    assert not same_number("3125550111", "+443125550111")  # a valid number of the region


def test_email_and_visitor():
    assert parse(" Pat@Example.COM ").value == "pat@example.com"
    assert parse("pat@example.com").matches("PAT@example.com ")
    visitor = parse("VISITOR:" + "AB" * 16)
    assert (visitor.kind, str(visitor)) == (Kind.VISITOR, "visitor:" + "ab" * 16)
    assert not visitor.matches("cd" * 16)


@pytest.mark.parametrize("text", ["", " ", "visitor:", "visitor:xyz", "a@b", "@example.com",
                                  "pat@@example.com", "12", "x" * 300])  # fmt: skip
def test_what_names_no_one_is_refused_in_one_line(text):
    with pytest.raises(InvalidSubject) as refused:
        parse(text)
    assert "\n" not in str(refused.value) and len(str(refused.value)) < 200


@pytest.mark.parametrize("text", STRINGS)
def test_hostile_strings_are_refused_or_a_plain_subject(text):
    try:
        subject = parse(text)
    except InvalidSubject as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 300
        return
    assert str(subject).isprintable() and len(str(subject)) <= 254


def test_every_string_in_a_payload_is_seen():
    payload = {"data": {"caller_number": "+13125550111", "fields": {"phone": "x"}, "n": 3},
               "list": [{"lead_id": 7}, "loose"], "none": None}  # fmt: skip
    assert sorted(strings_in(payload)) == [
        ("caller_number", "+13125550111"), ("lead_id", "7"), ("list", "loose"), ("n", "3"),
        ("phone", "x")
    ]  # fmt: skip


def test_the_quick_look_never_misses_what_the_full_read_would_find():
    french = parse("+33 6 12 34 56 78")
    assert french.may_be_in('{"tel": "06 12 34 56 78"}') and french.matches("06 12 34 56 78")
    assert not french.may_be_in('{"tel": "06 12 34 56 79"}')
    unicode_mail = parse("zoë@example.com")
    assert unicode_mail.may_be_in('{"email": "Zoë@Example.com"}')
    assert unicode_mail.may_be_in('{"email": "zo\\u00eb@example.com"}')  # as json.dumps writes it
    assert not unicode_mail.may_be_in('{"email": "zoe@example.com"}')
