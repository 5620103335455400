"""Tiny inline-SVG charts (no plotting library): a line chart and a grouped bar chart."""

from __future__ import annotations

from html import escape

COLOURS = ("#3b6fb6", "#e07b39", "#4a9a5b", "#a05195")


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    import math

    exp = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * exp:
            return step * exp
    return 10 * exp


def line_chart(series: dict, title: str, x_label: str, y_label: str, width: int = 420, height: int = 260) -> str:
    """`series`: {name: [(x, y), ...]}. X values are placed evenly by rank (batch sizes 1, 2, 4 ...)."""
    xs = sorted({x for points in series.values() for x, _ in points})
    ys = [y for points in series.values() for _, y in points]
    left, right, top, bottom = 56, 16, 28, 40
    pw, ph = width - left - right, height - top - bottom
    parts = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
              f'aria-label="{escape(title)}" font-family="sans-serif" font-size="11">'),
             f'<text x="{width / 2}" y="16" text-anchor="middle" font-size="13">{escape(title)}</text>']
    if not xs or not ys:
        parts.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle">not measured</text></svg>')
        return "".join(parts)
    ymax = _nice_max(max(ys))
    px = (lambda x: left + (xs.index(x) + 0.5) * pw / len(xs))
    py = (lambda y: top + ph - y / ymax * ph)
    parts.append(f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="#444"/>')
    parts.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" stroke="#444"/>')
    for i in range(5):
        v = ymax * i / 4
        parts.append(f'<text x="{left - 4}" y="{py(v) + 4:.1f}" text-anchor="end">{v:g}</text>')
        parts.append(f'<line x1="{left}" y1="{py(v):.1f}" x2="{left + pw}" y2="{py(v):.1f}" stroke="#ddd"/>')
    for x in xs:
        parts.append(f'<text x="{px(x):.1f}" y="{top + ph + 14}" text-anchor="middle">{x}</text>')
    parts.append(f'<text x="{left + pw / 2}" y="{height - 6}" text-anchor="middle">{escape(x_label)}</text>')
    parts.append(f'<text x="12" y="{top + ph / 2}" text-anchor="middle" '
                 f'transform="rotate(-90 12 {top + ph / 2})">{escape(y_label)}</text>')
    for i, (name, points) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in points)
        parts.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, y in points:
            parts.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{colour}">'
                         f'<title>{escape(name)}: {y:.1f} at {x}</title></circle>')
        parts.append(f'<rect x="{left + 8}" y="{top + 4 + 14 * i}" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{left + 22}" y="{top + 13 + 14 * i}">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(groups: dict, title: str, unit: str, width: int = 420, height: int = 260) -> str:
    """`groups`: {group label: {series name: value or None}}; each group is scaled to its own maximum, so
    groups with different units (ms, MB) can sit side by side; the value is written on each bar."""
    left, right, top, bottom = 16, 16, 28, 40
    pw, ph = width - left - right, height - top - bottom
    parts = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
              f'aria-label="{escape(title)}" font-family="sans-serif" font-size="11">'),
             f'<text x="{width / 2}" y="16" text-anchor="middle" font-size="13">{escape(title)}</text>']
    names = list(dict.fromkeys(n for g in groups.values() for n in g))
    gw = pw / max(1, len(groups))
    bw = gw * 0.7 / max(1, len(names))
    for gi, (label, values) in enumerate(groups.items()):
        present = [v for v in values.values() if v is not None]
        gmax = max(present) if present else 0
        for ni, name in enumerate(names):
            value = values.get(name)
            x = left + gi * gw + gw * 0.15 + ni * bw
            if value is None:
                parts.append(f'<text x="{x + bw / 2:.1f}" y="{top + ph - 4}" text-anchor="middle">n/a</text>')
                continue
            h = 0 if not gmax else value / gmax * (ph - 16)
            parts.append(f'<rect x="{x:.1f}" y="{top + ph - h:.1f}" width="{bw - 2:.1f}" height="{h:.1f}" '
                         f'fill="{COLOURS[ni % len(COLOURS)]}"><title>{escape(name)}: {value:.4g}</title></rect>')
            parts.append(f'<text x="{x + bw / 2:.1f}" y="{top + ph - h - 3:.1f}" text-anchor="middle">'
                         f'{value:.3g}</text>')
        parts.append(f'<text x="{left + gi * gw + gw / 2:.1f}" y="{top + ph + 14}" text-anchor="middle">'
                     f'{escape(label)}</text>')
    parts.append(f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="#444"/>')
    for ni, name in enumerate(names):
        parts.append(f'<rect x="{left + 8 + 90 * ni}" y="{height - 14}" width="10" height="10" '
                     f'fill="{COLOURS[ni % len(COLOURS)]}"/><text x="{left + 22 + 90 * ni}" y="{height - 5}">'
                     f'{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)
