"""The hooks a plugin may implement (pluggy project "appliance"), always called with keyword
arguments: an implementation takes only the arguments it names.

Every argument is plain data (dicts of str, int, float, bool, None and lists of them), a copy
made for the call: never an ORM object or a session. A `call` dict has these keys:

    call_id       32 hex digits; None in call_started while deciding (no record yet)
    linkedid      Asterisk's linkedid of the call
    account_id    the client account (None: unknown number)
    caller_number, caller_name, dialled   as received (caller-controlled text)
    number_id     the tracking number's id (None: unknown number)
    route_id, route_name   the route the call entered or connected to
    source, medium, campaign   the marketing behind the number (None when none)
    after_hours   bool
    restricted    bool: the caller is on the account's restrict list
    started_at, answered_at, ended_at   ISO 8601 UTC or None
    disposition, talk_seconds, ring_seconds   once ended (None before)

Return values are untrusted and checked (appliance/plugins/checks.py): a value that fails is
logged with the plugin's name and dropped, never applied in part.
"""

from __future__ import annotations

from typing import Any

import pluggy

PROJECT = "appliance"
GROUP = "appliance.plugins"  # the entry-point group plugins are installed under

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

Data = dict[str, Any]


@hookspec
def claims_route(route: Data) -> bool | None:
    """Whether this plugin decides calls entering `route` ({id, name, account_id}). Asked
    when the routes are compiled; a route any plugin claims asks the controller at call time
    (FastAGI, bounded, with the compiled route as its fallback): call_started is then called
    with deciding=True. Every other route stays compiled, and its calls never wait for Python.
    Return True to claim."""


@hookspec
def call_started(call: Data, deciding: bool) -> Data | None:
    """A call started. `deciding` True: the call is at its claimed route's dynamic step and
    waits (at most [plugins] timeout); `call["call_id"]` is None and `call["route_id"]` is the
    route it entered. Return None or a dict with any of:
        route      id of a route of the call's own account to connect to instead
        variables  {NAME: value}: channel variables to set (NAME [A-Z][A-Z0-9_]{0,39}, not
                   one of the appliance's own; value printable, at most 200 characters)
        tags       tags for the call, written with its record (origin plugin:<name>)
    `deciding` False: the call's record was just written; the return value is ignored.
    Called once per call."""


@hookspec
def call_answered(call: Data) -> None:
    """Someone answered the call (its answer is written)."""


@hookspec
def call_ended(call: Data) -> None:
    """The call ended and its record is complete (disposition, talk and ring seconds)."""


@hookspec
def recording_stored(call: Data, recording: Data) -> None:
    """The call's recording is sealed in the store. `recording`: {seconds}."""


@hookspec
def transcript_ready(call: Data, transcript: Data) -> None:
    """The call's transcript is stored; called in the analysis job. `transcript`:
    {text, seconds, words} (words: how many). Restricted callers' calls are not analysed."""


@hookspec
def analysis_done(call: Data, analysis: Data) -> Data | None:
    """The call's analysis is stored (`analysis`: {score, category, tags, spam}). Return None
    or {"tags": [...], "points": int from -100 to 100, "note": text}: saved as the call's
    annotations (origin plugin:<name>)."""


@hookspec
def lead_captured(lead: Data) -> None:
    """A website form lead was written. `lead`: {lead_id, account_id, form, fields, page,
    source, medium, campaign} (fields: the visitor's own text)."""


@hookspec
def conversion_before_send(conversion: Data) -> Data | None:
    """A conversion is about to be queued for its destinations. `conversion`: the event's data
    (id, name, value, currency, call_id or lead_id, source, medium, campaign, click ids).
    Return None, {"veto": True} (no delivery of this conversion at all), or {"extra": {...}}:
    at most 20 keys of plain values, sent under data.plugins.<plugin name>."""
