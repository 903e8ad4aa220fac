"""Sweep files: expansion into points, point identity, and bad files that fail before any point runs."""

import pytest
import yaml
from typer.testing import CliRunner

from sim.cli import app
from sim.studies.sweep import SweepError, SweepSpec, build, load_sweep, point_id
from tests.conftest import TINY_HW
from tests.studies.sweepfiles import TINY_BASE, write_sweep

runner = CliRunner()
ON_PRESET = {**TINY_BASE, "hardware": "h100-sxm"}  # dotted paths reach into presets' memory tiers by name


def test_grid_is_the_cartesian_product_first_path_slowest():
    spec = SweepSpec.model_validate(
        {
            "base": ON_PRESET,
            "grid": {
                "hardware.memory.hbm.bandwidth_bytes_per_s": ["50 GB/s", "0.1 TB/s"],
                "cluster.replicas": [1, 2, 3],
            },
        }
    )
    sweep = build(spec, ON_PRESET)
    assert [p.index for p in sweep.points] == list(range(6))
    assert [p.params for p in sweep.points[:4]] == [
        {"hardware.memory.hbm.bandwidth_bytes_per_s": 5e10, "cluster.replicas": r} for r in (1, 2, 3)
    ] + [{"hardware.memory.hbm.bandwidth_bytes_per_s": 1e11, "cluster.replicas": 1}]
    assert sweep.points[3].label == "hardware.memory.hbm.bandwidth_bytes_per_s=0.1 TB/s, cluster.replicas=1"
    assert sweep.points[5].scenario.hardware.main_tier.bandwidth_bytes_per_s == 1e11
    assert sweep.points[5].scenario.replicas == 3
    assert len({p.point_id for p in sweep.points}) == 6


def test_list_points_and_fixed_overrides(tmp_path):
    path = write_sweep(
        tmp_path,
        set={"stop.requests": 20},
        list=[{"cluster.replicas": 2}, {"parallelism.tp": 2, "scheduler.max_num_seqs": 4}],
    )
    sweep = load_sweep(path)
    assert sweep.params == ("cluster.replicas", "parallelism.tp", "scheduler.max_num_seqs")
    assert [p.params for p in sweep.points] == [
        {"cluster.replicas": 2},
        {"parallelism.tp": 2, "scheduler.max_num_seqs": 4},
    ]
    assert all(p.scenario.stop.requests == 20 for p in sweep.points)


def test_set_on_the_command_line_wins_over_the_files_set_and_changes_every_point(tmp_path):
    path = write_sweep(tmp_path, set={"stop.requests": 20}, grid={"cluster.replicas": [1, 2]})
    sweep = load_sweep(path, ["stop.requests=30", "stack=none", "seed=3"])
    assert [p.scenario.stop.requests for p in sweep.points] == [30, 30]
    assert {(p.scenario.stack, p.scenario.seed) for p in sweep.points} == {("none", 3)}
    assert [p.scenario.replicas for p in sweep.points] == [1, 2]
    plain = load_sweep(path)
    assert not {p.point_id for p in plain.points} & {p.point_id for p in sweep.points}
    with pytest.raises(SweepError, match=r"--set cluster.replicas: swept by this file"):
        load_sweep(path, ["cluster.replicas=4"])
    with pytest.raises(SweepError, match=r"expected key.path=value"):
        load_sweep(path, ["stack"])
    r = runner.invoke(app, ["sweep", str(path), "--out", str(tmp_path / "o"), "--set", "parallelism.tpp=2"])
    assert r.exit_code == 2 and "parallelism.tpp" in r.output and not (tmp_path / "o").exists()


def test_point_identity_follows_the_resolved_scenario(tmp_path):
    a = load_sweep(write_sweep(tmp_path, grid={"cluster.replicas": [1, 2]}))
    # the same scenarios reached another way keep their ids: a grown grid reuses finished points
    b = build(
        SweepSpec.model_validate(
            {"base": TINY_BASE, "list": [{"cluster.replicas": 2}, {"cluster": {"replicas": 1}}]}
        ),
        TINY_BASE,
    )
    assert {p.point_id for p in a.points} == {p.point_id for p in b.points}
    changed = build(
        SweepSpec.model_validate({"base": TINY_BASE, "grid": {"cluster.replicas": [1, 2]}}),
        {**TINY_BASE, "seed": 1},
    )
    assert not {p.point_id for p in a.points} & {p.point_id for p in changed.points}
    assert a.points[0].point_id == point_id(a.points[0].scenario)


