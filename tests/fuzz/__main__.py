"""`python -m tests.fuzz [pytest args]`: the fuzz tests run long (APPLIANCE_FUZZ=long), then a
table of what each boundary was given and what it did wrong. The exit code is pytest's."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

import pytest

COLUMNS = ("tried", "crash", "hang", "unhandled", "cross_tenant", "contract")


def table(tally: dict[str, dict[str, int]], seconds: float) -> str:
    width = max([len(name) for name in tally] + [8])
    head = f"{'boundary':<{width}}  " + "  ".join(f"{c:>12}" for c in COLUMNS)
    lines = [head, "-" * len(head)]
    for name in sorted(tally):
        lines.append(
            f"{name:<{width}}  " + "  ".join(f"{tally[name].get(c, 0):>12,}" for c in COLUMNS)
        )
    lines.append(f"(in {seconds / 60:.1f} minutes)")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    os.environ.setdefault("APPLIANCE_FUZZ", "long")
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as out:
        os.environ["APPLIANCE_FUZZ_TALLY"] = out.name
    started = time.monotonic()
    code = pytest.main(["-q", "-p", "no:cacheprovider", *(argv or ["tests/fuzz"])])
    with open(out.name, encoding="utf-8") as tally:
        print(table(json.load(tally), time.monotonic() - started))
    os.unlink(out.name)
    return int(code)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
