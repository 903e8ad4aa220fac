"""Accelerator presets shipped as YAML files under `hardware/catalog/`, and user files of the same schema."""

from __future__ import annotations

import difflib
from functools import cache
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from hardware.spec import Accelerator
from hardware.yamltext import load_yaml

CATALOG_DIR = Path(__file__).parent / "catalog"
M = TypeVar("M", bound=BaseModel)


class UnknownNameError(ValueError):
    """A preset name that is not in a catalog; the message lists close matches."""


def unknown_name(kind: str, name: str, known: list[str]) -> UnknownNameError:
    close = difflib.get_close_matches(name.lower(), known, n=4, cutoff=0.4)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return UnknownNameError(f"unknown {kind} {name!r}.{hint} Known: {', '.join(known)}")


def preset_names(catalog: Path) -> list[str]:
    """The presets a catalog folder holds: its YAML files' names, sorted."""
    return sorted(p.stem for p in catalog.glob("*.yaml"))


def hardware_names() -> list[str]:
    return preset_names(CATALOG_DIR)


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


def load_preset(name_or_path: str | Path, schema: type[M], kind: str, catalog: Path) -> M:
    """A YAML file with `schema` (a path ending in .yaml or .yml, or any file that exists), or else
    a preset of `catalog` by name, case-insensitively; an unknown `kind` name lists close matches.
    The hardware and model catalogs both load this way, so their files and errors read alike."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        data = read_yaml(path)
        try:
            return schema.model_validate(data)
        except ValidationError as exc:
            raise ValueError(f"{path}: {exc}") from exc
    name = str(name_or_path).lower()
    known = preset_names(catalog)
    if name not in known:
        raise unknown_name(kind, str(name_or_path), known)
    return _preset(schema, catalog / f"{name}.yaml")


@cache
def _preset(schema: type[M], path: Path) -> M:
    """A preset file, validated once per process: presets ship with ctxsim and do not change."""
    return schema.model_validate(read_yaml(path))


def load_hardware(name_or_path: str | Path) -> Accelerator:
    """A preset by name (`h100-sxm`) or a YAML file with the `Accelerator` schema."""
    return load_preset(name_or_path, Accelerator, "hardware", CATALOG_DIR)
