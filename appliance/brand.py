"""White label: an agency's name, colour and logo, shown to its users and its clients' users.
Every value is checked here, so that what reaches a page or a stylesheet is plain data."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy.orm import Session

from appliance import audit
from appliance.db.models import Account

COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
NAME_MAX = 80
LOGO_MAX = 200 * 1024
# raster images only: an SVG can carry script
LOGO_TYPES = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg"}
DEFAULT_NAME = "Call tracking"
DEFAULT_COLOUR = "#1f5fbf"


class BrandRejected(ValueError):
    """A name, colour or logo that cannot be used; the message says why."""


@dataclass(frozen=True)
class Brand:
    name: str = DEFAULT_NAME
    colour: str = DEFAULT_COLOUR
    has_logo: bool = False


def agency_of(session: Session, account_id: int) -> Account | None:
    account = session.get(Account, account_id)
    while account is not None and account.parent_id is not None:
        account = session.get(Account, account.parent_id)
    return account


def brand_for(session: Session, account_id: int) -> Brand:
    agency = agency_of(session, account_id)
    if agency is None:
        return Brand()
    return Brand(
        name=agency.brand_name or DEFAULT_NAME,
        colour=agency.brand_colour or DEFAULT_COLOUR,
        has_logo=agency.brand_logo is not None,
    )


def logo_type(data: bytes) -> str:
    if len(data) > LOGO_MAX:
        raise BrandRejected(f"the logo may be at most {LOGO_MAX // 1024} KB")
    for magic, kind in LOGO_TYPES.items():
        if data.startswith(magic):
            return kind
    raise BrandRejected("the logo must be a PNG or JPEG image")


def set_brand(
    session: Session,
    agency: Account,
    name: str,
    colour: str,
    logo: bytes | None,
    actor: str,
    remove_logo: bool = False,
) -> None:
    name = " ".join(name.split())
    if len(name) > NAME_MAX or not name.isprintable():
        raise BrandRejected(f"the name is at most {NAME_MAX} printable characters")
    if colour and not COLOUR.fullmatch(colour):
        raise BrandRejected("the colour is #RRGGBB, e.g. #1f5fbf")
    kind = logo_type(logo) if logo else None
    before = {"name": agency.brand_name, "colour": agency.brand_colour}
    agency.brand_name = name or None
    agency.brand_colour = colour.lower() or None
    if logo:
        agency.brand_logo, agency.brand_logo_type = logo, kind
    elif remove_logo:
        agency.brand_logo = agency.brand_logo_type = None
    after = {"name": agency.brand_name, "colour": agency.brand_colour}
    detail = audit.change(before, after) + ("; new logo" if logo else "")
    audit.record(session, actor, "brand.set", str(agency.id), detail=detail, account_id=agency.id)


def stylesheet(brand: Brand) -> str:
    """The brand's colour for the pages (served as a file: the CSP allows no inline style)."""
    assert COLOUR.fullmatch(brand.colour)
    return f":root {{ --accent: {brand.colour}; }}\n"
