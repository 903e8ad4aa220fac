"""One colour per series, from one function, in every panel: the KV-occupancy panel used to take
plotly's next colour per trace, so replica 0's KV line had replica 1's batch colour."""

import pandas as pd
from plotly.colors import qualitative

from sim.report import figures


def _timeseries(replicas: int) -> pd.DataFrame:
    rows = [
        {"time_s": t, "replica": r, "batch_size": r + t, "kv_used_fraction": 0.1 * r, "in_system": t}
        for t in range(5)
        for r in range(replicas)
    ]
    return pd.DataFrame(rows)


def test_series_colours_are_stable_and_distinct():
    colors = figures.series_colors(["b", "a", "b", "c"])
    assert list(colors) == ["b", "a", "c"] and colors["b"] == qualitative.Plotly[0]
    assert len(set(colors.values())) == 3
    many = figures.series_colors(range(15))
    assert len(set(many.values())) == 15 and figures.OTHER_COLOR not in many.values()


def test_each_replica_has_one_colour_in_every_panel_and_the_legend():
    fig = figures.occupancy(_timeseries(4))
    by_panel: dict[str, dict[str, str]] = {}
    for trace in fig.data:
        by_panel.setdefault(trace.yaxis, {})[trace.name] = trace.line.color
    batch, kv, system = by_panel["y"], by_panel["y2"], by_panel["y3"]
    assert batch == kv and len(set(batch.values())) == 4
    assert [t.name for t in fig.data if t.showlegend is not False] == [
        "replica 0",
        "replica 1",
        "replica 2",
        "replica 3",
        "in system",
    ]
    assert system == {"in system": figures.OTHER_COLOR}


def test_nothing_to_plot_says_so_instead_of_empty_axes():
    empty = figures.occupancy(_timeseries(0))
    assert not empty.data and "no data yet" in empty.layout.annotations[0].text
    none_finished = figures.latency_cdfs(pd.DataFrame({"ttft_s": [None], "tpot_s": [None], "e2e_s": [None]}))
    assert not none_finished.data and "no finished requests" in none_finished.layout.annotations[0].text
