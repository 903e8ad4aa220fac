"""The same sweep on a local Ray cluster and on local worker processes gives the same rows."""

import pytest

from sim.studies.sweep import build, execute
from tests.studies.sweepfiles import TINY_BASE

ray = pytest.importorskip("ray")

WALL_CLOCK = {"sim_wall_s", "point_wall_s"}


def _rows(rows):
    kept = ({k: v for k, v in row.items() if k not in WALL_CLOCK} for row in rows)
    return sorted(kept, key=lambda r: r["point"])


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="warning", log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_and_local_processes_agree(local_ray):
    from sim.studies.sweep import SweepSpec

    spec = SweepSpec.model_validate({"base": TINY_BASE, "grid": {"cluster.replicas": [1, 2],
                                                                 "workload.arrivals.rate_per_s": [20, 80]}})
    points = build(spec, TINY_BASE).points
    on_ray = _rows(execute(points, ray_address="auto"))
    local = _rows(execute(points, workers=2))
    assert len(on_ray) == 4 and all(r["error"] is None for r in on_ray)
    assert on_ray == local
