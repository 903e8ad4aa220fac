"""Sweep files over the tiny scenario of tests/conftest.py, written into a test's tmp_path."""

import yaml

from tests.conftest import TINY_BASE


def write_sweep(folder, base=None, **spec):
    """A sweep file in `folder` over `base` (inline; the tiny scenario by default) with the given
    `grid`, `list` or `set` sections; returns its path."""
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump({"name": "test", "base": base or TINY_BASE, **spec}, sort_keys=False))
    return path
