"""Small inline SVG charts: the report page must work with no internet, so no charting library is fetched.

Every label is escaped here; the numbers are ours. Each chart is a <figure> with a text fallback (<title>
on each mark) so a screen reader and a text browser read the values too.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

PALETTE = ("#2f6fdf", "#e0803a", "#3a9d5d", "#c0392b", "#8e6bbf", "#7f8c8d", "#d4ac0d", "#16a085")
OK, BAD, MUTED = "#3a9d5d", "#c0392b", "#b0b7bf"


def bars(values: dict[str, float], *, unit: str = "", width: int = 460) -> Markup:
    """Horizontal bars, one per label, longest first as given."""
    if not values:
        return Markup('<p class="empty">nothing in this window</p>')
    # About 8 px per character at 12 px (upper case runs wide): the longest label fits (RETRY_WITH_NEW_PARAMS is 21 characters).
    row, label_w = 24, min(max(8 * max(len(label) for label in values) + 12, 80), width // 2)
    top = max(values.values()) or 1
    height = row * len(values) + 8
    parts = [f'<svg role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}">']
    for i, (label, value) in enumerate(values.items()):
        y = 4 + i * row
        w = max((width - label_w - 60) * value / top, 1)
        text = f"{_num(value)}{unit}"
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end" class="lbl">{escape(label)}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row - 8}" fill="{PALETTE[i % len(PALETTE)]}">'
            f"<title>{escape(label)}: {text}</title></rect>"
            f'<text x="{label_w + w + 6:.1f}" y="{y + 16}" class="val">{text}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def daily(days: Sequence[tuple[str, int, int, int]], *, width: int = 640, height: int = 200) -> Markup:
    """Per day: decisions (grey) and reruns that succeeded (green) or failed again (red), side by side."""
    if not days:
        return Markup('<p class="empty">nothing in this window</p>')
    left, bottom = 36, 28
    plot_w, plot_h = width - left - 8, height - bottom - 10
    top = max(max(d[1], d[2] + d[3]) for d in days) or 1
    slot = plot_w / len(days)
    bar = max(min(slot / 3, 28), 2)
    parts = [f'<svg role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}">',
             f'<line x1="{left}" y1="{10 + plot_h}" x2="{width - 8}" y2="{10 + plot_h}" class="axis"/>',
             f'<text x="{left - 6}" y="16" text-anchor="end" class="val">{top}</text>',
             f'<text x="{left - 6}" y="{10 + plot_h}" text-anchor="end" class="val">0</text>']
    for i, (day, decisions, succeeded, failed) in enumerate(days):
        x = left + i * slot + (slot - 2 * bar) / 2
        parts.append(_column(x, bar, plot_h, top, [(decisions, MUTED, f"{day}: {decisions} decisions")]))
        parts.append(_column(x + bar, bar, plot_h, top, [
            (succeeded, OK, f"{day}: {succeeded} reruns succeeded"), (failed, BAD, f"{day}: {failed} failed again")]))
        parts.append(f'<text x="{x + bar:.1f}" y="{height - 8}" text-anchor="middle" class="val">'
                     f"{escape(day[5:])}</text>")
    parts.append("</svg>")
    return Markup("".join(parts))


def _column(x: float, w: float, plot_h: float, top: float, stack: list[tuple[int, str, str]]) -> str:
    out, base = [], 10 + plot_h
    for value, colour, title in stack:
        if value <= 0:
            continue
        h = plot_h * value / top
        base -= h
        out.append(f'<rect x="{x:.1f}" y="{base:.1f}" width="{w:.1f}" height="{h:.1f}" fill="{colour}">'
                   f"<title>{escape(title)}</title></rect>")
    return "".join(out)


def _num(value: float) -> str:
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.4f}" if value < 1 else f"{value:,.2f}"
