"""scripts/readme_figures.py: every figure names an example that loads with its --set lists, and
prints summary fields that exist, as the README writes them."""

import pandas as pd
import pytest

from scripts.readme_figures import EXAMPLES, FIGURES, shown
from scripts.regen_goldens import GOLDEN
from sim.scenario import load_scenario
from sim.studies.sweep import load_sweep

SUMMARY_FIELDS = set(pd.read_csv(GOLDEN / "chat-h100.summary.csv")["metric"])


@pytest.mark.parametrize("name", FIGURES)
def test_every_figure_loads_and_prints_summary_fields(name):
    figure = FIGURES[name]
    path = EXAMPLES / figure.file
    for sets in figure.variants:
        loaded = (
            load_sweep(path, sets).points if path.parent.name == "sweeps" else [load_scenario(path, sets)]
        )
        assert loaded
    assert set(figure.fields) <= SUMMARY_FIELDS


def test_fields_are_shown_in_the_readmes_units():
    assert shown("ttft_p50_s", 0.3751) == "ttft_p50_s=375 ms"
    assert shown("ttft_p50_s", 48.04) == "ttft_p50_s=48.04 s"
    assert shown("slo_attainment", 0.7234) == "slo_attainment=72.3%"
    assert shown("prefix_hit_rate_tokens", 0.4856) == "prefix_hit_rate_tokens=48.6%"
    assert shown("throughput_rps", 0.6213) == "throughput_rps=0.6213"
    assert shown("ttft_p50_s", None) == "ttft_p50_s=None"
