"""Websites that show tracking numbers: their settings, swap rules and number pools, changed
the same way from the admin pages and the command line (every change audited)."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from appliance import audit
from appliance.admin import AdminError, get_account, number_by_e164
from appliance.db.models import DniRule, DniSite, TrackingNumber
from appliance.numbers import to_e164

FORM_NAME = re.compile(r"[A-Za-z0-9_-]{1,60}")
RULE_FIELDS = ("source", "medium", "campaign", "referrer", "landing")


@dataclass(frozen=True)
class SiteRequest:
    name: str
    origins: tuple[str, ...]
    replace: tuple[str, ...]  # the site's own numbers, any format
    consent_required: bool = False
    hold_minutes: int = 30
    forms: tuple[str, ...] = ()


def origin(text: str) -> str:
    """A web origin, scheme://host[:port], exactly as browsers send it in Origin."""
    parts = urlsplit(text.strip())
    try:
        port = parts.port
    except ValueError:
        port = -1
    host = parts.hostname or ""
    if (
        parts.scheme not in ("http", "https")
        or not re.fullmatch(r"[a-z0-9.-]{1,253}", host)
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or "@" in parts.netloc
        or port == -1
    ):
        raise AdminError(f"{text[:80]!r} is not a web origin like https://www.example.com")
    if port is None or port == {"http": 80, "https": 443}[parts.scheme]:
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


def _apply(site: DniSite, request: SiteRequest, region: str) -> None:
    name = " ".join(request.name.split())
    if not name or len(name) > 120:
        raise AdminError("a site name is 1 to 120 characters")
    origins = sorted({origin(o) for o in request.origins})
    if not origins or len(" ".join(origins)) > 2000:
        raise AdminError("a site needs at least one origin (and at most 2000 characters of them)")
    replace = sorted({to_e164(n, region) for n in request.replace})
    if not replace or len(" ".join(replace)) > 500:
        raise AdminError("a site needs the number(s) its pages show, to be swapped")
    if not 2 <= request.hold_minutes <= 24 * 60:  # a page beats every minute
        raise AdminError("a pool number is held 2 to 1440 minutes after the last heartbeat")
    for form in request.forms:
        if not FORM_NAME.fullmatch(form):
            raise AdminError(f"{form[:60]!r} is not a form name or id (letters, digits, _ -)")
    site.name, site.origins, site.replace_numbers = name, " ".join(origins), " ".join(replace)
    site.consent_required = request.consent_required
    site.hold_minutes = request.hold_minutes
    site.forms = " ".join(sorted(set(request.forms)))


def _fields(site: DniSite) -> dict[str, object]:
    return {
        "name": site.name,
        "origins": site.origins,
        "replace": site.replace_numbers,
        "consent": site.consent_required,
        "hold": site.hold_minutes,
        "forms": site.forms,
    }


def sites(session: Session, account_ids: set[int] | None = None) -> list[DniSite]:
    query = select(DniSite).order_by(DniSite.name)
    if account_ids is not None:
        query = query.where(DniSite.account_id.in_(account_ids))
    return list(session.scalars(query))


def site_named(session: Session, name: str) -> DniSite:
    found = session.scalars(select(DniSite).where(DniSite.name == name)).all()
    if len(found) != 1:
        raise AdminError(f"no site {name[:80]!r}" if not found else f"{name!r} is ambiguous")
    return found[0]


def add_site(
    session: Session,
    request: SiteRequest,
    account_id: int | None,
    actor: str,
    region: str = "US",
) -> DniSite:
    account = get_account(session, account_id)
    site = DniSite(account_id=account.id, key=secrets.token_urlsafe(16))
    _apply(site, request, region)
    if session.scalar(
        select(DniSite.id).where(DniSite.account_id == account.id, DniSite.name == site.name)
    ):
        raise AdminError(f"site {site.name!r} already exists")
    session.add(site)
    session.flush()
    audit.record(session, actor, "site.add", site.name[:64], account_id=account.id)
    return site


