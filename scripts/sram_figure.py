"""Draw the README's on-chip SRAM what-if figure from examples/sweeps/sram-whatif.yaml.

    python scripts/sram_figure.py        # writes docs/figures/sram-whatif.svg

Runs every point of the sweep in this process (about ten seconds) and draws TPOT p50 against the
SRAM's size, one line per placement (weights or KV resident in SRAM, the rest in HBM), as a plain SVG
so the README shows it without a browser or an image exporter.
"""

from __future__ import annotations

import json
from pathlib import Path
from xml.sax.saxutils import escape

from sim.studies.sweep import load_sweep, run_point

ROOT = Path(__file__).resolve().parents[1]
SWEEP = ROOT / "examples" / "sweeps" / "sram-whatif.yaml"
OUT = ROOT / "docs" / "figures" / "sram-whatif.svg"
SIZE_FIELD = "hardware.memory.l2.capacity_bytes"
WIDTH, HEIGHT, PAD = 640, 380, 60
COLOURS = {"weights": "#1f77b4", "kv": "#d62728"}


def series() -> dict[str, list[tuple[float, float]]]:
    """(SRAM GB, TPOT p50 ms) per placement, in sweep order."""
    lines: dict[str, list[tuple[float, float]]] = {}
    for point in load_sweep(SWEEP).points:
        row = run_point(point)
        resident = "weights" if "weights" in json.loads(row["placement"]) else "kv"
        lines.setdefault(resident, []).append((row[SIZE_FIELD] / 1e9, row["tpot_p50_s"] * 1e3))
    return lines


def svg(lines: dict[str, list[tuple[float, float]]]) -> str:
    """A line chart with linear axes from 0, ticks every 4 GB and 2 ms."""
    xs = [x for pts in lines.values() for x, _ in pts]
    ys = [y for pts in lines.values() for _, y in pts]
    x_max, y_max = max(xs), 2 * (int(max(ys)) // 2 + 1)

    def px(x: float, y: float) -> tuple[float, float]:
        return (PAD + x / x_max * (WIDTH - 2 * PAD), HEIGHT - PAD - y / y_max * (HEIGHT - 2 * PAD))

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
    ]
    for gb in range(0, int(x_max) + 1, 4):
        x, y = px(gb, 0)
        out.append(f'<line x1="{x:.1f}" y1="{y:.1f}" x2="{x:.1f}" y2="{PAD}" stroke="#eee"/>')
        out.append(f'<text x="{x:.1f}" y="{y + 16:.1f}" text-anchor="middle">{gb}</text>')
    for ms in range(0, y_max + 1, 2):
        x, y = px(0, ms)
        out.append(f'<line x1="{x:.1f}" y1="{y:.1f}" x2="{WIDTH - PAD}" y2="{y:.1f}" stroke="#eee"/>')
        out.append(f'<text x="{x - 6:.1f}" y="{y + 4:.1f}" text-anchor="end">{ms}</text>')
    title = escape("Llama-3.1-8B, 6-8K prompts at 3 req/s: SRAM holding weights or KV")
    out += [
        f'<text x="{WIDTH / 2}" y="{HEIGHT - 18}" text-anchor="middle">on-chip SRAM per H100 (GB)</text>',
        f'<text transform="translate(18,{HEIGHT / 2}) rotate(-90)" text-anchor="middle">TPOT p50 (ms)</text>',
        f'<text x="{WIDTH / 2}" y="24" text-anchor="middle" font-size="14">{title}</text>',
    ]
    for i, (resident, pts) in enumerate(lines.items()):
        dots = [px(*p) for p in pts]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in dots)
        colour = COLOURS[resident]
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        out += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>' for x, y in dots]
        label = "weights in SRAM, the rest in HBM" if resident == "weights" else "KV in SRAM, the rest in HBM"
        out.append(f'<text x="{WIDTH - PAD - 220}" y="{PAD + 18 * i}" fill="{colour}">{label}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(svg(series()))
    print(f"wrote {OUT.relative_to(ROOT)}")
