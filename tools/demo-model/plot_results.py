"""SVG plots of train.py's PyTorch measurement (eval-torch.json): perplexity by position bucket for
each length, plain vs Self-Extend, and passkey accuracy (length x depth) for both methods.

  python3 tools/demo-model/plot_results.py packages/demo-model/results/pytorch-eval.json \
      packages/demo-model/results/pytorch-ppl.svg packages/demo-model/results/pytorch-passkey.svg
"""
import json
import math
import sys

src, ppl_svg, passkey_svg = sys.argv[1:4]
r = json.load(open(src))

# --- perplexity against position (log y), one line per run
runs = [p for p in r["ppl"] if p["length"] > 256] + [p for p in r["ppl"] if p["length"] == 256]
W, H, left, top, right, bottom = 760, 420, 70, 40, 200, 50
xmax = max(p["length"] for p in runs)
ymin, ymax = 4.0, 200.0


def X(pos):
    return left + (W - left - right) * math.log2(max(pos, 1) / 128) / math.log2(xmax / 128)


def Y(v):
    return top + (H - top - bottom) * (1 - (math.log(v) - math.log(ymin)) / (math.log(ymax) - math.log(ymin)))


colors = {256: "#444", 512: "#1f77b4", 1024: "#2ca02c", 2048: "#d62728"}
out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
       "<title>demo-model: perplexity by position, plain vs Self-Extend</title>",
       f'<rect width="{W}" height="{H}" fill="white"/>',
       f'<text x="{left}" y="22" font-size="14">demo-model: perplexity by position (65,536 tokens of TinyStories validation text, PyTorch fp32)</text>']
for v in (5, 10, 20, 50, 100, 200):
    out.append(f'<line x1="{left}" x2="{W - right}" y1="{Y(v):.1f}" y2="{Y(v):.1f}" stroke="#ddd"/>'
               f'<text x="{left - 8}" y="{Y(v) + 4:.1f}" text-anchor="end">{v}</text>')
for pos in (128, 256, 512, 1024, 2048):
    out.append(f'<line x1="{X(pos):.1f}" x2="{X(pos):.1f}" y1="{top}" y2="{H - bottom}" stroke="#eee"/>'
               f'<text x="{X(pos):.1f}" y="{H - bottom + 16}" text-anchor="middle">{pos}</text>')
out.append(f'<line x1="{X(256):.1f}" x2="{X(256):.1f}" y1="{top}" y2="{H - bottom}" stroke="#999" stroke-dasharray="4 3"/>'
           f'<text x="{X(256) + 4:.1f}" y="{top + 12}" fill="#666">trained context 256</text>')
out.append(f'<text x="{(left + W - right) / 2}" y="{H - 12}" text-anchor="middle">position in window (bucket midpoint, log scale)</text>')
legend_y = top + 10
for p in runs:
    pts = []
    for name, v in p["buckets"].items():
        lo, hi = map(int, name.split("-"))
        pts.append((math.sqrt(max(lo, 1) * (hi + 1)) if lo else 128, min(max(v, ymin), ymax)))
    color = colors.get(p["length"], "#000")
    dash = "" if p["method"] == "self-extend" else ' stroke-dasharray="6 4"'
    path = " ".join(f"{'M' if i == 0 else 'L'}{X(a):.1f},{Y(b):.1f}" for i, (a, b) in enumerate(pts))
    out.append(f'<path d="{path}" fill="none" stroke="{color}" stroke-width="2"{dash}/>')
    for a, b in pts:
        out.append(f'<circle cx="{X(a):.1f}" cy="{Y(b):.1f}" r="3" fill="{color}"/>')
    label = f'N={p["length"]} ' + ("plain" if p["method"] == "plain" else f'SE G={p["se"][0]} W={p["se"][1]}')
    out.append(f'<line x1="{W - right + 10}" x2="{W - right + 34}" y1="{legend_y}" y2="{legend_y}" stroke="{color}" stroke-width="2"{dash}/>'
               f'<text x="{W - right + 40}" y="{legend_y + 4}">{label} ({p["ppl"]:.2f})</text>')
    legend_y += 18
out.append("</svg>")
open(ppl_svg, "w").write("\n".join(out) + "\n")

# --- passkey heatmaps
cells = r["passkey"]
lengths = sorted({c["length"] for c in cells})
depths = sorted({c["depth"] for c in cells})
cw, ch, gap = 56, 26, 40
W2 = 90 + 2 * (len(depths) * cw) + gap + 20
H2 = 70 + len(lengths) * ch + 40
out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W2}" height="{H2}" font-family="sans-serif" font-size="12">',
       "<title>demo-model: passkey accuracy by length and depth, plain vs Self-Extend</title>",
       f'<rect width="{W2}" height="{H2}" fill="white"/>',
       f'<text x="10" y="20" font-size="14">demo-model passkey accuracy ({cells[0]["trials"]} trials per cell, PyTorch fp32, greedy)</text>']
for m_i, method in enumerate(("plain", "self-extend")):
    x0 = 90 + m_i * (len(depths) * cw + gap)
    out.append(f'<text x="{x0 + len(depths) * cw / 2}" y="44" text-anchor="middle">{"plain attention" if method == "plain" else "Self-Extend (planner G, W)"}</text>')
    for d_i, d in enumerate(depths):
        out.append(f'<text x="{x0 + d_i * cw + cw / 2}" y="{70 + len(lengths) * ch + 16}" text-anchor="middle">{d}</text>')
    for l_i, n in enumerate(lengths):
        y = 56 + l_i * ch
        if m_i == 0:
            out.append(f'<text x="80" y="{y + ch / 2 + 4}" text-anchor="end">N={n}</text>')
        for d_i, d in enumerate(depths):
            c = next(c for c in cells if c["length"] == n and c["method"] == method and c["depth"] == d)
            a = c["accuracy"]
            fill = f"rgb({int(230 - 190 * a)},{int(80 + 120 * a)},{int(80 + 40 * a)})"
            out.append(f'<rect x="{x0 + d_i * cw}" y="{y}" width="{cw - 2}" height="{ch - 2}" fill="{fill}"/>'
                       f'<text x="{x0 + d_i * cw + cw / 2 - 1}" y="{y + ch / 2 + 3}" text-anchor="middle" fill="white">{a:.2f}</text>')
out.append(f'<text x="{W2 / 2}" y="{H2 - 6}" text-anchor="middle">depth of the key line (0 = start, 1 = end)</text>')
out.append("</svg>")
open(passkey_svg, "w").write("\n".join(out) + "\n")
print(f"wrote {ppl_svg} and {passkey_svg}")
