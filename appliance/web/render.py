"""Pages from templates: every value reaches the page through Jinja's autoescaping, and every
page gets what its frame needs (who is signed in, the form token)."""

from __future__ import annotations

import csv
import io
import itertools
import zoneinfo
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy.orm import Session, sessionmaker

from appliance import __version__, accounts
from appliance.access import Permission, Principal
from appliance.brand import Brand
from appliance.db.models import Account
from appliance.web.keys import BRAND, PRINCIPAL, SESSION

CSV_MAX_ROWS = 100_000  # an export stops there
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def render(request: web.Request, template: str, status: int = 200, **values: Any) -> web.Response:
    token = request.get(SESSION)
    frame = {
        "principal": request.get(PRINCIPAL),
        "csrf": accounts.csrf_token(token) if token else "",
        "version": __version__,
        "Permission": Permission,
        "brand": request.get(BRAND) or Brand(),
    }
    return aiohttp_jinja2.render_template(template, request, frame | values, status=status)


def see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def zone_named(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def account_zone(sessions: sessionmaker[Session], principal: Principal) -> str:
    """The time zone of the principal's account: pages show times in it."""
    with sessions() as session:
        account = session.get(Account, principal.account_id)
        return account.timezone if account else "UTC"


def csv_cell(value: object) -> str:
    """Spreadsheets run cells that start like a formula: such text gets a leading quote."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def csv_text(columns: Sequence[str], rows: Iterable[Mapping[str, object]]) -> tuple[str, int]:
    """An export: at most CSV_MAX_ROWS rows, formula-safe cells; the text and its row count."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    count = 0
    for row in itertools.islice(rows, CSV_MAX_ROWS):
        writer.writerow([csv_cell(row.get(c)) for c in columns])
        count += 1
    return out.getvalue(), count


def csv_response(text: str, filename: str) -> web.Response:
    return web.Response(
        text=text,
        content_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
