"""The AGI scripts integrators call from their own dialplans, served by the controller's
FastAGI server: `AGI(agi://127.0.0.1:<agi.port>/<script>,<args>)`.

Every script first clears APPLIANCE_READY, then does its work within the request's time
budget (database work off the event loop), and sets its variables, APPLIANCE_STATUS ('ok' or
a short reason) and, only when it succeeded, APPLIANCE_READY=1, last. Nothing an argument
holds can make a script raise into the call: a refusal is a status.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable

from appliance.asterisk.agi_protocol import AgiRequest
from appliance.asterisk.fastagi import AgiChannel, Handler
from appliance.calls import variables as var
from appliance.integrator.annotate import note, score, tag
from appliance.integrator.args import Refused
from appliance.integrator.context import Services
from appliance.integrator.lookup import lookup
from appliance.integrator.route import route
from appliance.integrator.track import track

log = logging.getLogger(__name__)

Script = Callable[[Services, AgiRequest, AgiChannel], Awaitable[dict[str, str]]]

# What each script sets besides APPLIANCE_STATUS and APPLIANCE_READY (every one sets those):
# the table in docs/integrator-guide.md is checked against this.
TRACKED = (
    var.CALL_ID, var.NUMBER, var.DNID, var.SOURCE, var.MEDIUM, var.CAMPAIGN, var.ATTRIBUTION,
    var.VISIT, var.FIRST_TIME,
)  # fmt: skip
SETS: dict[str, tuple[str, ...]] = {
    "track": TRACKED,
    "lookup": (
        *TRACKED,
        var.KEYWORD,
        var.CLICK_ID_TYPE,
        var.LANDING_PAGE,
        var.TAGS,
        var.SCORE,
        var.LEAD_FORM,
        var.LEAD_EMAIL,
        var.LEAD_NAME,
    ),
    "tag": (var.TAGS,),
    "score": (var.SCORE,),
    "note": (var.NOTE_ID,),
    "route": (var.CONNECT, var.DIAL, var.RING_TIMEOUT, var.AFTER_HOURS),
}

SCRIPTS: dict[str, Script] = {
    "track": track,
    "lookup": lookup,
    "tag": tag,
    "score": score,
    "note": note,
    "route": route,
}


def handlers(services: Services) -> dict[str, Handler]:
    """The FastAGI handlers of every script, for the controller's server."""
    return {name: functools.partial(answer, services, name) for name in SCRIPTS}


async def answer(
    services: Services, name: str, request: AgiRequest, channel: AgiChannel
) -> dict[str, str]:
    await channel.set_variable(var.READY, "")  # an earlier script's flag says nothing now
    try:
        found = await SCRIPTS[name](services, request, channel)
    except Refused as exc:
        log.info("AGI %s refused: %s", name, exc)
        return {var.STATUS: exc.reason}
    except ConnectionError:
        raise
    except Exception:
        log.exception("AGI %s failed; the call goes on without its answer", name)
        return {var.STATUS: "error"}
    return {**found, var.STATUS: "ok", var.READY: "1"}
