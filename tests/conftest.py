import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from hardware import load_hardware
from workloads import load_model

settings.register_profile("ci", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci")

SHARED = __import__("pathlib").Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def h100():
    return load_hardware("h100-sxm")


@pytest.fixture
def llama8b():
    return load_model("llama-3.1-8b")


TINY_MODEL = {
    "name": "tiny",
    "num_layers": 2,
    "hidden_size": 64,
    "num_heads": 4,
    "num_kv_heads": 4,
    "head_dim": 16,
    "intermediate_size": 128,
    "vocab_size": 100,
}  # 512 B of KV per token
TINY_HW = {
    "name": "tinychip",
    "peak_flops": {"bf16": "1 TFLOPS"},
    "memory": [
        {"name": "hbm", "capacity_bytes": "2 MB", "bandwidth_bytes_per_s": "100 GB/s"},
        {"name": "host", "capacity_bytes": "64 MB", "bandwidth_bytes_per_s": "10 GB/s"},
    ],
    "scale_up": {"bandwidth_bytes_per_s": "50 GB/s"},
    "power": {"tdp_w": 100},
    "price": {"per_hour_usd": 1.0},
}


# The tiny scenario as a plain mapping, for tests that write scenario or sweep files.
TINY_BASE = {
    "name": "tiny",
    "hardware": TINY_HW,
    "model": TINY_MODEL,
    "scheduler": {"max_num_batched_tokens": 256, "max_num_seqs": 16},
    "workload": {
        "arrivals": {"kind": "poisson", "rate_per_s": 30},
        "prompt_tokens": {"kind": "uniform", "low": 10, "high": 200},
        "output_tokens": {"kind": "uniform", "low": 1, "high": 50},
    },
    "stop": {"requests": 100},
}


def tiny_scenario(**fields):
    """A scenario small enough to reason about: a 2-layer model on a 2 MB device."""
    from sim.scenario import scenario_from_dict

    data = {
        "hardware": TINY_HW,
        "model": TINY_MODEL,
        "scheduler": {"max_num_batched_tokens": 256, "max_num_seqs": 16},
        "workload": {
            "arrivals": {"kind": "poisson", "rate_per_s": 50},
            "prompt_tokens": {"kind": "uniform", "low": 10, "high": 300},
            "output_tokens": {"kind": "uniform", "low": 1, "high": 100},
        },
        "stop": {"requests": 50},
    }
    for key, value in fields.items():
        data[key] = (
            {**data[key], **value} if isinstance(data.get(key), dict) and isinstance(value, dict) else value
        )
    return scenario_from_dict(data)
