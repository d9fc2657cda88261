"""What every fuzz test shares: the two Hypothesis profiles, the per-example probe that bounds
hangs and sorts what goes wrong, and the tally the long run reports from.

APPLIANCE_FUZZ=long selects the long profile (100,000 examples a test, no deadline, random
seeds); otherwise a modest, derandomised profile keeps the suite quick and stable. The long run
also gives each test a time budget (APPLIANCE_FUZZ_MINUTES, default 15): a test whose inputs
are slow to try (HTTP, the CLI) stops there, and the report says how many it tried."""

from __future__ import annotations

import contextlib
import os
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator

from hypothesis import HealthCheck, settings

from tests.harness import time_bound

LONG = os.environ.get("APPLIANCE_FUZZ") == "long"
LONG_EXAMPLES = int(os.environ.get("APPLIANCE_FUZZ_EXAMPLES", "100000"))
BUDGET = float(os.environ.get("APPLIANCE_FUZZ_MINUTES", "15")) * 60
KINDS = ("crash", "hang", "unhandled", "cross_tenant", "contract")

settings.register_profile(
    "fuzz-ci",
    max_examples=100,
    deadline=None,  # a loaded machine must not fail a test; the probe bounds real hangs
    database=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=list(HealthCheck),
)
settings.register_profile(
    "fuzz-long",
    max_examples=LONG_EXAMPLES,
    deadline=None,
    database=None,
    derandomize=False,
    print_blob=True,
    suppress_health_check=list(HealthCheck),
)
settings.load_profile("fuzz-long" if LONG else "fuzz-ci")


def examples(ci: int) -> settings:
    """The examples a test runs: `ci` in the suite (sized to its cost), the long profile's
    number in the long run."""
    return settings(max_examples=LONG_EXAMPLES if LONG else ci)


class Finding(AssertionError):
    """Something a boundary must never do; `kind` sorts it in the report."""

    kind = "contract"


class Crash(Finding):
    kind = "crash"


class Hang(Finding):
    kind = "hang"


class Unhandled(Finding):
    kind = "unhandled"


class CrossTenant(Finding):
    kind = "cross_tenant"


class BudgetSpent(BaseException):
    """The long run's time for this test is over: the test stops, as passed (a
    BaseException, so Hypothesis does not take it for a failure to shrink)."""


class Tally:
    def __init__(self) -> None:
        self.counts: dict[str, Counter[str]] = {}
        self.started: float | None = None  # the running test's first input
        self.current: str | None = None  # the boundary the running test probes

    def start_test(self) -> None:
        self.started, self.current = None, None

    def tried(self, boundary: str) -> None:
        if self.started is None:
            self.started = time.monotonic()
        self.counts.setdefault(boundary, Counter())["tried"] += 1
        self.current = boundary

    def found(self, boundary: str, kind: str) -> None:
        self.counts.setdefault(boundary, Counter())[kind] += 1

    def spent(self) -> bool:
        return LONG and self.started is not None and time.monotonic() - self.started > BUDGET

    def as_json(self) -> dict[str, dict[str, int]]:
        return {
            name: {k: counts[k] for k in ("tried", *KINDS)} for name, counts in self.counts.items()
        }


TALLY = Tally()


def bounded(seconds: float) -> contextlib.AbstractContextManager[None]:
    """Raise Hang when the body runs longer than `seconds` (synchronous code, main thread)."""
    return time_bound(seconds, Hang("no answer within the bound: a hang"))


@contextlib.contextmanager
def probe(boundary: str, *allowed: type[BaseException], hang: float = 10.0) -> Iterator[None]:
    """One input at `boundary`: counted; an exception other than `allowed` (the boundary's own
    errors) is a crash, a body over `hang` seconds a hang."""
    if TALLY.spent():
        raise BudgetSpent(boundary)
    TALLY.tried(boundary)
    try:
        with bounded(hang):
            yield
    except Finding:
        raise
    except allowed:
        pass
    except Exception as exc:
        raise Crash(f"{boundary}: {type(exc).__name__}: {exc}\n{traceback.format_exc()}") from exc


def refuses(call: Callable[[], object], error: type[BaseException]) -> BaseException:
    """Run `call`, which must refuse with `error`; a value is a contract finding."""
    try:
        value = call()
    except error as exc:
        return exc
    raise Finding(f"accepted what it must refuse: {value!r}"[:500])
