"""A pool of tracking numbers shared by website visitors (dynamic number insertion), pure: fed
requests and heartbeats with the time, it answers which number a visitor shows and who held a
number when a call came in.

A visitor keeps its number while it sends heartbeats, and `hold` seconds after the last one.
A new visitor gets the least recently used free number. When none is free, the visitor whose
last heartbeat is oldest loses its number to the new one; calls on that number are then
ambiguous for a while, and the pool counts how often that happened so admins can size it.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass

HOLD = 30 * 60.0
HISTORY = 200  # holds remembered per number, for attributing calls


@dataclass(frozen=True)
class Allocation:
    number: str
    recycled: bool  # taken from another visitor: the pool is too small


@dataclass
class _Hold:
    number: str
    last_seen: float


@dataclass(frozen=True)
class Holder:
    visitor: str
    confidence: str  # "held" (at the time), "after" (within the grace after), "ambiguous"


class Pool:
    def __init__(self, numbers: Iterable[str], hold: float = HOLD) -> None:
        self.hold = hold
        self.free: OrderedDict[str, None] = OrderedDict.fromkeys(numbers)  # least recent first
        self.size = len(self.free)
        self.visitors: OrderedDict[str, _Hold] = OrderedDict()  # oldest heartbeat first
        self.history: dict[str, deque[tuple[str, float, float | None, bool]]] = {}
        self.exhausted = 0

    def request(self, visitor: str, now: float) -> Allocation | None:
        """The number this visitor shows; None for an empty pool."""
        self._expire(now)
        held = self.visitors.get(visitor)
        if held is not None:
            held.last_seen = now
            self.visitors.move_to_end(visitor)
            return Allocation(held.number, False)
        recycled = False
        if self.free:
            number, _ = self.free.popitem(last=False)
        elif self.visitors:
            oldest, taken = self.visitors.popitem(last=False)
            number, recycled = taken.number, True
            self._end(number, now)
            self.exhausted += 1
        else:
            return None
        self.visitors[visitor] = _Hold(number, now)
        entries = self.history.setdefault(number, deque(maxlen=HISTORY))
        entries.append((visitor, now, None, recycled))
        return Allocation(number, recycled)

    def heartbeat(self, visitor: str, now: float) -> bool:
        """Keep the visitor's number; False when it has none any more (it asks again)."""
        self._expire(now)
        held = self.visitors.get(visitor)
        if held is None:
            return False
        held.last_seen = now
        self.visitors.move_to_end(visitor)
        return True

    def holder(self, number: str, when: float, grace: float = 300.0) -> Holder | None:
        """Who showed `number` when a call to it came in at `when`."""
        self._expire(when)
        for visitor, start, end, recycled in reversed(self.history.get(number, ())):
            if start > when:
                continue
            if end is None or when <= end:
                return Holder(visitor, "ambiguous" if recycled else "held")
            if when <= end + grace:
                return Holder(visitor, "after")
            return None
        return None

    def in_use(self, now: float) -> int:
        self._expire(now)
        return len(self.visitors)

    def _expire(self, now: float) -> None:
        while self.visitors:
            visitor, held = next(iter(self.visitors.items()))
            if held.last_seen + self.hold > now:
                break
            self.visitors.popitem(last=False)
            self._end(held.number, held.last_seen + self.hold)
            self.free[held.number] = None  # now the most recently used free number

    def _end(self, number: str, at: float) -> None:
        entries = self.history.get(number)
        if entries and entries[-1][2] is None:
            visitor, start, _, recycled = entries[-1]
            entries[-1] = (visitor, start, at, recycled)
