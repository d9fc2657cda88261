"""What brought a visitor to a site, pure: from the landing page's address and the referrer,
the source, medium, campaign and keyword (UTM parameters first, then ad click ids, then the
referring site), the way analytics tools classify a visit.

Everything here comes from the internet: it is cut to size and kept as inert text."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit, urlunsplit

MAX_URL = 2000
MAX_PAGE = 512  # characters kept of a page of a visit's timeline
# an ad click id as the platforms make them; anything else is not kept (it would reach their
# APIs and import files, and a leading = + - @ makes a spreadsheet formula)
CLICK_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,255}")
CLICK_IDS = {  # click id -> (source, medium) it implies without UTM parameters
    "gclid": ("google", "cpc"),
    "gbraid": ("google", "cpc"),
    "wbraid": ("google", "cpc"),
    "msclkid": ("bing", "cpc"),
    "fbclid": ("facebook", "social"),
}
SEARCH = ("google", "bing", "duckduckgo", "yahoo", "ecosia", "baidu", "yandex", "startpage")
SOCIAL = {
    "facebook.com": "facebook",
    "instagram.com": "instagram",
    "t.co": "twitter",
    "twitter.com": "twitter",
    "x.com": "twitter",
    "linkedin.com": "linkedin",
    "youtube.com": "youtube",
    "reddit.com": "reddit",
    "tiktok.com": "tiktok",
    "pinterest.com": "pinterest",
}


class BadInput(ValueError):
    """A value the tracking endpoints refuse; the message says which and why."""


@dataclass(frozen=True)
class Touch:
    landing_page: str
    referrer: str | None
    source: str
    medium: str | None
    campaign: str | None = None
    keyword: str | None = None
    click_id_type: str | None = None
    click_id: str | None = None


HIDDEN = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})  # controls, formats, lone surrogates, breaks


def inert(text: str, limit: int) -> str:
    """Text as it may be stored (and encoded: no lone surrogate): no control or format
    characters, at most `limit` long."""
    kept = "".join(" " if unicodedata.category(c) in HIDDEN else c for c in text[:limit])
    return " ".join(kept.split())


def web_address(text: object, what: str) -> str:
    """An http(s) address of at most MAX_URL characters, or BadInput."""
    if not isinstance(text, str) or len(text) > MAX_URL:
        raise BadInput(f"{what}: not an address of at most {MAX_URL} characters")
    try:
        parts = urlsplit(text)
        hostname = parts.hostname
    except ValueError:  # a broken [IPv6] host
        raise BadInput(f"{what}: not an http or https address") from None
    if parts.scheme not in ("http", "https") or not hostname:
        raise BadInput(f"{what}: not an http or https address")
    if inert(text, MAX_URL) != text or " " in text:
        raise BadInput(f"{what}: contains spaces or control characters")
    return text


def classify(landing: str, referrer: str | None) -> Touch:
    """The touch a visit came with (addresses already checked by web_address)."""
    query = parse_qs(urlsplit(landing).query)  # the address is at most MAX_URL long

    def param(name: str, limit: int = 120) -> str | None:
        values = query.get(name)
        return inert(values[0], limit) or None if values else None

    click = next(
        (
            (name, value)
            for name in CLICK_IDS
            if CLICK_ID.fullmatch(value := param(name, 999) or "")
        ),
        (None, None),
    )
    host = _host(referrer)
    if host and host == _host(landing):
        host = None  # from the site itself: not a referral
    if param("utm_source"):
        source, medium = param("utm_source") or "", param("utm_medium", 60)
    elif click[0]:
        source, medium = CLICK_IDS[click[0]]
    elif host:
        source, medium = _referral(host)
    else:
        source, medium = "(direct)", "(none)"
    return Touch(
        landing_page=stored_page(landing),
        referrer=stored_referrer(referrer),
        source=source,
        medium=medium,
        campaign=param("utm_campaign"),
        keyword=param("utm_term"),
        click_id_type=click[0],
        click_id=click[1],
    )


MARKETING = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", *CLICK_IDS)


def stored_page(address: str, limit: int = MAX_URL) -> str:
    """A page's address as it is kept: no fragment and, of its query, only the campaign and
    click parameters (a query can carry reset tokens, e-mail addresses, searches); at most
    `limit` characters, as the database counts them, after the query is encoded again (which
    can make it longer than it came)."""
    if "?" in address or "#" in address:
        parts = urlsplit(address)
        kept = [(k, v) for k, v in parse_qsl(parts.query) if k in MARKETING]
        address = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(kept), ""))
    if len(address) <= limit:
        return address
    return HALF_ESCAPE.sub("", address[:limit])


HALF_ESCAPE = re.compile(r"%[0-9A-Fa-f]?$")  # a percent escape the cut split


def stored_referrer(address: str | None) -> str | None:
    """Where a visitor came from, without its query or fragment (a search's words)."""
    if not address:
        return None
    parts = urlsplit(address)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _host(address: str | None) -> str | None:
    if not address:
        return None
    host = urlsplit(address).hostname or ""
    return host.removeprefix("www.") or None


def _referral(host: str) -> tuple[str, str]:
    labels = host.split(".")
    for engine in SEARCH:
        if engine in labels[:-1]:
            return engine, "organic"
    for domain, name in SOCIAL.items():
        if host == domain or host.endswith("." + domain):
            return name, "social"
    return inert(host, 120), "referral"
