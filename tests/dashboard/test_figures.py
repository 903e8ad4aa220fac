import io

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard import figures


def _csv(fig: go.Figure) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(figures.figure_csv(fig.to_plotly_json())))


def test_csv_of_a_line_figure_is_its_points():
    fig = go.Figure(go.Scatter(x=np.arange(300.0), y=np.arange(300.0) ** 2, name="sq"))
    df = _csv(fig)
    assert len(df) == 300 and (df["trace"] == "sq").all() and df["y"].iloc[-1] == 299.0**2


def test_csv_of_a_heatmap_is_long_form():
    grid = pd.DataFrame(
        [[1.0, 2.0], [3.0, 4.0]], index=pd.Index(["a", "b"], name="r"), columns=pd.Index([1, 2], name="c")
    )
    df = _csv(figures.heatmap(grid, "m"))
    assert list(zip(df["y"], df["x"], df["z"], strict=True)) == [
        ("a", 1, 1.0),
        ("a", 2, 2.0),
        ("b", 1, 3.0),
        ("b", 2, 4.0),
    ]


def test_csv_of_a_table_figure_is_the_table():
    df = _csv(figures.table(pd.DataFrame({"hardware": ["b200"], "$/hour": [12.5]}), "t"))
    assert df.loc[0, "hardware"] == "b200" and df.loc[0, "$/hour"] == 12.5


def test_runs_share_axes_one_colour_each():
    a = pd.DataFrame({"ttft_s": [0.1, 0.2], "tpot_s": [0.01, 0.02], "e2e_s": [1.0, 2.0]})
    fig = figures.latency_cdfs({"run a": a, "run b": a * 2})
    named = [t for t in fig.data if t.name]
    assert len(named) == 6 and {t.name for t in named} == {"run a", "run b"}
    assert len({t.line.color for t in named}) == 2 and sum(t.showlegend for t in named) == 2
