"""What each stored result of a grid is made with (its ``made_with.json``), known before training.

A stored result depends on the data only through its split (a fingerprint of config_id ->
part), its pool and its EIP ids (:class:`SplitKey`); on the grid through tau, the alignment, the
confidence quantiles, the model and training settings; and on the results it was built from
through their fingerprints (a run records its classifier's and backbone's). So a change anywhere
upstream (tau, the EIP list, epochs) reaches every result built on it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace

import pandas as pd

from .. import keys
from ..atomic_io import write_text_atomic
from ..provenance import fingerprint, fingerprint_pairs
from ..strategies.experiment import Experiment
from ..strategies.subsets import rank_eips, subset_of_ranking
from ..training import TrainSettings
from .spec import DELTA_STRATEGIES, MP_STRATEGIES, GridConfig, RunSpec
from .store import RunStore


@dataclass(frozen=True)
class SplitKey:
    """What a stored result depends on in one experiment: its split, its pool and its EIPs.

    Attributes:
        split: fingerprint of the split (config_id -> part).
        pool: fingerprint of the pool's config ids.
        eips: the EIP ids (of an EIP subset, for Table 7 runs).
    """

    split: str
    pool: str
    eips: tuple[str, ...]


def split_key(exp: Experiment) -> SplitKey:
    """The :class:`SplitKey` of an experiment (restricted to its subset's EIPs)."""
    return SplitKey(fingerprint_pairs(exp.split.items()), fingerprint(sorted(exp.parts[keys.POOL].ids)),
                    tuple(exp.model_ids))


@dataclass(frozen=True)
class GridData:
    """What a grid's stored results depend on in the data, known before any training.

    Attributes:
        keys: per split seed, the :class:`SplitKey` with all the grid's EIPs.
        rankings: per split seed, the EIP ids ranked on its TRAIN configs (best first; Table 7
            subsets), where known.
    """

    keys: Mapping[int, SplitKey]
    rankings: Mapping[int, tuple[str, ...]] = field(default_factory=dict)

    def key(self, seed: int, subset: str = "all") -> SplitKey | None:
        """The key of split ``seed`` with a subset's EIPs (None: the split is not ranked yet)."""
        base = self.keys[seed]
        if subset == "all":
            return base
        ranking = self.rankings.get(seed)
        return None if ranking is None else replace(base, eips=tuple(subset_of_ranking(list(ranking), subset)))


def store_ranking(store: RunStore, seed: int, exp: Experiment) -> tuple[str, ...]:
    """Rank the experiment's EIPs on its TRAIN configs and store the ranking (so that a plan
    knows each split's Table 7 subsets without the data); returns it."""
    ranking = tuple(rank_eips(exp))
    key = split_key(exp)
    write_text_atomic(store.ranking_file(seed),
                      json.dumps({"split": key.split, "eips": list(key.eips), "ranking": list(ranking)}, indent=2))
    return ranking


def grid_data(splits: Sequence[pd.Series], seeds: Sequence[int], eip_ids: Sequence[str], store: RunStore, *,
              experiments: Mapping[int, Experiment] | None = None) -> GridData:
    """The :class:`GridData` of a grid: split keys from the splits; EIP rankings from
    ``experiments`` (and stored for later calls), else read from the store when they were
    stored for the same split and EIPs."""
    split_keys = {}
    for seed, split in zip(seeds, splits, strict=True):
        pool = sorted(split.index[split == keys.POOL])
        split_keys[int(seed)] = SplitKey(fingerprint_pairs(split.items()), fingerprint(pool), tuple(eip_ids))
    rankings: dict[int, tuple[str, ...]] = {}
    for seed, key in split_keys.items():
        path = store.ranking_file(seed)
        if experiments is not None and seed in experiments:
            rankings[seed] = store_ranking(store, seed, experiments[seed])
        elif path.exists():
            stored = json.loads(path.read_text())
            if stored["split"] == key.split and stored["eips"] == list(key.eips):
                rankings[seed] = tuple(stored["ranking"])
    return GridData(split_keys, rankings)


def train_inputs(settings: TrainSettings) -> dict:
    """Training settings that change a result (not the progress bar, the device or compilation)."""
    return {k: v for k, v in asdict(settings).items() if k not in ("progress", "device", "compile")}


def force_inputs(grid: GridConfig, eip_side: bool = False, eip_labels: bool = True) -> dict:
    """The force settings a result depends on -- empty for energy-only grids (so that their
    folders stay current). ``eip_side``: a result trained on EIP labels only (MP backbone), which
    depends on the force weight only when EIP forces are injected; ``eip_labels``: the result
    trains on EIP-labelled configs (LA) -- else ``eip_forces`` does not change it (a baseline, or
    an MP fine-tune, whose backbone's own inputs carry it)."""
    if grid.force_weight <= 0 or (eip_side and not grid.eip_forces):
        return {}
    inputs: dict = {"force_weight": float(grid.force_weight)}
    if eip_side or eip_labels:
        inputs["eip_forces"] = bool(grid.eip_forces)
    return inputs


def classifier_inputs(key: SplitKey, grid: GridConfig, model: str, seed: int) -> dict:
    """Inputs of an LA classifier and its pool selection (split ``seed``, the key's EIPs); the
    selector is named only when it is not the paper's classifier (older folders stay current)."""
    inputs = {"kind": "la-classifier", "dataset": grid.dataset, "split": key.split, "eips": list(key.eips),
              "align": grid.align, "tau": grid.tau, "model": asdict(grid.model_configs[model]),
              "train": train_inputs(replace(grid.train, seed=seed))}
    if grid.selector != "classifier":
        inputs["selector"] = grid.selector
    return inputs


def backbone_inputs(key: SplitKey, grid: GridConfig, model: str) -> dict:
    """Inputs of an MP backbone: the pool and the EIPs (no split, no DFT, no alignment: the
    per-EIP species fit of the targets removes any per-species shift)."""
    return {"kind": "mp-pretrain", "dataset": grid.dataset, "pool": key.pool, "eips": list(key.eips),
            "model": asdict(grid.model_configs[model]), "train": train_inputs(replace(grid.train, seed=0)),
            **force_inputs(grid, eip_side=True)}


def run_inputs(key: SplitKey, grid: GridConfig, spec: RunSpec) -> dict:
    """Inputs of a run (and of its fit, for baseline / MP runs): for LA runs the classifier they
    select with, for MP runs the backbone they start from; not the alpha grid (a run chosen from
    another grid is redone reusing each alpha's fit) nor a group run's alpha (``stale_reason``)."""
    inputs = {"kind": "run", "run": spec.tag, "dataset": grid.dataset, "split": key.split, "eips": list(key.eips),
              "model": asdict(grid.model_configs[spec.model]), "train": train_inputs(replace(grid.train, seed=spec.seed))}
    if "la" in spec.strategy:
        inputs["selection"] = fingerprint(classifier_inputs(key, grid, spec.model, spec.seed))
        inputs["tukey"] = spec.tukey
    if spec.strategy in MP_STRATEGIES:
        inputs["backbone"] = fingerprint(backbone_inputs(key, grid, spec.model))
    if spec.strategy in DELTA_STRATEGIES:  # the EIP subtracted, aligned on TRAIN
        inputs["delta_eip"] = grid.delta_eip or "best on train"
        inputs["align"] = grid.align
    if spec.group != "all":
        inputs["quantiles"] = list(grid.quantiles)
    inputs.update(force_inputs(grid, eip_labels="la" in spec.strategy))
    return inputs


def fit_inputs(key: SplitKey, grid: GridConfig, spec: RunSpec, alpha: float) -> dict:
    """Inputs of one alpha's fit of an LA / MP+LA / confidence-group run."""
    return {**run_inputs(key, grid, spec), "kind": "la-fit", "alpha": float(alpha)}
