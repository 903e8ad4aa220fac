import pandas as pd
import pytest

from dashboard.sweeps import (
    SweepFolderError,
    find_sweeps,
    is_discrete,
    metric_columns,
    mixed_loads,
    options,
    pareto_front,
    pivot,
    read_results,
    resolve,
    table,
)


def _rows():
    return [
        {
            "point_id": f"p{i}",
            "point": i,
            "label": "",
            "hardware": hw,
            "cluster.replicas": r,
            "error": None,
            "ttft_p99_s": 1.0 / r,
            "cost_per_1m_output_tokens_usd": r * (2 if hw == "b200" else 1),
        }
        for i, (hw, r) in enumerate((h, r) for h in ("h100-sxm", "b200") for r in (1, 2))
    ]


def test_a_running_sweep_is_read_from_its_point_files(tmp_path):
    folder = tmp_path / "runs" / "s1" / "points"
    folder.mkdir(parents=True)
    for row in reversed(_rows()):
        pd.DataFrame([row]).to_parquet(folder / f"{row['point_id']}.parquet")
    (tmp_path / "runs" / "s2").mkdir()
    pd.DataFrame(_rows()).to_parquet(tmp_path / "runs" / "s2" / "results.parquet")
    assert find_sweeps(tmp_path) == ["runs/s1", "runs/s2"]
    df, params = read_results(resolve(tmp_path, "runs/s1"))
    assert list(df["point"]) == [0, 1, 2, 3]
    assert params == ["hardware", "cluster.replicas"]  # the columns before `error`
    assert metric_columns(df, params) == ["ttft_p99_s", "cost_per_1m_output_tokens_usd"]


def test_the_manifest_names_the_parameters(tmp_path):
    pd.DataFrame(_rows()).to_parquet(tmp_path / "results.parquet")
    (tmp_path / "sweep.json").write_text('{"params": ["cluster.replicas"]}')
    assert read_results(tmp_path)[1] == ["cluster.replicas"]


def test_folders_outside_the_root_are_refused(tmp_path):
    inside = tmp_path / "root"
    inside.mkdir()
    pd.DataFrame(_rows()).to_parquet(tmp_path / "results.parquet")
    with pytest.raises(SweepFolderError, match="outside the folder"):
        resolve(inside, "..")
    with pytest.raises(SweepFolderError, match=r"no results\.parquet"):
        resolve(inside, ".")


def test_pareto_front_and_heatmap_pivot():
    df = pd.DataFrame(_rows())
    front = pareto_front(df, "cost_per_1m_output_tokens_usd", "ttft_p99_s")
    assert list(front) == [True, True, False, False]  # b200 costs more for the same latency
    assert list(pareto_front(df, "cost_per_1m_output_tokens_usd", "ttft_p99_s", maximize_y=True)) == [
        True,
        False,
        False,
        False,
    ]
    grid = pivot(df, "hardware", "cluster.replicas", "ttft_p99_s")
    assert grid.loc["b200", 2] == 0.5 and grid.shape == (2, 2)


def _sweep(settings, name: str, rows: list[dict]) -> str:
    folder = settings.data_root / name
    folder.mkdir(exist_ok=True)
    pd.DataFrame(rows).to_parquet(folder / "results.parquet")
    return name


def test_colouring_by_hardware_draws_one_legend_entry_per_hardware(pages, settings):
    """Colour by hardware used to hand plotly text as marker colours: a ValueError, HTTP 500 and a
    blank plot. Now each hardware is a legend entry in its own colour, and no colour bar hides it."""
    folder = _sweep(settings, "colour-by-hardware", _rows())
    fig, note = pages["sweeps"].show_pareto(
        folder, "cost_per_1m_output_tokens_usd", "ttft_p99_s", [], "hardware", ["labels"]
    )
    points = [t for t in fig.data if t.name != "Pareto front"]
    assert [t.name for t in points] == ["b200", "h100-sxm"]  # sorted, named by value
    assert sum(len(t.x) for t in points) == 4 and len({t.marker.color for t in points}) == 2
    assert all(t.marker.showscale is None for t in fig.data) and fig.layout.legend.orientation == "h"
    assert fig.layout.xaxis.title.text == "cost per 1M output tokens ($)"
    assert fig.layout.yaxis.title.text == "TTFT p99 (s)" and list(points[1].y) == [1.0, 0.5]
    assert list(points[1].text) == ["h100-sxm, replicas 1", "h100-sxm, replicas 2"]  # labels for PNGs
    assert note is None


