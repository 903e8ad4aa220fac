"""Every package that declares `__all__` exports names that exist: a name left in `__all__` after
its definition moved or was renamed breaks `from package import *` and misleads readers."""

import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = sorted(
    ".".join(init.parent.relative_to(ROOT).parts)
    for top in ("hardware", "workloads", "sim", "dashboard")
    for init in (ROOT / top).rglob("__init__.py")
    if "__all__" in init.read_text()
)


def test_the_main_packages_declare_their_exports():
    assert {"hardware", "workloads"} <= set(PACKAGES)


@pytest.mark.parametrize("name", PACKAGES)
def test_every_exported_name_exists(name):
    package = importlib.import_module(name)
    assert [n for n in package.__all__ if not hasattr(package, n)] == []
