"""Accelerator presets shipped as YAML files under `hardware/catalog/`, and user files of the same schema."""

from __future__ import annotations

import difflib
from functools import cache
from pathlib import Path

import yaml
from pydantic import ValidationError

from hardware.spec import Accelerator
from hardware.yamltext import load_yaml

CATALOG_DIR = Path(__file__).parent / "catalog"


class UnknownNameError(ValueError):
    """A preset name that is not in a catalog; the message lists close matches."""


def unknown_name(kind: str, name: str, known: list[str]) -> UnknownNameError:
    close = difflib.get_close_matches(name.lower(), known, n=4, cutoff=0.4)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return UnknownNameError(f"unknown {kind} {name!r}.{hint} Known: {', '.join(known)}")


def hardware_names() -> list[str]:
    return sorted(p.stem for p in CATALOG_DIR.glob("*.yaml"))


def read_yaml(path: Path) -> dict:
    try:
        data = load_yaml(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from exc
    except OSError as exc:
        raise ValueError(f"{path}: cannot read: {exc.strerror}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return data


@cache
def _preset(name: str) -> Accelerator:
    return Accelerator.model_validate(read_yaml(CATALOG_DIR / f"{name}.yaml"))


def load_hardware(name_or_path: str | Path) -> Accelerator:
    """A preset by name (`h100-sxm`) or a YAML file with the `Accelerator` schema."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        data = read_yaml(path)
        try:
            return Accelerator.model_validate(data)
        except ValidationError as exc:
            raise ValueError(f"{path}: {exc}") from exc
    name = str(name_or_path).lower()
    if name not in hardware_names():
        raise unknown_name("hardware", str(name_or_path), hardware_names())
    return _preset(name)
