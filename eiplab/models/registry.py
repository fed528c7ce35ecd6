"""Model configuration, the name -> class registry, building, saving and loading.

A representation class takes keyword arguments named like :class:`ModelConfig` fields
(``width``, ``n_layers``, ``cutoff``, ``n_gaussians``, ``n_species_max``, ``n_features``);
:func:`build_model` passes those its constructor accepts, plus ``config.options``.
Classes are imported lazily (``"module:Class"``), so a name can be registered before its
module exists (GemNet).
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from eiplab.models.base import HEADS, EnergyModel, Representation

MODEL_FILE_FORMAT = "eiplab-model-1"

REGISTRY: dict[str, str] = {
    "schnet": "eiplab.models.schnet:SchNet",
    "cgcnn": "eiplab.models.cgcnn:CGCNN",
    "soapnet": "eiplab.models.soapnet:SOAPNet",
    "gemnet": "eiplab.models.gemnet:GemNet",
}


@dataclass
class ModelConfig:
    """Everything needed to rebuild a model (stored with its weights).

    Args:
        name: registry name ("schnet", "cgcnn", "soapnet", "gemnet").
        width: feature width (paper: 128).
        n_layers: representation layers (paper: 5).
        cutoff: graph / SOAP cutoff (Angstrom; paper: 5 Si, 7 Al).
        n_gaussians: radial basis size (paper: 128).
        n_out: head outputs (1 energy, K EIPs, K+1 class logits).
        head: "atomwise" (per-atom MLP then sum) or "graph" (sum then MLP).
        head_layers: linear layers in the head MLP.
        n_species_max: atomic numbers below this are supported.
        n_features: per-atom input features (SOAPNet: SOAP length).
        soap: SOAP settings (``dataclasses.asdict(SoapSettings)``) for SOAPNet inputs.
        options: extra keyword arguments for the representation class.
    """

    name: str
    width: int = 128
    n_layers: int = 5
    cutoff: float = 5.0
    n_gaussians: int = 128
    n_out: int = 1
    head: str = "atomwise"
    head_layers: int = 2
    n_species_max: int = 100
    n_features: int | None = None
    soap: dict[str, Any] | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def replace(self, **changes: Any) -> ModelConfig:
        return dataclasses.replace(self, **changes)


def register(name: str, target: str) -> None:
    """Register a representation class as ``"package.module:ClassName"``."""
    REGISTRY[name] = target


def available_models() -> list[str]:
    """Registered names whose class can be imported now."""
    names = []
    for name in REGISTRY:
        try:
            representation_class(name)
        except ImportError:
            continue
        names.append(name)
    return names


def representation_class(name: str) -> type[Representation]:
    """Import and return the class registered under ``name``."""
    if name not in REGISTRY:
        raise KeyError(f"unknown model {name!r}; registered: {sorted(REGISTRY)}")
    module_name, class_name = REGISTRY[name].split(":")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, class_name)
    except AttributeError as e:
        raise ImportError(f"{module_name} has no class {class_name} (model {name!r})") from e


def build_representation(config: ModelConfig) -> Representation:
    """Instantiate the representation of ``config``."""
    cls = representation_class(config.name)
    accepted = inspect.signature(cls.__init__).parameters
    kwargs = {
        f.name: getattr(config, f.name)
        for f in dataclasses.fields(config)
        if f.name in accepted and f.name not in ("name", "options")
    }
    kwargs.update(config.options)
    return cls(**kwargs)


def build_head(config: ModelConfig, n_in: int) -> torch.nn.Module:
    """A fresh head for ``config`` on features of width ``n_in``."""
    if config.head not in HEADS:
        raise KeyError(f"unknown head {config.head!r}; choose from {sorted(HEADS)}")
    return HEADS[config.head](n_in, config.n_out, n_layers=config.head_layers)


def build_model(config: ModelConfig) -> EnergyModel:
    """Representation + head + zero baseline, from a :class:`ModelConfig`."""
    representation = build_representation(config)
    model = EnergyModel(
        representation, build_head(config, representation.width), config.n_species_max
    )
    model.config = config
    return model


def replace_head(model: EnergyModel, n_out: int, head: str = "atomwise") -> EnergyModel:
    """Give ``model`` a fresh head (e.g. fine-tuning after multi-task pretraining).

    The representation keeps its weights; the baseline is reset to zero. Returns ``model``.
    """
    model.config = model.config.replace(n_out=n_out, head=head)
    device = model.baseline.device
    model.head = build_head(model.config, model.representation_module.width).to(device)
    model.baseline.zero_()
    return model


def save_model(path: str | Path, model: EnergyModel) -> Path:
    """Write the config and weights of ``model`` to ``path`` (torch file)."""
    if getattr(model, "config", None) is None:
        raise ValueError("the model has no ModelConfig (build it with build_model)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": MODEL_FILE_FORMAT,
        "config": asdict(model.config),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    torch.save(payload, path)
    return path


def load_model(path: str | Path, map_location: str | torch.device = "cpu") -> EnergyModel:
    """Rebuild a model written by :func:`save_model`."""
    payload = torch.load(Path(path), map_location=map_location, weights_only=True)
    if payload.get("format") != MODEL_FILE_FORMAT:
        raise ValueError(f"{path} is not an eiplab model file")
    model = build_model(ModelConfig(**payload["config"]))
    model.load_state_dict(payload["state_dict"])
    return model.to(map_location)
