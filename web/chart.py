"""The console's chart, drawn on the server as SVG (no script, no CDN): questions per day as bars,
the share declined and the share 👎 as lines over them."""

from __future__ import annotations

from markupsafe import escape

WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 44, 44, 16, 40
# Colours with at least 3:1 against white (WCAG 1.4.11); the lines also differ by dash.
BAR, DECLINED, DOWN = "#4a6fa5", "#b3261e", "#6b4e00"


def daily_chart(days: list[dict]) -> str:
    """``days``: ``[{"day", "questions", "declined", "down"}]``, oldest first."""
    n = max(len(days), 1)
    peak = max([d["questions"] for d in days] + [1])
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / n
    total = sum(d["questions"] for d in days)
    declined = sum(d["declined"] for d in days)
    down = sum(d["down"] for d in days)
    title = (f"近{len(days)}天每日提问数：共 {total} 个问题，未回答 {declined} 个，👎 {down} 个")
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
           f'aria-labelledby="chart-title" font-family="sans-serif" font-size="12">',
           f'<title id="chart-title">{escape(title)}</title>',
           f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#fff"/>',
           f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" y2="{TOP + plot_h}" stroke="#555"/>',
           f'<text x="{LEFT - 6}" y="{TOP + 10}" text-anchor="end" fill="#333">{peak}</text>',
           f'<text x="{LEFT - 6}" y="{TOP + plot_h}" text-anchor="end" fill="#333">0</text>',
           f'<text x="{LEFT + plot_w + 6}" y="{TOP + 10}" fill="#333">100%</text>']
    declined_pts, down_pts = [], []
    for i, d in enumerate(days):
        x = LEFT + i * step
        h = plot_h * d["questions"] / peak
        label = f'{d["day"]}：{d["questions"]} 个问题，未回答 {d["declined"]}，👎 {d["down"]}'
        out.append(f'<rect class="bar" x="{x + step * 0.15:.1f}" y="{TOP + plot_h - h:.1f}" width="{step * 0.7:.1f}" '
                   f'height="{h:.1f}" fill="{BAR}"><title>{escape(label)}</title></rect>')
        if d["questions"]:
            cx = x + step / 2
            declined_pts.append(f"{cx:.1f},{TOP + plot_h * (1 - d['declined'] / d['questions']):.1f}")
            down_pts.append(f"{cx:.1f},{TOP + plot_h * (1 - d['down'] / d['questions']):.1f}")
        if i % max(1, n // 6) == 0:
            out.append(f'<text x="{x + step / 2:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" fill="#333">'
                       f'{escape(d["day"][5:])}</text>')
    if len(declined_pts) > 1:
        out.append(f'<polyline points="{" ".join(declined_pts)}" fill="none" stroke="{DECLINED}" stroke-width="2"/>')
        out.append(f'<polyline points="{" ".join(down_pts)}" fill="none" stroke="{DOWN}" stroke-width="2" '
                   f'stroke-dasharray="6 3"/>')
    legend_y = HEIGHT - 8
    out += [f'<rect x="{LEFT}" y="{legend_y - 9}" width="10" height="10" fill="{BAR}"/>',
            f'<text x="{LEFT + 14}" y="{legend_y}" fill="#333">提问数</text>',
            f'<line x1="{LEFT + 80}" y1="{legend_y - 4}" x2="{LEFT + 100}" y2="{legend_y - 4}" stroke="{DECLINED}" stroke-width="2"/>',
            f'<text x="{LEFT + 104}" y="{legend_y}" fill="#333">未回答占比</text>',
            f'<line x1="{LEFT + 190}" y1="{legend_y - 4}" x2="{LEFT + 210}" y2="{legend_y - 4}" stroke="{DOWN}" '
            f'stroke-width="2" stroke-dasharray="6 3"/>',
            f'<text x="{LEFT + 214}" y="{legend_y}" fill="#333">👎占比</text>', "</svg>"]
    return "".join(out)
