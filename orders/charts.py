"""Server-rendered SVG chart geometry (no JavaScript, no chart library, no CDN).

Turns a short series (one value per day) into rectangles and axis labels in SVG user units; the
template only draws what it is given. Integer arithmetic, so the output is exact and testable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from orders.metrics import DayCount


@dataclass(frozen=True)
class Bar:
    x: int
    y: int
    width: int
    height: int
    value: int
    title: str


@dataclass(frozen=True)
class Tick:
    y: int
    label: str


@dataclass(frozen=True)
class XLabel:
    x: int
    label: str


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    left: int
    top: int
    right: int
    bottom: int
    placed: list[Bar]
    delivered: list[Bar]
    ticks: list[Tick]
    x_labels: list[XLabel]
    max_value: int


def nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5 × 10^k that is ≥ value (an axis maximum people can read)."""
    if value <= 1:
        return 1
    magnitude = 1
    while True:
        for step in (1, 2, 5):
            if step * magnitude >= value:
                return step * magnitude
        magnitude *= 10


def daily_bar_chart(days: Sequence[DayCount], *, width: int = 760, height: int = 240) -> BarChart:
    """Placed orders per day as bars, delivered ones as narrower bars inside them."""
    left, top, right, bottom = 44, 12, width - 8, height - 28
    plot_w, plot_h = right - left, bottom - top
    peak = max((d.placed for d in days), default=0)
    max_value = nice_ceiling(peak)
    n = max(len(days), 1)
    slot = plot_w // n
    bar_w = max(1, slot * 4 // 5)
    inner_w = max(1, bar_w // 2)

    def bar(index: int, value: int, w: int, title: str) -> Bar:
        h = value * plot_h // max_value
        x = left + index * slot + (slot - w) // 2
        return Bar(x=x, y=bottom - h, width=w, height=h, value=value, title=title)

    placed, delivered, x_labels = [], [], []
    label_every = max(1, (n + 9) // 10)  # at most ~10 date labels
    for i, d in enumerate(days):
        label = d.day.strftime("%b %d")
        placed.append(bar(i, d.placed, bar_w, f"{label}: {d.placed} placed"))
        delivered.append(bar(i, d.delivered, inner_w, f"{label}: {d.delivered} delivered"))
        if (n - 1 - i) % label_every == 0:  # always label the last day (today)
            x_labels.append(XLabel(x=left + i * slot + slot // 2, label=label))
    ticks = [Tick(y=bottom - plot_h * k // 4, label=f"{max_value * k // 4:,}") for k in range(5)]
    # Avoid fractional tick labels on tiny axes (max 1 or 2): keep only whole-number ticks.
    ticks = [t for k, t in enumerate(ticks) if (max_value * k) % 4 == 0]
    return BarChart(
        width=width, height=height, left=left, top=top, right=right, bottom=bottom,
        placed=placed, delivered=delivered, ticks=ticks, x_labels=x_labels, max_value=max_value,
    )
