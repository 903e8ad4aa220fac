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


def _tiny_mapping(rate_per_s: float, prompt_high: int, output_high: int, requests: int) -> dict:
    """The tiny model on the tiny device under Poisson arrivals with uniform prompt and output
    lengths: the one shape both tiny scenarios below share, with their own load and size."""
    return {
        "hardware": TINY_HW,
        "stack": "none",  # the tiny device's efficiencies as written: no serving stack's overheads
        "model": TINY_MODEL,
        "scheduler": {"max_num_batched_tokens": 256, "max_num_seqs": 16},
        "workload": {
            "arrivals": {"kind": "poisson", "rate_per_s": rate_per_s},
            "prompt_tokens": {"kind": "uniform", "low": 10, "high": prompt_high},
            "output_tokens": {"kind": "uniform", "low": 1, "high": output_high},
        },
        "stop": {"requests": requests},
    }


# The tiny scenario as a plain mapping, for tests that write scenario or sweep files.
TINY_BASE = {"name": "tiny", **_tiny_mapping(rate_per_s=30, prompt_high=200, output_high=50, requests=100)}


def disaggregated_cluster(decode_replicas: int) -> dict:
    """A cluster section with one prefill replica handing its KV to `decode_replicas` decode
    replicas over a 1 GB/s link with 1 ms latency."""
    return {
        "disaggregated": {
            "prefill": {"replicas": 1},
            "decode": {"replicas": decode_replicas},
            "link_bandwidth_bytes_per_s": "1 GB/s",
            "link_latency_s": "1ms",
        }
    }


def tiny_scenario(**fields):
    """A scenario small enough to reason about: a 2-layer model on a 2 MB device."""
    from sim.scenario import scenario_from_dict

    data = _tiny_mapping(rate_per_s=50, prompt_high=300, output_high=100, requests=50)
    for key, value in fields.items():
        data[key] = (
            {**data[key], **value} if isinstance(data.get(key), dict) and isinstance(value, dict) else value
        )
    return scenario_from_dict(data)


@pytest.fixture(scope="session")
def jobs():
    """A job runner with one job process for the dashboard's tests, for the whole session (the
    dashboard's app is built once per process, so the unit and browser tests share it)."""
    from dashboard.jobs import job_runner

    with job_runner(workers=1) as store:
        yield store