def test_a_metric_colours_on_a_scale_and_a_swept_number_as_categories(pages, settings):
    folder = _sweep(settings, "colour-by-metric", _rows())
    df = pd.DataFrame(_rows())
    assert is_discrete(df, "hardware", []) and is_discrete(df, "cluster.replicas", ["cluster.replicas"])
    assert not is_discrete(df, "ttft_p99_s", ["cluster.replicas"])
    fig, _ = pages["sweeps"].show_pareto(
        folder, "cost_per_1m_output_tokens_usd", "ttft_p99_s", [], "ttft_p99_s", ["logx", "logy"]
    )
    scale = fig.data[0].marker
    assert scale.showscale and scale.colorbar.title.text == "TTFT p99 (s)" and scale.colorbar.x > 1
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    assert fig.data[0].text is None and fig.data[-1].text is None  # labels off
    fig, _ = pages["sweeps"].show_pareto(
        folder, "cost_per_1m_output_tokens_usd", "ttft_p99_s", [], "cluster.replicas", []
    )
    assert [t.name for t in fig.data] == ["replicas 1", "replicas 2", "Pareto front"]


def test_a_front_across_loads_is_flagged(pages, settings):
    rows = [
        {
            "point": i,
            "label": "",
            "cluster.replicas": r,
            "workload.arrivals.rate_per_s": rate,
            "error": None,
            "ttft_p99_s": 0.2 * rate / r,
            "cost_per_1m_output_tokens_usd": r / rate,
        }
        for i, (r, rate) in enumerate((r, q) for r in (1, 2) for q in (6.0, 12.0))
    ]
    df = pd.DataFrame(rows)
    params = ["cluster.replicas", "workload.arrivals.rate_per_s"]
    front = pareto_front(df, "cost_per_1m_output_tokens_usd", "ttft_p99_s")
    assert mixed_loads(df, params, front) == {"workload.arrivals.rate_per_s": [6.0, 12.0]}
    one_load = df["workload.arrivals.rate_per_s"] == 6.0
    assert mixed_loads(df[one_load], params, front[one_load]) == {}
    folder = _sweep(settings, "mixed-loads", rows)
    _, note = pages["sweeps"].show_pareto(folder, "cost_per_1m_output_tokens_usd", "ttft_p99_s", [], None, [])
    assert note[0].id == "sweeps-mixed-loads" and "arrival rate 6 req/s, 12 req/s" in str(note[0].children)


def test_table_and_dropdowns_read_as_people_write():
    df = pd.DataFrame(
        {
            "point_id": ["a", "b"],
            "point": [0, 1],
            "label": ["", ""],
            "hardware.memory.hbm.bandwidth_bytes_per_s": [2e12, 3.35e12],
            "error": [None, None],
            "ttft_p99_s": [0.0095, 0.298],
            "slo_attainment": [0.87, 1.0],
            "cost_per_1m_output_tokens_usd": [0.1362, 48.85],
        }
    )
    columns, rows = table(df, ["hardware.memory.hbm.bandwidth_bytes_per_s"])
    headers = [c["headerName"] for c in columns]
    assert headers[:5] == [
        "HBM bandwidth (TB/s)",
        "cost per 1M output tokens ($)",
        "TTFT p99 (ms)",
        "SLO attainment (%)",
        "error",
    ]
    assert headers[-2:] == ["point", "label"] and "point_id" not in {c["headerTooltip"] for c in columns}
    assert [r["c0"] for r in rows] == [2, 3.35] and rows[1]["c2"] == 298 and rows[0]["c3"] == 87
    assert rows[0]["c2_t"] == "9.5" and columns[0]["valueFormatter"] == {"function": "params.data.c0_t"}
    assert columns[0]["pinned"] == "left" and columns[0]["filter"] == "agNumberColumnFilter"
    assert options(["ttft_p99_s", "hardware.memory.hbm.bandwidth_bytes_per_s"]) == [
        {"label": "TTFT p99", "value": "ttft_p99_s"},
        {"label": "HBM bandwidth", "value": "hardware.memory.hbm.bandwidth_bytes_per_s"},
    ]
