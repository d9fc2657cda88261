"""What a lead keeps of a submitted form: never passwords, card numbers or security codes."""

import json

import pytest

from appliance.attribution.leads import clean_fields, looks_like_card
from appliance.attribution.touch import BadInput
from tests.hostile import STRINGS


def test_ordinary_fields_are_kept_and_secrets_are_not():
    kept = json.loads(
        clean_fields(
            {
                "name": "Ada <b>Lovelace</b>",
                "email": "ada@example.com",
                "message": "Call me\nabout   the roof",
                "password": "hunter2",
                "card_number": "4111 1111 1111 1111",
                "cvv": "123",
                "notes": "my card is 4111-1111-1111-1111 thanks",
                "order": "1234567890123",  # 13 digits, fails Luhn: not a card
                "empty": "",
            }
        )
    )
    assert kept == {
        "name": "Ada <b>Lovelace</b>",
        "email": "ada@example.com",
        "message": "Call me about the roof",
        "order": "1234567890123",
    }


def test_card_numbers_are_found_by_their_check_digit():
    assert looks_like_card("5500 0000 0000 0004") and looks_like_card("378282246310005")
    assert not looks_like_card("5500 0000 0000 0005") and not looks_like_card("+1 202 555 0123")


@pytest.mark.parametrize("raw", [None, [], "x", {"a": 1}, {"a": ["b"]}])
def test_what_is_not_a_form_is_refused(raw):
    with pytest.raises(BadInput):
        clean_fields(raw)


def test_big_forms_are_cut_to_size_rather_than_lost():
    kept = json.loads(clean_fields({f"f{i}": "x" * 2000 for i in range(40)}))
    assert len(kept) == 30 and {len(v) for v in kept.values()} == {1000}


@pytest.mark.parametrize(
    "name",
    ["cc_exp", "cc-name", "pin_code", "PIN", "otp", "one_time_code", "routing_number",
     "account_number", "dob", "date_of_birth", "tax_id", "sort code", "passport_no",
     "card_expiry", "new-password", "security_answer"],
)  # fmt: skip
def test_names_of_secrets_are_dropped(name):
    assert json.loads(clean_fields({name: "value", "shipping_address": "1 Main St"})) == {
        "shipping_address": "1 Main St"
    }


@pytest.mark.parametrize(
    "value", ["4111.1111.1111.1111", "4111/1111/1111/1111", "my ssn is 123-45-6789"]
)
def test_values_that_are_secrets_are_dropped_whatever_their_name(value):
    assert json.loads(clean_fields({"note": value})) == {}


def test_a_lone_surrogate_is_kept_inert_and_can_be_encoded():
    kept = clean_fields({"name": "Ada\ud800"})
    kept.encode("utf-8")
    assert json.loads(kept) == {"name": "Ada"}


@pytest.mark.parametrize("text", STRINGS)
def test_hostile_values_are_refused_or_kept_as_inert_text(text):
    try:
        kept = json.loads(clean_fields({"message": text}))
    except BadInput:
        return
    assert all(ord(c) >= 32 for c in kept.get("message", ""))
