"""Neural-network potentials: SchNet, CGCNN, SOAPNet, GemNet + shared heads and baseline.

Build with ``build_model(ModelConfig("schnet"))``; every model maps a graph batch to
``[n_configs, n_out]`` and exposes ``representation(batch) -> [n_configs, width]``.
"""

from eiplab.models.base import (
    AtomwiseHead,
    EnergyModel,
    GraphHead,
    Representation,
    ShiftedSoftplus,
    mlp,
    shifted_softplus,
    sum_pool,
)
from eiplab.models.registry import (
    REGISTRY,
    ModelConfig,
    available_models,
    build_model,
    load_model,
    register,
    replace_head,
    save_model,
)

__all__ = [
    "REGISTRY",
    "AtomwiseHead",
    "EnergyModel",
    "GraphHead",
    "ModelConfig",
    "Representation",
    "ShiftedSoftplus",
    "available_models",
    "build_model",
    "load_model",
    "mlp",
    "register",
    "replace_head",
    "save_model",
    "shifted_softplus",
    "sum_pool",
]
