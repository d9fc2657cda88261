"""Pages from templates: every value reaches the page through Jinja's autoescaping, and every
page gets what its frame needs (who is signed in, the form token)."""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from appliance import __version__, accounts
from appliance.access import Permission
from appliance.web.keys import PRINCIPAL, SESSION


def render(request: web.Request, template: str, status: int = 200, **values: Any) -> web.Response:
    token = request.get(SESSION)
    frame = {
        "principal": request.get(PRINCIPAL),
        "csrf": accounts.csrf_token(token) if token else "",
        "version": __version__,
        "Permission": Permission,
    }
    return aiohttp_jinja2.render_template(template, request, frame | values, status=status)
