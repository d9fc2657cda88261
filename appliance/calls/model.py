"""The values the call path passes around (pure): the routing table and what happens to calls.

The database adapter (calls/store.py) builds and stores them; the dialplan compiler, the AMI
tracker and the FastAGI handler read them. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property

from appliance.calls.outcome import CallOutcome
from appliance.calls.routing import RoutePlan


def parse_id(text: str | None) -> int | None:
    """A database id sent back by the dialplan (AMI event, CDR): plain ASCII digits only."""
    value = text or ""
    if not (value.isascii() and value.isdigit() and len(value) < 10):
        return None
    return int(value) or None


@dataclass(frozen=True)
class NumberInfo:
    """A tracking number and the route its calls enter (None: the default route)."""

    id: int
    account_id: int
    e164: str
    route: RoutePlan | None


@dataclass(frozen=True)
class RoutingTable:
    """A snapshot of the routing configuration, read from the database in one pass."""

    numbers: tuple[NumberInfo, ...] = ()
    default: RoutePlan | None = None
    paused_accounts: frozenset[int] = field(default_factory=frozenset)
    restricted: Mapping[int, tuple[str, ...]] = field(default_factory=dict)  # E.164 by account
    claimed: frozenset[int] = field(default_factory=frozenset)  # routes a plugin decides

    def dynamic(self, plan: RoutePlan) -> bool:
        """Whether calls entering `plan` ask the controller first (FastAGI): marked dynamic,
        or claimed by a plugin."""
        return plan.dynamic or plan.id in self.claimed

    def entry(self, number: NumberInfo | None) -> RoutePlan | None:
        """The route a call to this number (None: an unknown number) enters."""
        if number is not None and number.route is not None:
            return number.route
        return self.default

    @cached_property
    def routes(self) -> dict[int, RoutePlan]:
        """Every route a call can reach: entries and their after-hours routes."""
        found: dict[int, RoutePlan] = {}
        for entry in [*(n.route for n in self.numbers), self.default]:
            for plan in _after_hours(entry):
                found.setdefault(plan.id, plan)
        return found


def _after_hours(plan: RoutePlan | None) -> Iterator[RoutePlan]:
    seen: set[int] = set()
    while plan is not None and plan.id not in seen:
        seen.add(plan.id)
        yield plan
        plan = plan.after_hours


@dataclass(frozen=True)
class CallStarted:
    """The dialplan chose a route for a call (AMI UserEvent ApplianceRoute)."""

    linkedid: str
    call_id: str
    dialled: str  # E.164 for a tracking number, the dialled digits otherwise
    caller_number: str
    caller_name: str
    started: float  # epoch seconds
    number_id: int | None
    route_id: int | None
    after_hours: bool
    restricted: bool = False  # the dialplan found the caller on the restrict list


@dataclass(frozen=True)
class CallAnswered:
    """A destination answered the call (AMI DialEnd ANSWER, or the callee entering the bridge)."""

    linkedid: str
    answered: float  # epoch seconds


CallWrite = CallStarted | CallAnswered | CallOutcome
