"""Geometry for the dashboard's server-rendered SVG charts (no chart library, no script).

Functions return plain numbers and strings; ``templates/console/partials/chart_*.html`` draw
them (the template engine escapes every label). Charts keep a fixed ``viewBox`` and scale
with CSS, so they read the same on a laptop and on a wall screen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Bar:
    name: str  # always (the tooltip)
    label: str  # drawn beside the bar ("" to leave it out)
    value: int | float
    x: float
    y: float
    width: float
    height: float
    label_x: float
    label_y: float
    value_x: float
    value_y: float
    value_text: str
    css: str = ""


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    title: str
    empty: bool
    baseline: float = 0.0


def _nice_max(value: float) -> float:
    return value if value > 0 else 1.0


def columns(
    values: Sequence[int | float],
    labels: Sequence[str],
    *,
    title: str,
    width: int = 600,
    height: int = 180,
    label_every: int = 1,
) -> Chart:
    """Vertical bars (volume by hour): one column per value, labels under some of them."""
    top, bottom = 16, 22
    plot = height - top - bottom
    step = width / max(len(values), 1)
    peak = _nice_max(max(values, default=0))
    bars = []
    for index, (value, label) in enumerate(zip(values, labels, strict=True)):
        h = plot * value / peak
        x = index * step + step * 0.15
        y = top + plot - h
        center = round(index * step + step / 2, 1)
        bars.append(
            Bar(
                name=label,
                label=label if index % label_every == 0 else "",
                value=value,
                x=round(x, 1),
                y=round(y, 1),
                width=round(step * 0.7, 1),
                height=round(h, 1),
                label_x=center,
                label_y=height - 6,
                value_x=center,
                value_y=round(y - 3, 1),
                value_text=str(value) if value else "",
            )
        )
    return Chart(width, height, bars, title, empty=not any(values), baseline=top + plot)


def rows(
    items: Sequence[tuple[str, int | float]],
    *,
    title: str,
    width: int = 600,
    row_height: int = 26,
    label_width: int = 230,
    css: Sequence[str] | None = None,
    value_format: str = "{}",
) -> Chart:
    """Horizontal bars (by intent, escalation reasons, CSAT distribution): one row per item."""
    plot = width - label_width - 60
    peak = _nice_max(max((v for _l, v in items), default=0))
    bars = []
    for index, (label, value) in enumerate(items):
        w = plot * value / peak
        y = index * row_height
        middle = y + row_height / 2 + 4
        bars.append(
            Bar(
                name=label,
                label=label if len(label) <= 34 else label[:33] + "…",
                value=value,
                x=label_width,
                y=y + 4,
                width=round(max(w, 1.5 if value else 0), 1),
                height=row_height - 8,
                label_x=label_width - 8,
                label_y=middle,
                value_x=round(label_width + w + 6, 1),
                value_y=middle,
                value_text=value_format.format(value),
                css=(css[index] if css and index < len(css) else ""),
            )
        )
    return Chart(
        width,
        max(row_height * len(items), row_height),
        bars,
        title,
        empty=not any(v for _l, v in items),
    )


def meter(value: float | None, *, width: int = 240, height: int = 14) -> dict[str, float]:
    """A 0–100 % bar (containment rate)."""
    share = max(0.0, min(100.0, value or 0.0))
    return {"width": width, "height": height, "fill": round(width * share / 100, 1)}
