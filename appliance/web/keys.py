"""What a request carries once it is known who sent it."""

from __future__ import annotations

from aiohttp import web

from appliance.access import Principal
from appliance.brand import Brand

PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("principal", Principal)
SESSION: web.RequestKey[str] = web.RequestKey("session", str)  # the browser's session id
BRAND: web.RequestKey[Brand] = web.RequestKey("brand", Brand)  # of the signed-in user's agency
