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


@pytest.mark.parametrize(
    "raw",
    [None, [], "x", {"a": 1}, {"a": ["b"]}, {"a": "x" * 1001}, {f"f{i}": "x" for i in range(31)}],
)
def test_what_is_not_a_form_is_refused(raw):
    with pytest.raises(BadInput):
        clean_fields(raw)


@pytest.mark.parametrize("text", STRINGS)
def test_hostile_values_are_refused_or_kept_as_inert_text(text):
    try:
        kept = json.loads(clean_fields({"message": text}))
    except BadInput:
        return
    assert all(ord(c) >= 32 for c in kept.get("message", ""))
