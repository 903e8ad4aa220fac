import pandas as pd
import pytest

from dashboard.sweeps import (
    SweepFolderError,
    find_sweeps,
    metric_columns,
    pareto_front,
    pivot,
    read_results,
    resolve,
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
