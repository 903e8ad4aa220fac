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
