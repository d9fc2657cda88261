"""A pool of tracking numbers shared by website visitor sessions (dynamic number insertion),
pure: fed requests and heartbeats with the time, it answers which number a session shows.

A session keeps its number while it sends heartbeats, and `hold` seconds after the last one.
A new session gets the least recently used free number. When none is free, the session whose
last heartbeat is oldest loses its number to the new one; calls on that number are then
ambiguous, and the pool counts how often that happened so admins can size it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

HOLD = 30 * 60.0


@dataclass(frozen=True)
class Allocation:
    number: str
    new: bool  # a hold that starts now (else the session already held the number)
    recycled: bool = False  # taken from another session: the pool is too small
    evicted: str | None = None  # the session it was taken from


@dataclass
class _Hold:
    number: str
    last_seen: float


class Pool:
    def __init__(self, numbers: Iterable[str], hold: float = HOLD) -> None:
        self.hold = hold
        self.free: OrderedDict[str, None] = OrderedDict.fromkeys(numbers)  # least recent first
        self.size = len(self.free)
        self.holds: OrderedDict[str, _Hold] = OrderedDict()  # oldest heartbeat first
        self.exhausted = 0

    def request(self, session: str, now: float) -> Allocation | None:
        """The number this session shows; None for an empty pool."""
        self._expire(now)
        held = self.holds.get(session)
        if held is not None:
            held.last_seen = now
            self.holds.move_to_end(session)
            return Allocation(held.number, new=False)
        if self.free:
            number, _ = self.free.popitem(last=False)
            allocation = Allocation(number, new=True)
        elif self.holds:
            oldest, taken = self.holds.popitem(last=False)
            self.exhausted += 1
            allocation = Allocation(taken.number, new=True, recycled=True, evicted=oldest)
        else:
            return None
        self.holds[session] = _Hold(allocation.number, now)
        return allocation

    def heartbeat(self, session: str, now: float) -> str | None:
        """Keep the session's number; None when it has none any more (it asks again)."""
        self._expire(now)
        held = self.holds.get(session)
        if held is None:
            return None
        held.last_seen = now
        self.holds.move_to_end(session)
        return held.number

    def resume(self, session: str, number: str, last_seen: float) -> bool:
        """Give back a hold kept before a restart (resume them oldest first); False when the
        number is no longer free in this pool."""
        if number not in self.free:
            return False
        del self.free[number]
        self.holds[session] = _Hold(number, last_seen)
        self.holds.move_to_end(session)
        return True

    def drop(self, session: str) -> None:
        """Forget a session's hold (its visit could not be recorded): the number is free."""
        held = self.holds.pop(session, None)
        if held is not None:
            self.free[held.number] = None

    def in_use(self, now: float) -> int:
        self._expire(now)
        return len(self.holds)

    def _expire(self, now: float) -> None:
        while self.holds:
            session, held = next(iter(self.holds.items()))
            if held.last_seen + self.hold > now:
                break
            self.holds.popitem(last=False)
            self.free[held.number] = None  # now the most recently used free number
