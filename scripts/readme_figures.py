"""Print the figures the README quotes from its examples, so that a refitted profile or an engine
change can be carried into the prose (the golden summaries in tests/golden/ catch that they moved;
this says what to).

    python scripts/readme_figures.py                  # every figure, about 10 seconds
    python scripts/readme_figures.py sram offload     # some of them

Each figure runs an example as `ctxsim run --set ...` or `ctxsim sweep --set ...` would (a sweep
with `--set stack=none` gives the catalog presets' numbers the README sets beside the default
profile's) and prints one line per run with the summary fields the README cites. `ctxsim run
examples/chat-h100.yaml` prints the README's output block itself.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from sim.api import run
from sim.scenario import load_scenario
from sim.studies.sweep import load_sweep

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


class Figure(NamedTuple):
    file: str  # under examples/: a scenario, or a sweep (under sweeps/)
    variants: tuple[tuple[str, ...], ...]  # the --set list of each run (of every point of a sweep)
    fields: tuple[str, ...]  # summary fields printed


PRESETS = ("stack=none",)
FIGURES = {
    "multiturn": Figure(
        "multiturn-prefix-cache.yaml",
        ((), ("cluster.router=round_robin",)),
        ("offered_rps", "prefix_hit_rate_tokens", "ttft_p99_s", "slo_attainment", "steady_state"),
    ),
    "disaggregated": Figure(
        "sweeps/disaggregated-vs-colocated.yaml",
        ((),),
        ("ttft_p50_s", "tpot_p90_s", "kv_transfer_mean_s", "overloaded"),
    ),
    "lpu": Figure("chat-70b-groq-lpu.yaml", ((),), ("tpot_p50_s",)),
    "sram": Figure("sweeps/sram-whatif.yaml", ((), PRESETS), ("tpot_p50_s",)),
    "offload": Figure(
        "sweeps/offload-gb200.yaml",
        ((),),
        ("offered_rps", "throughput_rps", "ttft_p50_s", "slo_attainment"),
    ),
    "sparse": Figure("sweeps/sparse-vs-dense-long-context.yaml", ((), PRESETS), ("ttft_p50_s",)),
    "qwen3-next": Figure(
        "sweeps/qwen3-next-vs-qwen3-32b-1m.yaml", ((), PRESETS), ("ttft_p50_s", "tpot_p50_s")
    ),
}


def runs(figure: Figure) -> Iterator[tuple[str, dict]]:
    """(label, summary) of every run a figure makes, in the file's order."""
    path = EXAMPLES / figure.file
    for sets in figure.variants:
        tag = " ".join(f"--set {s}" for s in sets)
        if path.parent.name == "sweeps":
            for point in load_sweep(path, sets).points:
                yield f"{point.label} {tag}".strip(), run(point.scenario).summary.to_dict()
        else:
            yield tag or "as written", run(load_scenario(path, sets)).summary.to_dict()


def shown(field: str, value: object) -> str:
    """A field as the README writes it: seconds in ms below 1 s, fractions in %."""
    if not isinstance(value, float) or math.isnan(value):
        return f"{field}={value}"
    if field.endswith("_s"):
        return f"{field}={value * 1e3:.3g} ms" if value < 1 else f"{field}={value:.4g} s"
    if "rate" in field or field == "slo_attainment":
        return f"{field}={value:.1%}"
    return f"{field}={value:.4g}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("names", nargs="*", help=f"figures to print (default: all): {', '.join(FIGURES)}")
    names = parser.parse_args().names or list(FIGURES)
    unknown = [n for n in names if n not in FIGURES]
    if unknown:
        parser.error(f"no figure named {', '.join(unknown)}; the figures are {', '.join(FIGURES)}")
    for name in names:
        figure = FIGURES[name]
        print(f"## {name}: examples/{figure.file}", flush=True)
        for label, summary in runs(figure):
            print(f"  {label}: " + ", ".join(shown(f, summary.get(f)) for f in figure.fields), flush=True)


if __name__ == "__main__":
    main()
