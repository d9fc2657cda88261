"""Pure routing: which route a call connects to, and what connecting it means.

This is the one source of routing semantics. The dialplan compiler (calls/dialplan.py) turns
these same values into Asterisk's native dialplan, and the dynamic FastAGI step evaluates them
at call time; tests against the real Asterisk prove the two agree. Nothing here touches
Asterisk or the database. Every value that ends up in a dial string or a dialplan application
argument is checked against a strict pattern first.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from appliance.calls import schedule
from appliance.vocabulary import RecordingMode, RingStrategy, TargetKind

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
SOUND = re.compile(r"[A-Za-z0-9_-]{1,40}(/[A-Za-z0-9_-]{1,40}){0,3}")
MAX_AFTER_HOURS_DEPTH = 3


class InvalidRoute(ValueError):
    """A route that cannot be turned into a safe dial string; the message says which part."""


@dataclass(frozen=True)
class Target:
    kind: TargetKind
    value: str
    trunk: str | None = None


@dataclass(frozen=True)
class RoutePlan:
    id: int
    name: str
    targets: tuple[Target, ...]
    account_id: int = 0
    ring_timeout: int = 30
    strategy: RingStrategy = RingStrategy.SIMULTANEOUS
    recording: RecordingMode = RecordingMode.NEVER
    consent_prompt: str | None = None
    consent_opt_out: bool = False
    announcement: str | None = None
    whisper: str | None = None
    hours: str | None = None
    timezone: str = "UTC"
    dynamic: bool = False  # asks the controller over FastAGI before the compiled decision
    after_hours: RoutePlan | None = field(default=None, compare=False)


# Which route: business hours ----------------------------------------------------------------
@dataclass(frozen=True)
class HoursStep:
    """While `windows` (in `zone`) are open, calls connect to `route`."""

    route: RoutePlan
    windows: tuple[schedule.Window, ...]
    zone: str


@dataclass(frozen=True)
class HoursChain:
    """The first step open at the time of the call wins; when none is, `final` does. A call
    that does not connect to the first step's route arrives after hours."""

    steps: tuple[HoursStep, ...]
    final: RoutePlan
    problems: tuple[str, ...] = ()


def hours_chain(plan: RoutePlan) -> HoursChain:
    """Follow after-hours routes, at most MAX_AFTER_HOURS_DEPTH deep (so a cycle ends). Hours
    without an after-hours route, or hours that cannot be read, leave the route always open."""
    steps: list[HoursStep] = []
    problems: list[str] = []
    current = plan
    for _ in range(MAX_AFTER_HOURS_DEPTH):
        if not current.hours or current.after_hours is None:
            break
        try:
            windows = schedule.parse(current.hours)
            schedule.zone(current.timezone)
        except schedule.InvalidSchedule as exc:
            problems.append(f"route {current.name!r}: {exc}; its hours are ignored")
            break
        steps.append(HoursStep(current, windows, current.timezone))
        current = current.after_hours
    return HoursChain(tuple(steps), current, tuple(problems))


@dataclass(frozen=True)
class Decision:
    """The route a call connects to (None: no route at all) and whether it is after hours."""

    route: RoutePlan | None
    after_hours: bool = False


def decide(plan: RoutePlan | None, now: dt.datetime, default: RoutePlan | None = None) -> Decision:
    """The decision for one call at `now`: its number's route, else the default route."""
    chosen = plan if plan is not None else default
    if chosen is None:
        return Decision(None)
    chain = hours_chain(chosen)
    for index, step in enumerate(chain.steps):
        if schedule.is_open(step.windows, schedule.zone(step.zone), now):
            return Decision(step.route, after_hours=index > 0)
    return Decision(chain.final, after_hours=bool(chain.steps))


# What connecting means ----------------------------------------------------------------------
@dataclass(frozen=True)
class Connect:
    """Everything the dialplan does once the route is chosen, as safe dialplan values."""

    route_id: int
    dials: tuple[str, ...]  # rung one after another; a simultaneous route has one
    ring_timeout: int
    dial_options: str
    announcement: str
    recording: RecordingMode
    consent_prompt: str
    consent_opt_out: bool


def dial_target(target: Target) -> str:
    if target.kind == TargetKind.NUMBER:
        if not _E164.fullmatch(target.value):
            raise InvalidRoute(f"{target.value!r} is not an E.164 number")
        if not target.trunk or not _NAME.fullmatch(target.trunk):
            raise InvalidRoute(f"number {target.value} has no valid trunk")
        return f"PJSIP/{target.value}@{target.trunk}"
    if target.kind == TargetKind.ENDPOINT:
        if not _NAME.fullmatch(target.value):
            raise InvalidRoute(f"{target.value!r} is not a SIP endpoint name")
        return f"PJSIP/{target.value}"
    raise InvalidRoute(f"unknown target kind {target.kind!r}")


def sound(name: str | None) -> str:
    """A prompt name Asterisk can play (e.g. 'custom/recording-notice'); '' for none."""
    if not name:
        return ""
    if not SOUND.fullmatch(name):
        raise InvalidRoute(f"{name[:60]!r} is not a sound name (letters, digits, _ - and /)")
    return name


def dial_strings(plan: RoutePlan) -> tuple[str, ...]:
    """Simultaneous: one dial string ringing every target. Sequential: one per target."""
    dials = tuple(dial_target(t) for t in plan.targets)
    if plan.strategy == RingStrategy.SEQUENTIAL:
        return dials
    return ("&".join(dials),) if dials else ()


def connect(plan: RoutePlan, recording_paused: bool = False) -> Connect:
    """What connecting `plan` means; `recording_paused`: its account's storage is full."""
    if not 1 <= plan.ring_timeout <= 600:
        raise InvalidRoute(f"ring timeout {plan.ring_timeout} is not 1 to 600 seconds")
    whisper = sound(plan.whisper)
    recording = RecordingMode.NEVER if recording_paused else RecordingMode(plan.recording)
    return Connect(
        route_id=plan.id,
        dials=dial_strings(plan),
        ring_timeout=plan.ring_timeout,
        dial_options=f"U(appliance-whisper^{whisper})" if whisper else "",
        announcement=sound(plan.announcement),
        recording=recording,
        consent_prompt=sound(plan.consent_prompt) if recording != RecordingMode.NEVER else "",
        consent_opt_out=plan.consent_opt_out and recording != RecordingMode.NEVER,
    )
