"""Charts drawn on the server as SVG shapes (no script, nothing inline for the CSP to refuse):
the page shows them, and a screen reader reads the table beside each."""

from __future__ import annotations

from dataclasses import dataclass

# distinguishable colours, then grey for everything past them
PALETTE = ("#1f5fbf", "#e07b00", "#2a9d57", "#b8336a", "#6c4ab6", "#0f8b8d", "#a5682a")
OTHER = "#9aa1ad"
WIDTH, HEIGHT, AXIS = 720, 220, 24


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    colour: str
    title: str


@dataclass(frozen=True)
class StackedBars:
    bars: list[Bar]
    legend: list[tuple[str, str]]  # (colour, name)
    peak: int
    width: int = WIDTH
    height: int = HEIGHT
    axis: int = AXIS


def stacked_by_day(per_series: dict[str, dict[str, int]], days: list[str]) -> StackedBars:
    """One bar a day, stacked by series (the largest series at the bottom)."""
    order = sorted(per_series, key=lambda s: (-sum(per_series[s].values()), s))
    colours = {s: PALETTE[i] if i < len(PALETTE) else OTHER for i, s in enumerate(order)}
    totals = [sum(per_series[s].get(day, 0) for s in order) for day in days]
    peak = max(totals, default=0)
    plot = HEIGHT - AXIS
    step = WIDTH / max(1, len(days))
    bars: list[Bar] = []
    for i, day in enumerate(days):
        y = float(plot)
        for series in order:
            count = per_series[series].get(day, 0)
            if not count:
                continue
            height = plot * count / peak
            y -= height
            bars.append(
                Bar(
                    x=round(i * step + step * 0.1, 2),
                    y=round(y, 2),
                    width=round(step * 0.8, 2),
                    height=round(height, 2),
                    colour=colours[series],
                    title=f"{day}: {count} from {series}",
                )
            )
    legend = [(colours[s], s) for s in order]
    return StackedBars(bars, legend, peak)
