"""What a grid is: its cells (:class:`RunSpec`), its settings (:class:`GridConfig`), and the
profiles' grids (:func:`grid_from_profile`, :func:`specs_for`)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..data import ConfigSet
from ..models import ModelConfig
from ..strategies.augment import ALPHA_GRID
from ..strategies.confidence import CONFIDENCE_GROUPS, DEFAULT_QUANTILES
from ..strategies.labels import DEFAULT_TAU
from ..training import TrainSettings

STRATEGIES = ("baseline", "la", "mp", "mp+la")  # the paper's (the default grid)
#: Delta-learning on an EIP (eiplab.strategies.delta), from a fresh network or the MP backbone.
DELTA_STRATEGIES = ("delta", "delta+mp")
#: Strategies that start from the MP-pretrained backbone.
MP_STRATEGIES = ("mp", "mp+la", "delta+mp")
#: the strategies ``eip_forces`` changes (MP through its backbone, LA through its picks' forces)
EIP_FORCE_STRATEGIES = ("la", "mp", "mp+la")
LA_STRATEGIES = ("la", "mp+la")  # the strategies whose runs pick EIP labels with an LA selector


def la_strategy(run: Mapping[str, Any]) -> bool:
    """Whether a run record (or spec fields) is an LA run: its ``strategy``, else its tag's base
    (``la{low}``, ``la-notukey``, ``la[best2]`` -> ``la``)."""
    strategy = run.get("strategy")
    if not isinstance(strategy, str) or not strategy:
        strategy = re.split(r"[{\[]|-notukey", str(run.get("tag", "")))[0]
    return strategy in LA_STRATEGIES


def injected_eip_forces(record: Mapping[str, Any]) -> bool:
    """Whether a run record (a ``result.json``) injected the EIPs' forces: ``eip_forces`` True
    and a strategy that uses them (a baseline of the same grid did not: it never sees an EIP)."""
    value = record.get("eip_forces", False)
    strategy = record.get("strategy", record.get("tag"))
    return isinstance(value, (bool, np.bool_)) and bool(value) and strategy in EIP_FORCE_STRATEGIES


@dataclass(frozen=True)
class RunSpec:
    """One cell of the grid.

    Attributes:
        model: network name ("schnet", ...).
        strategy: "baseline", "la", "mp", "mp+la" (the paper's), "delta" or "delta+mp"
            (delta-learning on an EIP, fresh or from the MP backbone).
        seed: split seed.
        subset: EIP subset ("all", "best", "worst", "best+worst"; Table 7).
        tukey: Tukey term (True) or plain MSE on EIP labels (Table 4).
        group: confidence group of the LA-selected configs ("all", "low", "medium", "high";
            Table 5). A group run reuses the classifier and the alpha chosen on validation by
            the full LA run of the same split (no new tuning).
    """

    model: str
    strategy: str
    seed: int
    subset: str = "all"
    tukey: bool = True
    group: str = "all"

    def __post_init__(self) -> None:
        if self.strategy not in (*STRATEGIES, *DELTA_STRATEGIES):
            raise ValueError(f"unknown strategy {self.strategy!r}; choose from {(*STRATEGIES, *DELTA_STRATEGIES)}")
        if self.group != "all" and self.strategy != "la":
            raise ValueError(f"confidence group {self.group!r} needs strategy 'la', not {self.strategy!r}")
        if self.group not in ("all", *CONFIDENCE_GROUPS):
            raise ValueError(f"unknown confidence group {self.group!r}; choose from {('all', *CONFIDENCE_GROUPS)}")

    @property
    def tag(self) -> str:
        tag = self.strategy
        if self.subset != "all":
            tag += f"[{self.subset}]"
        if not self.tukey and self.strategy in LA_STRATEGIES:
            tag += "-notukey"
        if self.group != "all":
            tag += f"{{{self.group}}}"
        return tag


@dataclass
class GridConfig:
    """Settings shared by every run of a grid.

    Attributes:
        dataset: dataset name (for records).
        train: training settings (epochs, batch, device, ...); the seed is set per split.
        model_configs: ModelConfig per model name.
        alphas: LA alpha grid (chosen on validation MAE).
        tau: LA "none" threshold, eV/atom, or "auto" (resolved on each split's TRAINING configs,
            :func:`eiplab.strategies.labels.auto_tau`).
        align: EIP alignment ("species" or "none").
        quantiles: confidence-group edges of the Table 5 runs (low below the first quantile of
            the selected configs' confidence, high above the second).
        delta_eip: the EIP delta runs subtract (a KIM id); None: the best on each split's TRAIN.
        selector: how LA picks an EIP per pool config: "classifier" (the paper's K+1 classes) or
            "error-regression" (a K-output regression of each EIP's per-atom error,
            :mod:`eiplab.strategies.error_selector`); both write the same selection table.
        force_weight: > 0 trains every DFT fit on forces too (eV/Angstrom; loss = energy MSE +
            force_weight x per-component force MSE; graph networks only; 0: the paper's energy-only
            training, and the folders of older grids stay current).
        eip_forces: inject the EIPs' forces as well: MP pretrains each head on its EIP's forces
            and LA trains on the selected EIP's forces (robust Tukey term); needs force_weight > 0.
    """

    dataset: str
    train: TrainSettings
    model_configs: dict[str, ModelConfig]
    alphas: Sequence[float] = ALPHA_GRID
    tau: float | str = DEFAULT_TAU
    align: str = "species"
    quantiles: tuple[float, float] = DEFAULT_QUANTILES
    extra: dict = field(default_factory=dict)
    delta_eip: str | None = None
    selector: str = "classifier"
    force_weight: float = 0.0
    eip_forces: bool = False

    def __post_init__(self) -> None:
        from ..strategies.error_selector import SELECTORS

        if self.selector not in SELECTORS:
            raise ValueError(f"unknown LA selector {self.selector!r}; choose from {SELECTORS}")
        if self.force_weight < 0:
            raise ValueError(f"force_weight must be >= 0, got {self.force_weight}")
        if self.eip_forces and self.force_weight <= 0:
            raise ValueError("eip_forces=True needs force_weight > 0 (the weight of every force term)")
        if self.force_weight > 0:
            soap = [name for name, config in self.model_configs.items() if config.soap]
            if soap:
                raise ValueError(f"force_weight={self.force_weight}: {soap} read(s) precomputed SOAP features and "
                                 "has no position gradient; train forces with schnet, cgcnn or gemnet")


# METHOD.md: SOAP/graph cutoff 5 Angstrom for Si, 7 Angstrom for Al; other systems use 6 Angstrom
# (decision: about the second-neighbour shell of fcc Ag/Au).
CUTOFF_BY_SPECIES = {("Si",): 5.0, ("Al",): 7.0}
DEFAULT_CUTOFF = 6.0


def default_cutoff(species: Sequence[str]) -> float:
    """Graph/SOAP cutoff (Angstrom) for a dataset's elements."""
    return CUTOFF_BY_SPECIES.get(tuple(sorted(species)), DEFAULT_CUTOFF)


def dataset_tau(configs: ConfigSet) -> float | str:
    """The LA tau a dataset's experiments default to: the built-in dataset's own (``"auto"`` for
    the mlearn sets), else the paper's 0.1 eV/atom."""
    from ..data.builtin import BUILTIN

    spec = BUILTIN.get(str(configs.name).split("/", 1)[0])
    return spec.tau if spec is not None else DEFAULT_TAU


def grid_from_profile(profile: str, configs: ConfigSet, models: Sequence[str] | None = None,
                      device: str = "auto", progress: bool = False, alphas: Sequence[float] | None = None,
                      tau: float | str | None = None, **model_options) -> GridConfig:
    """A GridConfig with a profile's epochs, alpha grid and models (paper: A.4 settings).

    ``alphas`` replaces the profile's alpha grid (say so wherever the tables are reported);
    ``tau`` the dataset's default LA threshold (:func:`dataset_tau`; eV/atom or "auto");
    ``model_options`` override ModelConfig fields (e.g. ``width=16`` for tests).
    """
    from ..profiles import get_profile
    from ..training import complete_config, train_settings

    prof = get_profile(profile)
    cutoff = default_cutoff(configs.species)
    names = list(models) if models else list(prof.models)
    return GridConfig(
        dataset=configs.name,
        train=train_settings(profile, device=device, progress=progress),
        model_configs={
            m: complete_config(ModelConfig(m, cutoff=cutoff, **{"width": prof.width, "n_layers": prof.n_layers, **model_options}), configs)
            for m in names
        },
        alphas=tuple(float(a) for a in alphas) if alphas else prof.alphas,
        tau=dataset_tau(configs) if tau is None else tau,
    )


def specs_for(models: Sequence[str], seeds: Sequence[int], strategies: Sequence[str] = STRATEGIES,
              tukey_ablation: bool = False, subsets: Sequence[str] = (), confidence: bool = False) -> list[RunSpec]:
    """Grid cells: every model x strategy x seed, plus the Table 4, 5 and 7 runs if asked."""
    specs = [RunSpec(m, s, k) for m in models for s in strategies for k in seeds]
    if confidence:
        specs += [RunSpec(m, "la", k, group=g) for m in models for g in CONFIDENCE_GROUPS for k in seeds]
    if tukey_ablation:
        specs += [RunSpec(m, "la", k, tukey=False) for m in models for k in seeds]
    for sub in subsets:
        if sub != "all":
            specs += [RunSpec(m, s, k, subset=sub) for m in models for s in ("la", "mp") for k in seeds]
    return specs
