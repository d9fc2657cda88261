"""Side-by-side figures: every benchmark measures a baseline and a candidate in the same run and
prints their ratio, because absolute numbers on a shared 2-core machine mean little."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def percentile(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(samples: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(samples),
        "p50": percentile(samples, 50),
        "p99": percentile(samples, 99),
        "mean": statistics.fmean(samples) if samples else float("nan"),
    }


def report(
    title: str,
    unit: str,
    rows: Sequence[tuple[str, Sequence[float], Sequence[float]]],
    baseline: str = "baseline",
    candidate: str = "candidate",
) -> str:
    """A table with, per row, p50/p99 of baseline and candidate, their ratio and difference."""
    lines = [
        title,
        f"{'case':<22}{baseline + ' p50/p99':>22}{candidate + ' p50/p99':>24}"
        f"{'ratio p50/p99':>18}{'added p99':>12}",
    ]
    for name, base, cand in rows:
        b, c = summary(base), summary(cand)
        lines.append(
            f"{name:<22}{b['p50']:>10.2f}/{b['p99']:<9.2f}{unit:<3}"
            f"{c['p50']:>10.2f}/{c['p99']:<9.2f}{unit:<3}"
            f"{c['p50'] / b['p50']:>8.2f}/{c['p99'] / b['p99']:<8.2f}"
            f"{c['p99'] - b['p99']:>+10.2f}{unit}"
        )
    return "\n".join(lines)
