"""Charts as inline SVG, rendered on the server: no script, no third-party CDN. Every chart has a title
and a description for screen readers, and the pages show the same numbers in a table beside it."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from markupsafe import Markup, escape

PALETTE = ("#1f4e79", "#c55a11", "#548235", "#7030a0", "#bf9000")
_ids = itertools.count(1)


def _fmt(value: float, percent: bool) -> str:
    if percent:
        return f"{value * 100:.1f} %".replace(".", ",")
    return f"{value:,.0f}".replace(",", ".") if value == int(value) else f"{value:.1f}".replace(".", ",")


def bar_chart(
    title: str,
    items: Sequence[tuple[str, float]],
    *,
    percent: bool = False,
    width: int = 720,
    color: str = PALETTE[0],
) -> Markup:
    """Horizontal bars, one per item, labelled with their value."""
    n = next(_ids)
    label_width, value_width, row, pad = 230, 80, 24, 8
    height = pad * 2 + row * max(len(items), 1)
    largest = max((v for _, v in items), default=0) or 1
    span = width - label_width - value_width
    parts = [
        f'<svg class="chart" role="img" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}" aria-labelledby="chart{n}t chart{n}d">',
        f'<title id="chart{n}t">{escape(title)}</title>',
        f'<desc id="chart{n}d">{escape(title)}: '
        + escape("; ".join(f"{label} {_fmt(v, percent)}" for label, v in items) or "keine Daten")
        + "</desc>",
    ]
    if not items:
        parts.append(f'<text x="{pad}" y="{pad + 16}" class="muted">keine Daten</text>')
    for index, (label, value) in enumerate(items):
        y = pad + index * row
        bar = max(0.0, value) / largest * span
        shown = label if len(label) <= 34 else label[:33] + "…"
        parts.append(
            f'<text x="{label_width - 6}" y="{y + 16}" text-anchor="end">{escape(shown)}</text>'
            f'<rect x="{label_width}" y="{y + 4}" width="{bar:.1f}" height="{row - 8}" fill="{color}"/>'
            f'<text x="{label_width + bar + 4:.1f}" y="{y + 16}">{escape(_fmt(value, percent))}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 -- every text in it went through escape()


def column_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float]]],
    *,
    width: int = 720,
    height: int = 240,
) -> Markup:
    """Vertical columns over time (days or weeks), one colour per series, with a legend."""
    n = next(_ids)
    left, bottom, top = 44, 34, 28
    plot_h = height - bottom - top
    plot_w = width - left - 10
    largest = max((v for _, values in series for v in values), default=0) or 1
    groups = max(len(labels), 1)
    slot = plot_w / groups
    bar_w = max(1.0, (slot - 2) / max(len(series), 1))
    parts = [
        f'<svg class="chart" role="img" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}" aria-labelledby="chart{n}t chart{n}d">',
        f'<title id="chart{n}t">{escape(title)}</title>',
        f'<desc id="chart{n}d">{escape(title)}; die Werte stehen in der Tabelle unter der Grafik.</desc>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 10}" y2="{top + plot_h}" stroke="#555"/>',
        f'<text x="{left - 4}" y="{top + 4}" text-anchor="end" class="small">'
        f"{escape(_fmt(largest, False))}</text>",
        f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end" class="small">0</text>',
    ]
    for s, (name, values) in enumerate(series):
        color = PALETTE[s % len(PALETTE)]
        parts.append(
            f'<rect x="{left + s * 150}" y="6" width="12" height="12" fill="{color}"/>'
            f'<text x="{left + s * 150 + 16}" y="16" class="small">{escape(name)}</text>'
        )
        for i, value in enumerate(values):
            h = max(0.0, value) / largest * plot_h
            x = left + i * slot + 1 + s * bar_w
            parts.append(
                f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}"'
                f' fill="{color}"><title>{escape(labels[i])}: {escape(_fmt(value, False))}</title></rect>'
            )
    step = max(1, len(labels) // 8)
    for i in range(0, len(labels), step):
        x = left + i * slot + slot / 2
        parts.append(
            f'<text x="{x:.1f}" y="{height - 12}" text-anchor="middle" class="small">'
            f"{escape(labels[i])}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 -- every text in it went through escape()
