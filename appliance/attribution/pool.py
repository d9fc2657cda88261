"""A pool of tracking numbers shared by website visitor sessions (dynamic number insertion),
pure: fed requests and heartbeats with the time, it answers which number a session shows.

A session keeps its number while it sends heartbeats, and `hold` seconds after the last one.
A new session gets the least recently used free number. When none is free, the number is
taken from the network that holds the most (the caller names each session's network: an
IPv4 /24 or an IPv6 /48), from its session seen longest ago. A lone visitor so keeps its
number while any network holds several, and whoever holds a pool from a few networks only
takes numbers back from themselves. Calls on a number taken that way are ambiguous, and the
pool counts how often that happened so admins can size it.
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


@dataclass(slots=True)
class _Hold:
    number: str
    network: str
    last_seen: float


class Pool:
    def __init__(self, numbers: Iterable[str], hold: float = HOLD) -> None:
        self.hold = hold
        self.free: OrderedDict[str, None] = OrderedDict.fromkeys(numbers)  # least recent first
        self.size = len(self.free)
        self.holds: OrderedDict[str, _Hold] = OrderedDict()  # oldest heartbeat first
        # network -> its sessions holding a number, oldest heartbeat first
        self.networks: dict[str, OrderedDict[str, None]] = {}
        self.counts: dict[int, dict[str, None]] = {}  # n -> the networks holding n numbers
        self.exhausted = 0

    def request(self, session: str, network: str, now: float) -> Allocation | None:
        """The number this session (of `network`) shows; None for an empty pool."""
        self._expire(now)
        held = self.holds.get(session)
        if held is not None:
            self._seen(session, held, network, now)
            return Allocation(held.number, new=False)
        if self.free:
            number, _ = self.free.popitem(last=False)
            allocation = Allocation(number, new=True)
        elif self.holds:
            loser = self._giving_way()
            taken = self._release(loser)
            self.exhausted += 1
            allocation = Allocation(taken.number, new=True, recycled=True, evicted=loser)
        else:
            return None
        self._add(session, _Hold(allocation.number, network, now))
        return allocation

    def heartbeat(self, session: str, network: str, now: float) -> str | None:
        """Keep the session's number; None when it has none any more (it asks again)."""
        self._expire(now)
        held = self.holds.get(session)
        if held is None:
            return None
        self._seen(session, held, network, now)
        return held.number

    def number_of(self, session: str, now: float) -> str | None:
        """The number a session holds, changing nothing (its hold is not extended)."""
        self._expire(now)
        held = self.holds.get(session)
        return None if held is None else held.number

    def resume(self, session: str, number: str, last_seen: float, network: str) -> bool:
        """Give back a hold kept before a restart (resume them oldest first); False when the
        number is no longer free in this pool."""
        if number not in self.free or session in self.holds:
            return False
        del self.free[number]
        self._add(session, _Hold(number, network, last_seen))
        return True

    def drop(self, session: str) -> None:
        """Forget a session's hold (its visit could not be recorded): the number is free."""
        if session in self.holds:
            self.free[self._release(session).number] = None

    def in_use(self, now: float) -> int:
        self._expire(now)
        return len(self.holds)

    def _giving_way(self) -> str:
        """The session that gives its number to a new one: of the network holding the most
        numbers, the session seen longest ago (between networks holding as many, the one
        whose session was seen longest ago)."""
        most = max(self.counts)
        if most == 1:  # every network holds one: the session seen longest ago of all
            return next(iter(self.holds))
        network = min(
            self.counts[most],
            key=lambda network: self.holds[next(iter(self.networks[network]))].last_seen,
        )
        return next(iter(self.networks[network]))

    def _add(self, session: str, held: _Hold) -> None:
        self.holds[session] = held
        self.holds.move_to_end(session)
        sessions = self.networks.setdefault(held.network, OrderedDict())
        sessions[session] = None
        self._recount(held.network, len(sessions) - 1, len(sessions))

    def _release(self, session: str) -> _Hold:
        held = self.holds.pop(session)
        sessions = self.networks[held.network]
        del sessions[session]
        self._recount(held.network, len(sessions) + 1, len(sessions))
        if not sessions:
            del self.networks[held.network]
        return held

    def _recount(self, network: str, was: int, now: int) -> None:
        """Move a network from the networks holding `was` numbers to those holding `now`."""
        if was:
            del self.counts[was][network]
            if not self.counts[was]:
                del self.counts[was]
        if now:
            self.counts.setdefault(now, {})[network] = None

    def _seen(self, session: str, held: _Hold, network: str, now: float) -> None:
        """Last seen now, from `network` (a hold resumed after a restart learns it here)."""
        held.last_seen = now
        if held.network == network:
            self.holds.move_to_end(session)
            self.networks[network].move_to_end(session)
        else:
            self._release(session)
            held.network = network
            self._add(session, held)

    def _expire(self, now: float) -> None:
        while self.holds:
            session, held = next(iter(self.holds.items()))
            if held.last_seen + self.hold > now:
                break
            self._release(session)
            self.free[held.number] = None  # now the most recently used free number