def test_base_file_resolves_from_the_sweep_folder_and_its_files_from_its_own(tmp_path):
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "chip.yaml").write_text(yaml.safe_dump(TINY_HW))
    (tmp_path / "scenarios" / "base.yaml").write_text(yaml.safe_dump({**TINY_BASE, "hardware": "chip.yaml"}))
    sweeps = tmp_path / "sweeps"
    sweeps.mkdir()
    sweep = load_sweep(write_sweep(sweeps, base="../scenarios/base.yaml", grid={"seed": [1, 2]}))
    assert [p.scenario.seed for p in sweep.points] == [1, 2]
    assert sweep.points[0].scenario.hardware.name == TINY_HW["name"]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            {"grid": {"cluster.replica": [1, 2]}},
            "point 1 of 2 (cluster.replica=1): cluster.replica: unknown field",
        ),
        (
            {"grid": {"workload.rate_per_s": [5]}},
            "(workload.rate_per_s=5): workload.rate_per_s: unknown field",
        ),
        ({"grid": {"cluster.replicas": []}}, "grid: cluster.replicas: empty list of values"),
        (
            {"grid": {"cluster.replicas": [1, 0, -1]}},
            "point 2 of 3 (cluster.replicas=0): cluster.replicas: Input should be greater than or equal to 1 "
            "(and 1 more bad points)",
        ),
        (
            {"grid": {"hardware.memory.hbm.bandwidth_bytes_per_s": ["fast"]}},
            "(hardware.memory.hbm.bandwidth_bytes_per_s=fast): hardware.memory.1.bandwidth_bytes_per_s: "
            "cannot read 'fast'",
        ),
        (
            {"grid": {"hardware.memory.sram.capacity_bytes": ["1 MB"]}},
            "hardware: no item named sram; items are l2, hbm, host",
        ),
        (
            {"grid": {"stop.requests.max": [1]}},
            "(stop.requests.max=1): stop.requests.max: requests is not a mapping",
        ),
        (
            {"grid": {"parallelism.tp": [2, 3]}},
            "(parallelism.tp=3): parallelism: tp (3) must divide num_heads (4) of tiny",
        ),
        (
            {"list": [{"seed": 1}, {"seed": 1}]},
            "point 2 of 2 (seed=1): the same scenario as point 1 (seed=1)",
        ),
        ({"list": []}, "list: no points"),
        ({"grid": {"seed": [1]}, "list": [{"seed": 2}]}, "give exactly one of grid or list"),
        ({"grid": {"seed": 1}}, "grid.seed: Input should be a valid tuple"),
    ],
)
def test_bad_sweep_fails_before_any_point_runs(tmp_path, spec, expected):
    path = write_sweep(tmp_path, ON_PRESET, **spec)
    out = tmp_path / "out"
    r = runner.invoke(app, ["sweep", str(path), "--out", str(out), "--workers", "1"])
    assert r.exit_code == 2
    message = " ".join(r.output.split())
    assert message.startswith(f"error: {path}:") and expected in message, message
    assert not out.exists()
    with pytest.raises(SweepError):
        load_sweep(path)


def test_every_bad_point_counts_in_sweep_order():
    spec = SweepSpec.model_validate(
        {"base": TINY_BASE, "list": [{"cluster.replicas": 0}, {"seed": 2}, {"seed": 2}]}
    )
    with pytest.raises(SweepError) as caught:
        build(spec, TINY_BASE, max_reported=2)
    assert str(caught.value) == (
        "point 1 of 3 (cluster.replicas=0): cluster.replicas: Input should be greater than or equal to 1; "
        "point 3 of 3 (seed=2): the same scenario as point 2 (seed=2)"
    )


def test_missing_base_file_is_named(tmp_path):
    path = write_sweep(tmp_path, base="nowhere.yaml", grid={"seed": [1]})
    with pytest.raises(SweepError, match=r"base: .*nowhere.yaml: cannot read"):
        load_sweep(path)


def test_a_scenario_file_given_as_a_sweep_says_so(tmp_path):
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(TINY_BASE))
    with pytest.raises(SweepError, match="this is a scenario file; a sweep file names it as `base:`"):
        load_sweep(path)
