"""Pure routing: from a tracking number's route and the time to what the dialplan runs.

Nothing here touches Asterisk or the database. Every value that ends up in a dial string or a
dialplan application argument is checked against a strict pattern first.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from appliance.calls import schedule
from appliance.calls import variables as var

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_SOUND = re.compile(r"[A-Za-z0-9_-]{1,40}(/[A-Za-z0-9_-]{1,40}){0,3}")
MAX_AFTER_HOURS_DEPTH = 3


class InvalidRoute(ValueError):
    """A route that cannot be turned into a safe dial string; the message says which part."""


@dataclass(frozen=True)
class Target:
    kind: str  # 'number' (over a trunk) or 'endpoint' (a SIP endpoint by name)
    value: str
    trunk: str | None = None


@dataclass(frozen=True)
class RoutePlan:
    name: str
    targets: tuple[Target, ...]
    ring_timeout: int = 30
    strategy: str = "simultaneous"
    recording: str = "never"  # 'always', 'never' or 'on_demand' (started over the API)
    consent_prompt: str | None = None
    consent_opt_out: bool = False
    announcement: str | None = None
    whisper: str | None = None
    hours: str | None = None
    timezone: str = "UTC"
    after_hours: RoutePlan | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Decision:
    """What the dialplan needs. No dial strings means: take the static fallback."""

    dials: tuple[str, ...]
    ring_timeout: int = 0
    route_name: str = ""
    record: bool = False
    consent_prompt: str = ""
    consent_opt_out: bool = False
    announcement: str = ""
    dial_options: str = ""
    after_hours: bool = False


def dial_target(target: Target) -> str:
    if target.kind == "number":
        if not _E164.fullmatch(target.value):
            raise InvalidRoute(f"{target.value!r} is not an E.164 number")
        if not target.trunk or not _NAME.fullmatch(target.trunk):
            raise InvalidRoute(f"number {target.value} has no valid trunk")
        return f"PJSIP/{target.value}@{target.trunk}"
    if target.kind == "endpoint":
        if not _NAME.fullmatch(target.value):
            raise InvalidRoute(f"{target.value!r} is not a SIP endpoint name")
        return f"PJSIP/{target.value}"
    raise InvalidRoute(f"unknown target kind {target.kind!r}")


def sound(name: str | None) -> str:
    """A prompt name Asterisk can play (e.g. 'custom/recording-notice'); '' for none."""
    if not name:
        return ""
    if not _SOUND.fullmatch(name):
        raise InvalidRoute(f"{name[:60]!r} is not a sound name (letters, digits, _ - and /)")
    return name


def dial_strings(plan: RoutePlan) -> tuple[str, ...]:
    """Simultaneous: one dial string ringing every target. Sequential: one per target."""
    dials = tuple(dial_target(t) for t in plan.targets)
    if plan.strategy == "sequential":
        return dials
    return ("&".join(dials),) if dials else ()


def active_plan(plan: RoutePlan, now: dt.datetime) -> tuple[RoutePlan, bool]:
    """The plan in force at `now`: follow after-hours routes while the schedule is closed."""
    current, after_hours = plan, False
    for _ in range(MAX_AFTER_HOURS_DEPTH):
        if not current.hours:
            break
        windows = schedule.parse(current.hours)
        if schedule.is_open(windows, schedule.zone(current.timezone), now):
            break
        if current.after_hours is None:
            raise InvalidRoute(f"route {current.name!r} is closed and has no after-hours route")
        current, after_hours = current.after_hours, True
    return current, after_hours


def decide(plan: RoutePlan | None, now: dt.datetime, default: RoutePlan | None = None) -> Decision:
    """The decision for one call: its number's route, else the default route, else fallback."""
    chosen = plan if plan is not None else default
    if chosen is None:
        return Decision(dials=())
    active, after_hours = active_plan(chosen, now)
    whisper = sound(active.whisper)
    return Decision(
        dials=dial_strings(active),
        ring_timeout=active.ring_timeout,
        route_name=active.name,
        record=active.recording == "always",
        consent_prompt=sound(active.consent_prompt),
        consent_opt_out=active.consent_opt_out,
        announcement=sound(active.announcement),
        dial_options=f"U(appliance-whisper^{whisper})" if whisper else "",
        after_hours=after_hours,
    )


def channel_variables(decision: Decision, call_id: str) -> dict[str, str]:
    """The variables the controller sets on the channel (see calls/variables.py)."""
    answer = {var.CALL_ID: call_id}
    if not decision.dials:
        return answer
    answer[var.DIAL] = decision.dials[0]
    for index, dial in enumerate(decision.dials[1:], start=2):
        answer[f"{var.DIAL}_{index}"] = dial
    answer[var.DIAL_COUNT] = str(len(decision.dials))
    answer[var.RING_TIMEOUT] = str(decision.ring_timeout)
    if decision.dial_options:
        answer[var.DIAL_OPTIONS] = decision.dial_options
    if decision.announcement:
        answer[var.ANNOUNCE] = decision.announcement
    if decision.record:
        answer[var.RECORD] = "yes"
        if decision.consent_prompt:
            answer[var.CONSENT] = decision.consent_prompt
            if decision.consent_opt_out:
                answer[var.OPT_OUT] = "yes"
    return answer


def fallback_dial(plan: RoutePlan) -> str:
    """The static route Asterisk keeps for when the controller is away: every target at once."""
    return "&".join(dial_target(t) for t in plan.targets)


def fallback_recording(plan: RoutePlan) -> str | None:
    """Whether the static route records: the notice to play first ('-' for none), or None.
    A route that lets callers opt out is not recorded without the controller to honour it."""
    if plan.recording != "always" or plan.consent_opt_out:
        return None
    return sound(plan.consent_prompt) or "-"
