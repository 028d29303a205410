#!/usr/bin/env python3
"""Turns a terminal capture (`tmux capture-pane -p`) into an SVG for the README.

    python3 scripts/text-to-svg.py capture.txt out.svg "title" """

import html
import sys

src, dst, title = sys.argv[1], sys.argv[2], sys.argv[3]
lines = open(src, encoding="utf-8").read().rstrip("\n").split("\n")
cols = max(len(line) for line in lines)
cw, lh, pad = 8.4, 17, 12
w, h = int(cols * cw + 2 * pad), int(len(lines) * lh + 2 * pad + 22)
out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}">',
       f'<title>{html.escape(title)}</title>',
       f'<rect width="{w}" height="{h}" rx="6" fill="#1e1e2e"/>',
       f'<text x="{pad}" y="{pad + 10}" fill="#9399b2" font-family="monospace" font-size="12">{html.escape(title)}</text>',
       '<g font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" font-size="14" fill="#cdd6f4" xml:space="preserve">']
for i, line in enumerate(lines):
    y = pad + 22 + (i + 1) * lh - 4
    fill = ""
    if "LIVE" in line or "> Cancel <" in line:
        fill = ' fill="#a6e3a1"'
    out.append(f'<text x="{pad}" y="{y}" textLength="{len(line) * cw:.1f}"{fill}>{html.escape(line)}</text>')
out.append("</g></svg>")
open(dst, "w", encoding="utf-8").write("\n".join(out) + "\n")
