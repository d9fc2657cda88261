"""How a visit's source, medium, campaign and keyword are read from its landing page and
referrer, and what the tracking endpoints refuse."""

import re
import urllib.parse

import pytest

from appliance.attribution.touch import (
    MAX_PAGE,
    MAX_URL,
    BadInput,
    Touch,
    classify,
    inert,
    stored_page,
    web_address,
)
from tests.hostile import STRINGS

SITE = "https://www.example.com/"


@pytest.mark.parametrize(
    ("landing", "referrer", "expected"),
    [
        (
            SITE + "?utm_source=newsletter&utm_medium=email&utm_campaign=spring&utm_term=roof",
            None,
            ("newsletter", "email", "spring", "roof", None),
        ),
        (SITE + "?gclid=Cj0KCQ", "https://www.google.com/", ("google", "cpc", None, None, "gclid")),
        (SITE + "?msclkid=abc", None, ("bing", "cpc", None, None, "msclkid")),
        (
            SITE + "?fbclid=IwAR",
            "https://m.facebook.com/",
            ("facebook", "social", None, None, "fbclid"),
        ),
        (SITE, "https://www.google.co.uk/search", ("google", "organic", None, None, None)),
        (SITE, "https://duckduckgo.com/", ("duckduckgo", "organic", None, None, None)),
        (SITE, "https://t.co/x1", ("twitter", "social", None, None, None)),
        (SITE, "https://blog.example.org/post", ("blog.example.org", "referral", None, None, None)),
        (SITE + "page2", SITE, ("(direct)", "(none)", None, None, None)),  # within the site
        (SITE, None, ("(direct)", "(none)", None, None, None)),
        # UTM wins over the click id, the click id is still kept
        (SITE + "?utm_source=ads&gclid=X", None, ("ads", None, None, None, "gclid")),
    ],
)
def test_a_visit_is_classified_like_analytics_tools_do(landing, referrer, expected):
    touch = classify(landing, referrer)
    assert (touch.source, touch.medium, touch.campaign, touch.keyword, touch.click_id_type) == (
        expected
    )
    assert touch.landing_page == landing and touch.referrer == referrer


@pytest.mark.parametrize("value", ["=HYPERLINK(1)", "-1+1", "a b", "x" * 257, "@SUM", ""])
def test_click_ids_that_are_not_click_ids_are_not_kept(value):
    touch = classify(SITE + "?gclid=" + urllib.parse.quote(value), None)
    assert (touch.click_id_type, touch.click_id, touch.source) == (None, None, "(direct)")


def test_parameters_are_kept_as_inert_text_of_bounded_size():
    touch = classify(SITE + "?utm_source=%3Cscript%3E%0Aalert(1)&utm_campaign=" + "x" * 500, None)
    assert touch == Touch(
        SITE + touch.landing_page[len(SITE) :], None, "<script> alert(1)", None, "x" * 120
    )
    assert inert("a\u202eb\x00c\u2028d", 10) == "a b c d"


@pytest.mark.parametrize("text", STRINGS)
def test_hostile_strings_are_refused_or_kept_inert(text):
    try:
        address = web_address(text, "url")
    except BadInput as refused:
        assert str(refused).startswith("url: ")
        return
    touch = classify(address, None)
    assert all(ord(c) >= 32 for c in touch.source + (touch.campaign or ""))


@pytest.mark.parametrize(
    "text",
    [
        "javascript:alert(1)",
        "data:text/html,x",
        "//example.com",
        "https://",
        "https://a b.com/",
        "https://example.com/\n",
        "x" * 3000,
        42,
        None,
    ],
)
def test_addresses_that_are_not_web_pages_are_refused(text):
    with pytest.raises(BadInput):
        web_address(text, "url")


def test_only_campaign_and_click_parameters_of_a_page_are_kept():
    touch = classify(
        SITE + "reset?token=s3cret&email=a%40b.c&utm_source=mail&gclid=Cj0#access_token=x",
        "https://www.google.com/search?q=my+illness",
    )
    assert touch.landing_page == SITE + "reset?utm_source=mail&gclid=Cj0"
    assert touch.referrer == "https://www.google.com/search"
    assert (touch.source, touch.click_id) == ("mail", "Cj0")


def test_a_lone_surrogate_in_an_address_is_refused():
    with pytest.raises(BadInput):
        web_address(SITE + "\ud800", "url")


def test_pages_with_many_parameters_are_still_classified():
    many = "&".join(f"f{i}=1" for i in range(200))
    assert classify(f"{SITE}?{many}&utm_source=x", None).source == "x"


@pytest.mark.parametrize(
    "address",
    [
        SITE + "?utm_source=" + "ü" * 1960,  # 2000 characters that encode to 11,000
        SITE + "?utm_campaign=" + "%" * 1960,
        SITE + "?gclid=" + "€" * 1960 + "#x",
        SITE + "é" * 1960,
        SITE + "?" + "&".join(["utm_term=ü"] * 170),
    ],
)
def test_a_kept_page_fits_its_column_however_its_query_is_encoded_again(address):
    """The query is encoded again when it is kept (ü becomes %C3%BC): what comes in at
    2000 characters must still fit the 2000 of the column (PostgreSQL counts characters and
    refuses a longer value), and a timeline page its 512."""
    address = web_address(address, "url")
    assert classify(address, None).landing_page == stored_page(address)
    for limit in (MAX_URL, MAX_PAGE):
        kept = stored_page(address, limit)
        assert 0 < len(kept) <= limit and kept.startswith(SITE)
        assert not re.search(r"%[0-9A-Fa-f]?$", kept)  # never half a percent escape at the end
    assert stored_page(SITE + "short?utm_source=x", MAX_PAGE) == SITE + "short?utm_source=x"
