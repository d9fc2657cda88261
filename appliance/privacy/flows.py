"""Every way data can leave this box, whether it is on here, and what it sends.

Nothing about a call leaves the box unless an admin turns on one of these. The list is the
admin's to read (`appliance privacy flows`, the Privacy page); the no-egress test
(tests/integration/test_no_egress.py) proves that with all of them off nothing goes out."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from appliance.db.models import Destination, Trunk

DESTINATION_SENDS = {
    "webhook": "the events it subscribes to (calls, leads, conversions) as signed JSON, "
    "with caller numbers and attribution",
    "google_ads": "conversions: the click id (gclid), the conversion name, time and value",
    "meta": "conversions: the SHA-256 of the caller's number or lead's e-mail, the click id "
    "(fbclid), the conversion name, time and value",
    "microsoft": "conversions: the click id (msclkid), the conversion name, time and value",
}
DESTINATION_NAMES = {
    "webhook": "Webhooks",
    "google_ads": "Google Ads conversions",
    "meta": "Meta conversions",
    "microsoft": "Microsoft Advertising conversions",
}


@dataclass(frozen=True)
class Flow:
    name: str
    on: bool
    sends: str
    where: str  # what turns it on or off


def flows(
    session: Session, smtp_host: str, account_ids: frozenset[int] | None = None
) -> list[Flow]:
    """The flows out of the box; destinations counted within `account_ids` (None: all)."""
    active = (
        select(Destination.kind, func.count()).where(Destination.active).group_by(Destination.kind)
    )
    if account_ids is not None:
        active = active.where(Destination.account_id.in_(sorted(account_ids)))
    counts = {kind: int(n) for kind, n in session.execute(active)}
    trunks = int(session.scalar(select(func.count()).select_from(Trunk)) or 0)
    found = [
        Flow(
            "Calls over your SIP trunks",
            trunks > 0,
            "the calls themselves (signalling and audio) to and from your carrier; "
            "registration trunks also send their login",
            f"{trunks} trunk(s): SIP trunks (appliance trunk list)",
        ),
        Flow(
            "E-mail",
            bool(smtp_host),
            "invitations and password reset links (user name and address), "
            "alerts about storage and trunks; never call data",
            f"smtp.host = {smtp_host or '(empty: no mail)'}",
        ),
    ]
    for kind, name in DESTINATION_NAMES.items():
        n = counts.get(kind, 0)
        found.append(
            Flow(name, n > 0, DESTINATION_SENDS[kind], f"{n} active destination(s): Conversions")
        )
    found.append(
        Flow(
            "Speech models",
            False,
            "nothing about calls: 'appliance models install' downloads a Vosk model from the "
            "package index when an admin runs it",
            "only when an admin runs it",
        )
    )
    return found
