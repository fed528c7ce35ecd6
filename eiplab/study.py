"""The front door: one dataset studied under one profile, resolved once.

:class:`Study` resolves what every notebook and the ``eiplab grid`` command need -- the profile,
the dataset, its splits (the dataset's own scheme), the EIPs (the dataset's Table-2 EIPs unless
named), the grid settings (epochs, alphas, tau, device) and the run store (the grid folder) --
and exposes the steps on top of them::

    from eiplab import Study

    study = Study("si-pyxtal", profile="demo")      # device="auto", workers=1
    study.table2()                                  # Table 2: EIPs against DFT, eV and eV/atom
    runs = study.run(["baseline", "la", "mp"])      # the strategy grid (resumable), one row per run
    results.table3(runs)                            # Table 3 (eiplab.analysis.results): mean (sample std)
    study.selection("soapnet", seed=0)              # the LA classifier's picks on the pool

Everything below it (``eiplab.data``, ``eiplab.eips``, ``eiplab.workflows``, ...) stays usable
on its own; the study only saves the set-up sequence that was otherwise copied everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pandas as pd

from . import keys
from .analysis.audit import audit_selection, audited_part
from .data import ConfigSet, dataset_splits, load_dataset
from .eips import EIPSpec, eip_benchmark, models_for_dataset, table2
from .paths import cache_dir
from .profiles import Profile, get_profile
from .strategies import Experiment, prepare_experiment
from .strategies.classifier import resolve_tau
from .strategies.experiment import label_with_eips
from .workflows import (
    STRATEGIES,
    GridConfig,
    RunSpec,
    RunStore,
    grid_data,
    grid_from_profile,
    held_out_selection,
    plan_grid,
    pool_selection,
    probe_seconds_per_config,
    run_grid,
    specs_for,
)

#: Table 7's EIP subsets (ranked on each split's training configs).
ABLATION_SUBSETS = ("best", "worst", "best+worst")


class Study:
    """One dataset under one profile: data, splits, EIPs, grid settings and run store.

    Args:
        dataset: a built-in name (``eiplab.data.builtin_table()``) or a path.
        profile: ``quick`` | ``demo`` | ``cpu`` | ``paper`` (``eiplab.profiles``).
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
        models: networks of the grid (default: the profile's).
        eips: KIM model ids (default: the dataset's EIPs, ``models_for_dataset``).
        alphas: LA alpha grid (default: the profile's).
        tau: LA threshold, eV/atom or ``"auto"`` (default: the dataset's).
        quantiles: confidence-group edges of Table 5 (default: the grid's, METHOD.md).
        grid_dir: where runs are stored (default: ``<eiplab cache>/grid/<dataset>-<profile>``).
        seeds: split seeds (default: the profile's).
        workers, scheduler: where fits train (``eiplab.engine``): local Dask workers or a cluster.
        compile: train the networks through ``torch.compile`` (``TrainSettings.compile``: ~1.4x
            faster SchNet on CPU, energy training only; not part of the stored inputs).
        configs: an already loaded dataset instead of ``dataset`` (its ``name`` is used).
        delta_eip: the EIP delta runs subtract (default: the best on each split's TRAIN configs).
        selector: LA's EIP picker, "classifier" (the paper's) or "error-regression".
        force_weight: > 0 trains on DFT forces too (graph networks; see ``GridConfig``).
        eip_forces: MP and LA use the EIPs' forces as well (needs ``force_weight`` > 0).

    Attributes:
        profile (Profile), configs (ConfigSet), seeds (tuple[int]), splits (list of pd.Series:
        config_id -> part, one per seed), eips (list[EIPSpec]), eip_ids (list[str]),
        short_names (dict: KIM id -> short name), grid (GridConfig), grid_dir (Path),
        store (RunStore).
    """

    def __init__(
        self,
        dataset: str | Path = "si-pyxtal",
        profile: str = "demo",
        *,
        device: str = "auto",
        models: Sequence[str] | None = None,
        eips: Sequence[str] | None = None,
        alphas: Sequence[float] | None = None,
        tau: float | str | None = None,
        quantiles: Sequence[float] | None = None,
        grid_dir: str | Path | None = None,
        seeds: Sequence[int] | None = None,
        workers: int = 1,
        scheduler: str | None = None,
        configs: ConfigSet | None = None,
        progress: bool = False,
        delta_eip: str | None = None,
        selector: str = "classifier",
        force_weight: float = 0.0,
        eip_forces: bool = False,
        compile: bool = False,
    ) -> None:
        if compile and force_weight > 0:
            raise ValueError("compile=True cannot train on forces (torch.compile has no double backward): "
                             "drop compile, or set force_weight=0")
        self.profile: Profile = get_profile(profile)
        self.configs: ConfigSet = configs if configs is not None else load_dataset(dataset, limit=self.profile.limit)
        self.seeds: tuple[int, ...] = tuple(seeds) if seeds else tuple(self.profile.seeds)
        self.splits: list[pd.Series] = dataset_splits(self.configs, seeds=self.seeds)
        known = {m.model_id: m for m in models_for_dataset(self.configs)}
        self.eips: list[EIPSpec] = [known[i] for i in eips if i in known] if eips else list(known.values())
        self.eip_ids: list[str] = list(eips) if eips else [m.model_id for m in self.eips]
        self.short_names: dict[str, str] = {i: known[i].name if i in known else i for i in self.eip_ids}
        self.grid: GridConfig = grid_from_profile(self.profile.name, self.configs, models=models, device=device,
                                                  progress=progress, alphas=alphas, tau=tau)
        # replace() re-runs GridConfig's checks (the selector name)
        self.grid = replace(self.grid, delta_eip=delta_eip, selector=selector, force_weight=float(force_weight),
                            eip_forces=eip_forces, train=replace(self.grid.train, compile=compile),
                            quantiles=tuple(quantiles) if quantiles is not None else self.grid.quantiles)
        # a force-trained grid gets a folder of its own by default: results made with other force settings
        # would otherwise be redone (and their files replaced) in the energy-only grid's folder
        forces = f"-fw{self.grid.force_weight:g}{'-eipf' if self.grid.eip_forces else ''}" if self.grid.force_weight else ""
        self.grid_dir = Path(grid_dir or cache_dir() / "grid" / f"{self.configs.name}-{self.profile.name}{forces}")
        self.store = RunStore(self.grid_dir)
        self.workers, self.scheduler, self.device = workers, scheduler, device
        self._experiments: dict[int, Experiment] = {}
        self._tidy: pd.DataFrame | None = None

    def __repr__(self) -> str:
        return (f"Study({self.configs.name!r}, profile={self.profile.name!r}: {len(self.configs)} configs, "
                f"splits {list(self.seeds)}, {len(self.eip_ids)} EIPs, models {self.models}, runs in {self.grid_dir})")

    @property
    def models(self) -> list[str]:
        """The grid's networks."""
        return list(self.grid.model_configs)

    # -- data ----------------------------------------------------------------------------------
    def split(self, seed: int) -> pd.Series:
        """Split ``seed`` (config_id -> train / val / test / pool); any seed, not only the study's."""
        if seed in self.seeds:
            return self.splits[self.seeds.index(seed)]
        return dataset_splits(self.configs, seeds=(seed,))[0]

    def experiment(self, seed: int) -> Experiment:
        """The method's input for split ``seed``: its parts and the EIP energies aligned on TRAIN
        (labelled once through the cache; kept for the study's lifetime)."""
        if seed not in self._experiments:
            self._experiments[seed] = prepare_experiment(self.configs, self.split(seed), self.eip_ids,
                                                         n_jobs=self.profile.n_jobs, progress=False)
        return self._experiments[seed]

    def tau(self, seed: int) -> float:
        """The LA threshold of split ``seed`` in eV/atom (``"auto"`` resolved on its TRAIN configs)."""
        return resolve_tau(self.experiment(seed), self.grid.tau)

    # -- EIPs ----------------------------------------------------------------------------------
    def eip_energies(self) -> pd.DataFrame:
        """Every EIP's total energy on every config (eV; NaN where a model failed), cached on disk."""
        return label_with_eips(self.configs, self.eip_ids, n_jobs=self.profile.n_jobs, progress=False)

    def eip_benchmark(self) -> pd.DataFrame:
        """Every EIP against DFT on each split's test configs, raw and species-aligned (tidy)."""
        if self._tidy is None:
            self._tidy = eip_benchmark(self.configs, self.splits, self.eip_ids)
        return self._tidy

    def table2(self, align: str = "species") -> pd.DataFrame:
        """Table 2: config-level (eV) and atom-level (eV/atom) MAE of each EIP, mean (sample std)."""
        return table2(self.eip_benchmark(), align=align)

    def best_eip(self, seed: int | None = None) -> str:
        """The most accurate EIP on split ``seed``'s TRAINING configs (aligned, per atom): the one
        to compare a network with; chosen without validation or test data."""
        from .strategies import rank_eips

        return rank_eips(self.experiment(self.seeds[0] if seed is None else seed))[0]

    # -- the grid ------------------------------------------------------------------------------
    def specs(self, strategies: Sequence[str] = STRATEGIES, *, models: Sequence[str] | None = None,
              seeds: Sequence[int] | None = None, ablations: bool = False, confidence: bool = False) -> list[RunSpec]:
        """The grid's runs: models x strategies x seeds, plus Tables 4 and 7 (``ablations``) and
        Table 5's confidence-group runs (``confidence``)."""
        return specs_for(list(models or self.models), list(seeds or self.seeds), strategies, tukey_ablation=ablations,
                         subsets=ABLATION_SUBSETS if ablations else (), confidence=confidence)

    def run(self, strategies: Sequence[str] = STRATEGIES, *, models: Sequence[str] | None = None,
            seeds: Sequence[int] | None = None, ablations: bool = False, confidence: bool = False,
            threads: int = 1, progress: bool = False) -> pd.DataFrame:
        """Train (or reuse) the grid's runs and return one row per run (test and validation MAE,
        chosen alpha, settings); resumable, on the study's workers or scheduler."""
        seeds = list(seeds or self.seeds)
        specs = self.specs(strategies, models=models, seeds=seeds, ablations=ablations, confidence=confidence)
        return run_grid(self.configs, [self.split(k) for k in seeds], seeds, self.eip_ids, specs, self.grid,
                        self.grid_dir, n_jobs=self.profile.n_jobs, workers=self.workers, threads=threads,
                        scheduler=self.scheduler, progress=progress)

    def plan(self, strategies: Sequence[str] = STRATEGIES, *, probe: bool = True, **options) -> pd.DataFrame:
        """What :meth:`run` with the same arguments would train (nothing is trained): one row per
        fit with its state (done / resumes / to do / ...) and estimated seconds. Fits of a kind the
        grid folder never timed are timed, with ``probe``, by a few training steps of each such
        network measured now on this machine (:mod:`eiplab.workflows.probe`; seconds to a minute)."""
        seeds = list(options.get("seeds") or self.seeds)
        specs = self.specs(strategies, **options)
        splits = [self.split(k) for k in seeds]
        sizes = {int(k): split.value_counts().to_dict() for k, split in zip(seeds, splits, strict=True)}
        rates: dict[str, float] = {}

        def seconds_per_config(model: str) -> float:
            if model not in rates:
                rates[model] = probe_seconds_per_config(self.grid.model_configs[model], self.configs, self.grid.train,
                                                        force_weight=self.grid.force_weight)
            return rates[model]

        return plan_grid(specs, self.grid, self.grid_dir, grid_data(splits, seeds, self.eip_ids, self.store),
                         probe=seconds_per_config if probe else None, sizes=sizes)

    def results(self) -> pd.DataFrame:
        """Every finished run stored in the study's grid folder (of the study's networks)."""
        found = self.store.results()
        return found[found["model"].isin(self.models)] if not found.empty else found

    def calculator(self, model: str, tag: str = "baseline", seed: int | None = None, device: str | None = None):
        """An ASE calculator (:class:`eiplab.calculator.NNCalculator`) for the network a finished
        run trained (``tag``: baseline, la, mp, mp+la, ...; split ``seed``, default the first):
        energy, and forces and stress for the graph networks."""
        from .calculator import NNCalculator

        seed = self.seeds[0] if seed is None else seed
        return NNCalculator.from_run(self.store.model_file(model, tag, seed), device=device or self.device)

    # -- label augmentation ---------------------------------------------------------------------
    def selection(self, model: str, seed: int) -> pd.DataFrame:
        """The LA classifier's picks on the pool of split ``seed`` (index config_id; chosen EIP,
        confidence, selected); trained and stored on first use, reused while its settings match."""
        return pool_selection(self.store, model, seed, self.experiment(seed), self.grid)

    def audited(self, model: str, seed: int) -> tuple[str, pd.DataFrame]:
        """Where split ``seed``'s classifier is audited and its picks there: the pool when its DFT
        is known but was hidden from training (si-pyxtal), else the held-out TEST configs (mlearn)."""
        exp = self.experiment(seed)
        part = audited_part(exp.parts[keys.POOL])
        if part == keys.POOL:
            return part, self.selection(model, seed)
        return part, held_out_selection(self.store, model, seed, exp, self.grid)

    def audit(self, model: str, bands: Sequence[float] = (1.0, 2.0, 5.0)) -> pd.DataFrame:
        """The classifier audit of each split (Table 6's rows): selected configs, mild / normal /
        severe outliers (label off by more than ``bands`` x tau eV/atom), accuracy, agreement with
        the best EIP in hindsight; one row per split with where it was audited."""
        rows = []
        for seed in self.seeds:
            part, picks = self.audited(model, seed)
            exp = self.experiment(seed)
            row = audit_selection(picks, exp.parts[part], exp.aligned_for(part), tau=self.tau(seed), bands=bands)
            rows.append({"model": model, "seed": seed, "audited_on": part, **row})
        return pd.DataFrame(rows)
