"""What is asked of the machine: model architectures and the requests sent to them."""

from workloads.catalog import from_hf_config, load_model, model_names
from workloads.model import MLA, SSM, LayerGroup, ModelArch, MoE, Window

__all__ = ["MLA", "SSM", "LayerGroup", "ModelArch", "MoE", "Window", "from_hf_config", "load_model", "model_names"]
