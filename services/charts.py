"""Small charts drawn server-side as inline SVG strings (no library, no script): safe to embed.

Labels are escaped; values may be None (a gap: nothing measured that month).
"""
from __future__ import annotations

from html import escape


def _scale(values: list[float]) -> float:
    top = max(values, default=0) or 1.0
    return top * 1.1


def line_chart(points: list[tuple[str, float | None]], *, title: str, unit: str = "", width: int = 480,
               height: int = 200) -> str:
    """A line chart of (label, value) points, left to right, with the first and last labels and the maximum."""
    pad_l, pad_r, pad_t, pad_b = 40, 12, 24, 28
    plot_w, plot_h = width - pad_l - pad_r, height - pad_t - pad_b
    values = [v for _, v in points if v is not None]
    top = _scale(values)
    n = max(len(points) - 1, 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        return pad_l + plot_w * (i / n if len(points) > 1 else 0.5), pad_t + plot_h * (1 - v / top)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
             f'role="img" aria-label="{escape(title)}">',
             f'<title>{escape(title)}</title>',
             f'<text x="{pad_l}" y="16" font-size="12" font-family="sans-serif">{escape(title)}'
             f'{" (" + escape(unit) + ")" if unit else ""}</text>',
             f'<line x1="{pad_l}" y1="{pad_t + plot_h}" x2="{pad_l + plot_w}" y2="{pad_t + plot_h}" stroke="#999"/>',
             f'<line x1="{pad_l}" y1="{pad_t}" x2="{pad_l}" y2="{pad_t + plot_h}" stroke="#999"/>',
             f'<text x="{pad_l - 4}" y="{pad_t + 4}" font-size="10" text-anchor="end" font-family="sans-serif">'
             f'{_fmt(top / 1.1) if values else "0"}</text>']
    segment: list[str] = []
    for i, (label, value) in enumerate(points):
        if value is None:
            if len(segment) > 1:
                parts.append(f'<polyline fill="none" stroke="#2563eb" stroke-width="2" points="{" ".join(segment)}"/>')
            segment = []
            continue
        x, y = xy(i, value)
        segment.append(f"{x:.1f},{y:.1f}")
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#2563eb"><title>{escape(label)}: {_fmt(value)}</title></circle>')
    if len(segment) > 1:
        parts.append(f'<polyline fill="none" stroke="#2563eb" stroke-width="2" points="{" ".join(segment)}"/>')
    if points:
        parts.append(f'<text x="{pad_l}" y="{height - 8}" font-size="10" font-family="sans-serif">{escape(points[0][0])}</text>')
        if len(points) > 1:
            parts.append(f'<text x="{pad_l + plot_w}" y="{height - 8}" font-size="10" text-anchor="end" '
                         f'font-family="sans-serif">{escape(points[-1][0])}</text>')
    else:
        parts.append(f'<text x="{width / 2}" y="{height / 2}" font-size="12" text-anchor="middle" '
                     f'font-family="sans-serif">no data</text>')
    parts.append("</svg>")
    return "".join(parts)


def _fmt(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)
