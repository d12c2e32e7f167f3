"""The match-weight distribution as an inline SVG, drawn on the server (no script, no library).

Two stacked series over the same bins: scores of records linked automatically and scores of
pairs sent for review. Works for probabilities (0..1) and for Splink match weights (any range).
"""
from __future__ import annotations

import math
from html import escape

WIDTH, HEIGHT, PAD_L, PAD_B, PAD_T, PAD_R = 640, 220, 44, 36, 12, 12
COLOURS = {"linked": "#2f6f9f", "review": "#d08a1c"}


def _bounds(values: list[float]) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    if lo >= 0 and hi <= 1:
        return 0.0, 1.0
    lo, hi = math.floor(lo), math.ceil(hi)
    return (lo, hi) if hi > lo else (lo - 1, hi + 1)


def histogram(linked: list[float], review: list[float], bins: int = 20) -> tuple[list[float], list[int], list[int]]:
    values = linked + review
    if not values:
        return [], [], []
    lo, hi = _bounds(values)
    step = (hi - lo) / bins
    edges = [lo + i * step for i in range(bins + 1)]

    def count(series: list[float]) -> list[int]:
        out = [0] * bins
        for v in series:
            out[min(bins - 1, max(0, int((v - lo) / step)))] += 1
        return out

    return edges, count(linked), count(review)


def weight_chart(linked: list[float], review: list[float], title: str = "Match score distribution") -> str:
    """SVG markup (safe to embed: only numbers and fixed labels)."""
    edges, n_linked, n_review = histogram(linked, review)
    head = (f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="chart-title" '
            f'xmlns="http://www.w3.org/2000/svg"><title id="chart-title">{escape(title)}</title>')
    if not edges:
        return head + f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" fill="#5b6b7c">No scores this night</text></svg>'
    highest = max(a + b for a, b in zip(n_linked, n_review)) or 1
    top = max(4, math.ceil(highest / 4) * 4)  # four whole-number grid steps
    plot_w, plot_h = WIDTH - PAD_L - PAD_R, HEIGHT - PAD_T - PAD_B
    bar_w = plot_w / len(n_linked)
    parts = [head]
    for i in range(5):  # horizontal grid and counts
        y = PAD_T + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{PAD_L}" x2="{WIDTH - PAD_R}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e8ee"/>')
        parts.append(f'<text x="{PAD_L - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="#5b6b7c">{top * i // 4}</text>')
    for i, (a, b) in enumerate(zip(n_linked, n_review)):
        x = PAD_L + i * bar_w + 1
        h_a, h_b = plot_h * a / top, plot_h * b / top
        base = PAD_T + plot_h
        if a:
            parts.append(f'<rect x="{x:.1f}" y="{base - h_a:.1f}" width="{bar_w - 2:.1f}" height="{h_a:.1f}" fill="{COLOURS["linked"]}">'
                         f'<title>{a} linked, score {edges[i]:.2f} to {edges[i + 1]:.2f}</title></rect>')
        if b:
            parts.append(f'<rect x="{x:.1f}" y="{base - h_a - h_b:.1f}" width="{bar_w - 2:.1f}" height="{h_b:.1f}" fill="{COLOURS["review"]}">'
                         f'<title>{b} for review, score {edges[i]:.2f} to {edges[i + 1]:.2f}</title></rect>')
    for i in range(0, len(edges), 4):  # x labels
        x = PAD_L + i * bar_w
        parts.append(f'<text x="{x:.1f}" y="{HEIGHT - PAD_B + 16}" text-anchor="middle" font-size="11" fill="#5b6b7c">{edges[i]:g}</text>')
    parts.append(f'<line x1="{PAD_L}" x2="{WIDTH - PAD_R}" y1="{PAD_T + plot_h}" y2="{PAD_T + plot_h}" stroke="#8a98a8"/>')
    legend_y = HEIGHT - 6
    parts.append(f'<rect x="{PAD_L}" y="{legend_y - 9}" width="10" height="10" fill="{COLOURS["linked"]}"/>'
                 f'<text x="{PAD_L + 14}" y="{legend_y}" font-size="11" fill="#1d2733">linked automatically ({len(linked)})</text>')
    parts.append(f'<rect x="{PAD_L + 200}" y="{legend_y - 9}" width="10" height="10" fill="{COLOURS["review"]}"/>'
                 f'<text x="{PAD_L + 214}" y="{legend_y}" font-size="11" fill="#1d2733">sent for review ({len(review)})</text>')
    parts.append("</svg>")
    return "".join(parts)