def edit_site(
    session: Session, site: DniSite, request: SiteRequest, actor: str, region: str = "US"
) -> DniSite:
    before = _fields(site)
    _apply(site, request, region)
    session.flush()
    detail = audit.change(before, _fields(site))
    audit.record(
        session, actor, "site.edit", site.name[:64], detail=detail, account_id=site.account_id
    )
    return site


def remove_site(session: Session, site: DniSite, actor: str) -> None:
    """The site, its rules and its visits go; its pool numbers stay, out of the pool."""
    for number in pool(session, site):
        number.pool_site_id = None
    audit.record(session, actor, "site.remove", site.name[:64], account_id=site.account_id)
    session.delete(site)


def pool(session: Session, site: DniSite) -> list[TrackingNumber]:
    return list(
        session.scalars(
            select(TrackingNumber)
            .where(TrackingNumber.pool_site_id == site.id)
            .order_by(TrackingNumber.e164)
        )
    )


def set_pool(
    session: Session, site: DniSite, numbers: list[str], actor: str, region: str = "US"
) -> None:
    """The site's pool becomes exactly these numbers (each one of the site's account's active
    numbers, in no other pool and in no rule)."""
    wanted = [number_by_e164(session, n, region) for n in numbers]
    in_rules = set(session.scalars(select(DniRule.number_id)))
    for number in wanted:
        if number.account_id != site.account_id or number.released_at is not None:
            raise AdminError(f"{number.e164} is not an active number of the site's account")
        if number.pool_site_id not in (None, site.id):
            raise AdminError(f"{number.e164} is in another site's pool")
        if number.id in in_rules:
            raise AdminError(f"{number.e164} is a rule's number: a pool number is never fixed")
    before = sorted(n.e164 for n in pool(session, site))
    for number in pool(session, site):
        number.pool_site_id = None
    for number in wanted:
        number.pool_site_id = site.id
    session.flush()
    after = sorted(n.e164 for n in wanted)
    detail = audit.change({"pool": " ".join(before)}, {"pool": " ".join(after)})
    audit.record(
        session, actor, "site.pool", site.name[:64], detail=detail, account_id=site.account_id
    )


def add_rule(
    session: Session,
    site: DniSite,
    field: str,
    value: str,
    number: str,
    actor: str,
    region: str = "US",
) -> DniRule:
    """Visits whose `field` contains `value` (any case) see `number`, first rule first."""
    if field not in RULE_FIELDS:
        raise AdminError(f"a rule looks at one of: {', '.join(RULE_FIELDS)}")
    value = " ".join(value.split())
    if not value or len(value) > 200:
        raise AdminError("a rule's text is 1 to 200 characters")
    found = number_by_e164(session, to_e164(number, region), region)
    if found.account_id != site.account_id or found.released_at is not None:
        raise AdminError(f"{found.e164} is not an active number of the site's account")
    if found.pool_site_id is not None:
        raise AdminError(f"{found.e164} is a pool number: a rule shows a fixed number")
    rule = DniRule(
        site_id=site.id, position=len(site.rules), field=field, value=value, number_id=found.id
    )
    site.rules.append(rule)
    session.flush()
    detail = f"{field} contains {value[:100]!r} -> {found.e164}"
    audit.record(
        session, actor, "site.rule", site.name[:64], detail=detail, account_id=site.account_id
    )
    return rule


def remove_rule(session: Session, site: DniSite, rule_id: int, actor: str) -> None:
    rule = next((r for r in site.rules if r.id == rule_id), None)
    if rule is None:
        raise AdminError(f"site {site.name!r} has no rule {rule_id}")
    site.rules.remove(rule)
    for position, kept in enumerate(site.rules):
        kept.position = position
    detail = f"removed rule {rule_id}"
    audit.record(
        session, actor, "site.rule", site.name[:64], detail=detail, account_id=site.account_id
    )
