"""How a replica splits a model over devices: tensor-parallel degree x pipeline stages, and the checks
that a split can run. The cost model, the memory plan and scenarios all validate through here."""

from __future__ import annotations

from dataclasses import dataclass

from workloads.model import ModelArch


class ConfigError(ValueError):
    """A configuration that cannot run, with a message naming the field."""


@dataclass(frozen=True)
class Parallelism:
    tp: int = 1
    pp: int = 1

    @property
    def devices(self) -> int:
        return self.tp * self.pp


def check_parallelism(model: ModelArch, par: Parallelism) -> None:
    if par.tp < 1 or par.pp < 1:
        raise ConfigError(f"tp ({par.tp}) and pp ({par.pp}) must be at least 1")
    if model.num_heads and model.num_heads % par.tp:
        raise ConfigError(f"tp ({par.tp}) must divide num_heads ({model.num_heads}) of {model.name}")
    if par.pp > model.num_layers:
        raise ConfigError(f"pp ({par.pp}) exceeds num_layers ({model.num_layers}) of {model.name}")
