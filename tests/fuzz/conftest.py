"""The fuzz tests' profile is chosen before any of them is collected; each failure is sorted
into the tally; the long run's tally is written where APPLIANCE_FUZZ_TALLY says."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest

from tests.fuzz.harness import TALLY, BudgetSpent, Finding


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Iterator[None]:
    TALLY.start_test()
    try:
        return (yield)
    except BudgetSpent:
        return True  # type: ignore[return-value]


def _findings(error: BaseException) -> list[str]:
    if isinstance(error, BaseExceptionGroup):
        return [kind for inner in error.exceptions for kind in _findings(inner)]
    return [error.kind if isinstance(error, Finding) else "contract"]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    if call.when == "call" and report.failed and call.excinfo is not None:
        boundary = TALLY.current or item.nodeid
        for kind in _findings(call.excinfo.value):
            TALLY.found(boundary, kind)
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    target = os.environ.get("APPLIANCE_FUZZ_TALLY")
    if target:
        with open(target, "w", encoding="utf-8") as out:
            json.dump(TALLY.as_json(), out, indent=1, sort_keys=True)
