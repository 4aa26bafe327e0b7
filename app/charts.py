"""Small server-rendered SVG charts (no script, no library): the frame every chart shares, lines
through time and horizontal bars.

Each chart is an image (`role="img"`) named by a one-line label that says its main figure, with a
`<desc>` when there is more to say; the page beside it shows the same figures as text or a table,
so nothing is only in the picture. Values are plain numbers: the caller formats them (money in its
currency, percentages) and never mixes currencies in one chart.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

from markupsafe import Markup, escape

W, H, PAD_L, PAD_R, PAD_T, PAD_B = 640, 220, 64, 16, 16, 28
#: Series colours, each at least 4.5:1 against white (text in the legend uses them too).
COLORS = ("#0f7b5f", "#0b5ed7", "#a04d00", "#6f42c1")
MUTED, AXIS = "#6c757d", "#adb5bd"
BAR_ROW, BAR_LABEL_W, BAR_VALUE_W = 24, 150, 110
#: Room left of a line chart for its y labels (amounts such as "CN¥12,345"), at the larger phone size too.
LINE_PAD_L = 96


def _text_width(content: str) -> int:
    """Room for a label at the phone size (app.css: 15px): Chinese characters are about twice as wide."""
    return sum(16 if ord(char) >= 0x2E80 else 10 for char in content)


def text(x: float, y: float, content: str, *, anchor: str = "start", fill: str = MUTED, size: int = 11) -> str:
    """An SVG text element, escaped."""
    return f'<text x="{x}" y="{y}" font-size="{size}" fill="{fill}" text-anchor="{anchor}">{escape(content)}</text>'


def svg(label: str, parts: Sequence[str], *, css_class: str = "chart", height: int = H, desc: str = "") -> Markup:
    """The frame: an image named by `label` (its title too), described by `desc`, drawing `parts`."""
    description = f"<desc>{escape(desc)}</desc>" if desc else ""
    return Markup(
        f'<svg class="{css_class}" viewBox="0 0 {W} {height}" role="img" aria-label="{escape(label)}" '
        f'preserveAspectRatio="xMidYMid meet"><title>{escape(label)}</title>{description}{"".join(parts)}</svg>'
    )


def line_chart(label: str, x_labels: Sequence[str], series: Sequence[tuple[str, Sequence[float]]],
               fmt: Callable[[float], str], *, top: float | None = None, desc: str = "") -> Markup:
    """One line per series over evenly spaced points (weeks), from 0 to `top` (default: the largest
    value, marked by a dotted line); the first and last x labels under the axis, a legend when there
    are several."""
    points = len(x_labels)
    if points < 2 or not series:
        return Markup("")
    highest = max((max(values, default=0) for _name, values in series), default=0)
    top = top or highest or 1
    legend_h = 18 if len(series) > 1 else 0
    pad_t = PAD_T + legend_h

    def xy(i: int, value: float) -> str:
        x = LINE_PAD_L + (W - LINE_PAD_L - PAD_R) * i / (points - 1)
        y = pad_t + (H - pad_t - PAD_B) * (1 - value / top)
        return f"{round(x, 1)},{round(y, 1)}"

    parts = [
        f'<line x1="{LINE_PAD_L}" y1="{H - PAD_B}" x2="{W - PAD_R}" y2="{H - PAD_B}" stroke="{AXIS}"/>',
        f'<line x1="{LINE_PAD_L}" y1="{pad_t}" x2="{W - PAD_R}" y2="{pad_t}" stroke="{AXIS}" stroke-dasharray="2 4"/>',
        text(LINE_PAD_L - 6, pad_t + 4, fmt(top), anchor="end"),
        text(LINE_PAD_L - 6, H - PAD_B, fmt(0), anchor="end"),
        text(LINE_PAD_L, H - 8, x_labels[0]),
        text(W - PAD_R, H - 8, x_labels[-1], anchor="end"),
    ]
    x = LINE_PAD_L
    for n, (name, values) in enumerate(series):
        color = COLORS[n % len(COLORS)]
        line = " ".join(xy(i, value) for i, value in enumerate(values))
        parts.append(f'<polyline points="{line}" fill="none" stroke="{color}" stroke-width="2.5" stroke-linejoin="round"/>')
        if legend_h:
            parts.append(f'<rect x="{x}" y="{PAD_T - 9}" width="10" height="10" fill="{color}"/>')
            parts.append(text(x + 14, PAD_T, name, fill=color))
            x += 28 + _text_width(name)
    return svg(label, parts, desc=desc)


def bar_chart(label: str, rows: Sequence[tuple[str, float, str]], *, top: float | None = None, desc: str = "") -> Markup:
    """Horizontal bars: one row per (name, value, value as written), scaled to `top` (default: the
    largest value)."""
    if not rows:
        return Markup("")
    top = top or max(value for _name, value, _written in rows) or 1
    height = PAD_T + BAR_ROW * len(rows) + 4
    width = W - BAR_LABEL_W - BAR_VALUE_W
    parts = [f'<line x1="{BAR_LABEL_W}" y1="{PAD_T - 4}" x2="{BAR_LABEL_W}" y2="{height - 2}" stroke="{AXIS}"/>']
    for i, (name, value, written) in enumerate(rows):
        y = PAD_T + BAR_ROW * i
        length = round(width * max(value, 0) / top, 1)
        parts.append(text(BAR_LABEL_W - 8, y + 13, name, anchor="end", fill="#212529"))
        parts.append(f'<rect x="{BAR_LABEL_W}" y="{y + 2}" width="{length}" height="{BAR_ROW - 8}" fill="{COLORS[0]}"/>')
        parts.append(text(BAR_LABEL_W + length + 6, y + 13, written, fill="#212529"))
    return svg(label, parts, css_class="chart chart-bars", height=height, desc=desc)
