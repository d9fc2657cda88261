"""Pure routing: from a tracking number's route to the dial string Asterisk runs."""

from __future__ import annotations

import re
from dataclasses import dataclass

_ENDPOINT = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


class InvalidTarget(ValueError):
    """A route target that cannot be put into a dial string safely."""


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
    record: bool = False


@dataclass(frozen=True)
class Decision:
    """What the dialplan needs: an empty dial string means 'take the fallback'."""

    dial: str
    ring_timeout: int
    route_name: str = ""
    record: bool = False


def dial_target(target: Target) -> str:
    if target.kind == "number":
        if not _E164.fullmatch(target.value):
            raise InvalidTarget(f"{target.value!r} is not an E.164 number")
        if not target.trunk or not _ENDPOINT.fullmatch(target.trunk):
            raise InvalidTarget(f"number {target.value} has no valid trunk")
        return f"PJSIP/{target.value}@{target.trunk}"
    if target.kind == "endpoint":
        if not _ENDPOINT.fullmatch(target.value):
            raise InvalidTarget(f"{target.value!r} is not a SIP endpoint name")
        return f"PJSIP/{target.value}"
    raise InvalidTarget(f"unknown target kind {target.kind!r}")


def decide(plan: RoutePlan | None) -> Decision:
    """The dial string for a route; simultaneous rings all targets, sequential the first."""
    if plan is None or not plan.targets:
        return Decision(dial="", ring_timeout=0)
    targets = plan.targets if plan.strategy == "simultaneous" else plan.targets[:1]
    return Decision(
        dial="&".join(dial_target(t) for t in targets),
        ring_timeout=plan.ring_timeout,
        route_name=plan.name,
        record=plan.record,
    )
