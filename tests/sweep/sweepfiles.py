"""Sweep files over the tiny scenario of tests/conftest.py, written into a test's tmp_path."""

import yaml

from tests.conftest import TINY_HW, TINY_MODEL

TINY_BASE = {"name": "tiny", "hardware": TINY_HW, "model": TINY_MODEL,
             "scheduler": {"max_num_batched_tokens": 256, "max_num_seqs": 16},
             "workload": {"arrivals": {"kind": "poisson", "rate_per_s": 30},
                          "prompt_tokens": {"kind": "uniform", "low": 10, "high": 200},
                          "output_tokens": {"kind": "uniform", "low": 1, "high": 50}},
             "stop": {"requests": 100}}


def write_sweep(folder, base=None, **spec):
    """A sweep file in `folder` over `base` (inline; the tiny scenario by default) with the given
    `grid`, `list` or `set` sections; returns its path."""
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump({"name": "test", "base": base or TINY_BASE, **spec}, sort_keys=False))
    return path
