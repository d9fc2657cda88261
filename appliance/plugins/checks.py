"""What a plugin returns is untrusted: each value is checked here, once, and either taken
whole or refused with a one-line reason (PluginValueError). Pure: no I/O."""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from appliance.calls import annotations as annotate
from appliance.calls import variables as var
from appliance.integrator.args import DIALPLAN_SPECIAL

VARIABLE = re.compile(r"[A-Z][A-Z0-9_]{0,39}")
MAX_VARIABLES = 10
VALUE_CHARS = 200
# Asterisk's own variables that change what a channel may do (features, transfers, Dial,
# recording, CDR, hangup handling): never set by a plugin. APPLIANCE_ is the appliance's own.
RESERVED_PREFIXES = (
    "APPLIANCE_",
    "AGI",
    "ATTENDED_TRANSFER",
    "BLINDTRANSFER",
    "BRIDGE",
    "CALLERID",
    "CDR",
    "CHANNEL",
    "CONNECTEDLINE",
    "DIAL",
    "DYNAMIC_FEATURES",
    "FORWARD_CONTEXT",
    "GOSUB",
    "GOTO_ON_BLINDXFR",
    "HANGUP",
    "LIMIT_",
    "MACRO",
    "MIXMON",
    "MONITOR",
    "OUTBOUND_GROUP",
    "PARKING",
    "PICKUP",
    "PJSIP",
    "SIP",
    "TIMEOUT",
    "TOUCH_",
    "TRANSFER",
)
MAX_EXTRA = 20
EXTRA_CHARS = 2000  # the extra fields, as JSON


class PluginValueError(ValueError):
    """A value a plugin returned that cannot be taken; the message says why."""


@dataclass(frozen=True)
class RouteAnswer:
    """What call_started may change while deciding: all checked."""

    route: int | None = None
    variables: dict[str, str] = field(default_factory=dict)
    tags: tuple[str, ...] = ()


def _mapping(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PluginValueError(f"{what}: a dict or None, not {type(value).__name__}")
    return value


def _known_keys(value: Mapping[str, Any], keys: Collection[str], what: str) -> None:
    unknown = [str(k)[:40] for k in value if k not in keys]
    if unknown:
        raise PluginValueError(f"{what}: unknown key {unknown[0]!r}")


def clean_route(value: object, allowed: Collection[int]) -> int:
    """A route id, one of `allowed` (the routes of the call's own account)."""
    if isinstance(value, bool) or not isinstance(value, int) or value not in allowed:
        raise PluginValueError(f"route {str(value)[:40]!r} is not a route of the call's account")
    return value


def clean_variable(name: object, value: object) -> tuple[str, str]:
    if not isinstance(name, str) or not VARIABLE.fullmatch(name):
        raise PluginValueError(f"variable name {str(name)[:50]!r}: [A-Z][A-Z0-9_]{{0,39}}")
    if name in var.VARIABLES.values() or name.startswith(RESERVED_PREFIXES):
        raise PluginValueError(f"variable {name} is reserved")
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise PluginValueError(f"variable {name}: text or a whole number")
    text = str(value)
    if len(text) > VALUE_CHARS or not text.isprintable():
        raise PluginValueError(f"variable {name}: printable, at most {VALUE_CHARS} characters")
    if DIALPLAN_SPECIAL.intersection(text):  # e.g. a caller's name passed on as it came
        raise PluginValueError(f"variable {name}: none of {''.join(sorted(DIALPLAN_SPECIAL))}")
    return name, text


def clean_variables(value: object) -> dict[str, str]:
    variables = _mapping(value, "variables")
    if len(variables) > MAX_VARIABLES:
        raise PluginValueError(f"variables: at most {MAX_VARIABLES}")
    return dict(clean_variable(n, v) for n, v in variables.items())


def clean_tags(value: object) -> tuple[str, ...]:
    if not isinstance(value, str | list | tuple):
        raise PluginValueError("tags: a list of tags")
    try:
        return tuple(annotate.clean_tags(value))
    except annotate.AnnotationError as exc:
        raise PluginValueError(str(exc)) from None


def route_answer(value: object, allowed: Collection[int]) -> RouteAnswer:
    """call_started's answer while deciding."""
    if value is None:
        return RouteAnswer()
    answer = _mapping(value, "call_started")
    _known_keys(answer, ("route", "variables", "tags"), "call_started")
    return RouteAnswer(
        clean_route(answer["route"], allowed) if answer.get("route") is not None else None,
        clean_variables(answer.get("variables") or {}),
        clean_tags(answer["tags"]) if answer.get("tags") else (),
    )


@dataclass(frozen=True)
class AnalysisAnswer:
    tags: tuple[str, ...] = ()
    points: int = 0
    note: str | None = None


def analysis_answer(value: object) -> AnalysisAnswer:
    if value is None:
        return AnalysisAnswer()
    answer = _mapping(value, "analysis_done")
    _known_keys(answer, ("tags", "points", "note"), "analysis_done")
    try:
        points = answer.get("points") or 0
        if isinstance(points, bool) or not isinstance(points, int | str):
            raise PluginValueError("points: a whole number from -100 to 100")
        note = answer.get("note")
        return AnalysisAnswer(
            clean_tags(answer["tags"]) if answer.get("tags") else (),
            annotate.clean_points(points),
            annotate.clean_note(note) if note is not None else None,
        )
    except annotate.AnnotationError as exc:
        raise PluginValueError(str(exc)) from None


@dataclass(frozen=True)
class ConversionAnswer:
    veto: bool = False
    extra: dict[str, Any] | None = None


def conversion_answer(value: object) -> ConversionAnswer:
    if value is None:
        return ConversionAnswer()
    answer = _mapping(value, "conversion_before_send")
    _known_keys(answer, ("veto", "extra"), "conversion_before_send")
    if answer.get("veto") is True:
        return ConversionAnswer(veto=True)
    if "veto" in answer and answer["veto"] not in (False, None):
        raise PluginValueError("veto: True or False")
    return ConversionAnswer(extra=clean_extra(answer["extra"]) if answer.get("extra") else None)


def clean_extra(value: object) -> dict[str, Any]:
    """Extra fields: at most MAX_EXTRA keys of plain JSON values, EXTRA_CHARS in all."""
    extra = _mapping(value, "extra")
    if len(extra) > MAX_EXTRA:
        raise PluginValueError(f"extra: at most {MAX_EXTRA} fields")
    for key, item in extra.items():
        if not isinstance(key, str) or not VARIABLE.fullmatch(key.upper()):
            raise PluginValueError(f"extra: field name {str(key)[:40]!r} is not a plain name")
        if not _plain(item):
            raise PluginValueError(f"extra: {key} is not a plain value")
    try:
        text = json.dumps(dict(extra), ensure_ascii=False, allow_nan=False)
    except ValueError:
        raise PluginValueError("extra: not JSON") from None
    if len(text) > EXTRA_CHARS:
        raise PluginValueError(f"extra: at most {EXTRA_CHARS} characters as JSON")
    return dict(json.loads(text))


def _plain(value: object, depth: int = 0) -> bool:
    if value is None or isinstance(value, bool | int | float | str):
        return True
    if depth < 2 and isinstance(value, list | tuple):
        return all(_plain(v, depth + 1) for v in value)
    return False
