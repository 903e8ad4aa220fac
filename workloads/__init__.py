"""What is asked of the machine: model architectures and the requests sent to them."""

from workloads.arrivals import Burst, ClosedLoop, Diurnal, Gamma, Poisson, arrival_times
from workloads.catalog import from_hf_config, load_model, model_names
from workloads.mixes import UnknownPreset, preset_names
from workloads.model import (
    MLA,
    SSM,
    LayerGroup,
    LinearAttention,
    ModelArch,
    MoE,
    RopeScaling,
    SparseAttention,
    Window,
)
from workloads.rag import DocumentQA, FullDocument, Retrieval
from workloads.requests import Requests
from workloads.sessions import Session
from workloads.spec import RequestClass, Slo, Workload, generate
from workloads.trace_format import Columns, TraceError, open_trace
from workloads.traces import TraceReplay, read_rows

__all__ = [
    "MLA",
    "SSM",
    "Burst",
    "ClosedLoop",
    "Columns",
    "Diurnal",
    "DocumentQA",
    "FullDocument",
    "Gamma",
    "LayerGroup",
    "LinearAttention",
    "MoE",
    "ModelArch",
    "Poisson",
    "RequestClass",
    "Requests",
    "Retrieval",
    "RopeScaling",
    "Session",
    "Slo",
    "SparseAttention",
    "TraceError",
    "TraceReplay",
    "UnknownPreset",
    "Window",
    "Workload",
    "arrival_times",
    "from_hf_config",
    "generate",
    "load_model",
    "model_names",
    "open_trace",
    "preset_names",
    "read_rows",
]
