"""The experiment grid: models x strategies x splits (Tables 3, 4 and 7), resumable.

Layout under ``out``::

    pretrain/<model>/[<subset>/]        MP backbone (one per model and EIP subset: no DFT, all splits)
    la/<model>/<subset>/seed<k>/        classifier + selection.csv (one per split)
    runs/<model>/<run tag>/seed<k>/     result.json of each finished run (+ checkpoints)

A run whose ``result.json`` exists is skipped, so an interrupted grid resumes where it stopped
(and the training loop itself resumes from its last epoch checkpoint).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import pandas as pd

from .. import keys
from ..atomic_io import write_text_atomic
from ..data import ConfigSet
from ..models import EnergyModel, ModelConfig
from ..training import RUN_WALL_TIME, TrainSettings, fit_energy_model
from .augment import ALPHA_GRID, alpha_folder, fit_augmented, select_alpha
from .classifier import select_pool, train_classifier
from .confidence import CONFIDENCE_GROUPS, confidence_groups
from .experiment import Experiment, prepare_experiment
from .labels import DEFAULT_TAU
from .pretrain import PRETRAINED_FILE, for_finetuning, load_pretrained, pretrain
from .subsets import eip_subset, restrict

STRATEGIES = ("baseline", "la", "mp", "mp+la")
RESULT_FILE = "result.json"


@dataclass(frozen=True)
class RunSpec:
    """One cell of the grid.

    Attributes:
        model: network name ("schnet", ...).
        strategy: "baseline", "la", "mp" or "mp+la".
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
        if self.group != "all" and self.strategy != "la":
            raise ValueError(f"confidence group {self.group!r} needs strategy 'la', not {self.strategy!r}")
        if self.group not in ("all", *CONFIDENCE_GROUPS):
            raise ValueError(f"unknown confidence group {self.group!r}; choose from {('all', *CONFIDENCE_GROUPS)}")

    @property
    def tag(self) -> str:
        tag = self.strategy
        if self.subset != "all":
            tag += f"[{self.subset}]"
        if not self.tukey and "la" in self.strategy:
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
        tau: LA "none" threshold, eV/atom.
        align: EIP alignment ("species" or "none").
    """

    dataset: str
    train: TrainSettings
    model_configs: dict[str, ModelConfig]
    alphas: Sequence[float] = ALPHA_GRID
    tau: float = DEFAULT_TAU
    align: str = "species"
    extra: dict = field(default_factory=dict)


# --- the grid folder's layout (shared with eiplab.strategies.plan and .parallel) ------------------
SELECTION_FILE = "selection.csv"


def run_folder(out: str | Path, spec: RunSpec) -> Path:
    """``out/runs/<model>/<tag>/seed<k>``: a run's result (and its fit, or one fit per alpha)."""
    return Path(out) / "runs" / spec.model / spec.tag / f"seed{spec.seed}"


def classifier_folder(out: str | Path, model: str, subset: str, seed: int) -> Path:
    """``out/la/<model>/<subset>/seed<k>``: the LA classifier (``classifier/``) and its selection."""
    return Path(out) / "la" / model / subset / f"seed{seed}"


def backbone_folder(out: str | Path, model: str, subset: str) -> Path:
    """``out/pretrain/<model>/<subset>``: the MP backbone shared by every split."""
    return Path(out) / "pretrain" / model / subset


def read_record(path: Path) -> dict | None:
    """A JSON record of the grid folder (``result.json``, ``run.json``), or None when absent."""
    return json.loads(path.read_text()) if path.exists() else None


def _done(folder: Path) -> dict | None:
    """A run folder's result, or None while the run is unfinished."""
    return read_record(folder / RESULT_FILE)


def alphas_tried(record: dict) -> list[float]:
    """The alpha grid an LA / MP+LA run chose its alpha from (sorted; empty for other runs)."""
    return sorted(float(row["alpha"]) for row in record.get("alpha_table", []))


def fit_folder(folder: str | Path, record: dict) -> Path:
    """Where a finished run's training record and checkpoints are (``folder``: its run folder):
    ``alpha_<a>/`` for LA runs (one fit per alpha; group runs before this layout trained in the
    run folder itself)."""
    folder = Path(folder)
    if "alpha" in record and alpha_folder(folder, record["alpha"]).is_dir():
        return alpha_folder(folder, record["alpha"])
    return folder


def stale_reason(record: dict, spec: RunSpec, alphas: Sequence[float], out: Path) -> str | None:
    """Why a finished run no longer matches the grid (None when it still does): an LA run chose
    its alpha from another alpha grid, or a confidence-group run used an alpha its full LA run no
    longer chose. Redoing it retrains only what is missing (each alpha's fit resumes)."""
    if spec.strategy in ("la", "mp+la") and spec.group == "all":
        tried = alphas_tried(record)
        if tried != sorted(float(a) for a in alphas):
            return f"alpha chosen from {tried}, grid is {sorted(float(a) for a in alphas)}"
    if spec.group != "all":
        full = _done(run_folder(out, replace(spec, group="all")))
        if full is not None and float(full["alpha"]) != float(record["alpha"]):
            return f"used alpha {record['alpha']:g}, the full LA run now chooses {full['alpha']:g}"
    return None


def _write(path: Path, record: dict) -> None:
    write_text_atomic(path / RESULT_FILE, json.dumps(record, indent=2, default=float))


def pretrained_backbone(out: str | Path, model: str, exp: Experiment, grid: GridConfig, *, subset: str = "all",
                        log: Callable[[str], object] = print) -> EnergyModel:
    """The MP-pretrained network (K-output head) of ``model``: loaded from ``out/pretrain``, or
    pretrained on the experiment's pool configs (no DFT) and stored there first."""
    folder = backbone_folder(out, model, subset)
    if (folder / PRETRAINED_FILE).exists():
        return load_pretrained(folder)
    log(f"[grid] pretraining {model} on {len(exp.parts[keys.POOL])} pool configs x {len(exp.model_ids)} EIPs")
    settings = replace(grid.train, seed=0)
    result = pretrain(exp.parts[keys.POOL], exp.aligned, exp.model_ids, grid.model_configs[model], settings, out_dir=folder)
    return result.model


def _pretrained(out: Path, spec: RunSpec, exp: Experiment, grid: GridConfig, log) -> object:
    return pretrained_backbone(out, spec.model, exp, grid, subset=spec.subset, log=log)


def pool_selection(out: str | Path, model: str, seed: int, exp: Experiment, grid: GridConfig, *, subset: str = "all",
                   log: Callable[[str], object] = print) -> pd.DataFrame:
    """The LA classifier's selection over the pool of split ``seed`` (see ``select_pool``):
    loaded from ``out/la``, or the classifier is trained and its selection stored first."""
    return _selection(Path(out), RunSpec(model, "la", seed, subset=subset), exp, grid, log)


def _selection(out: Path, spec: RunSpec, exp: Experiment, grid: GridConfig, log) -> pd.DataFrame:
    folder = classifier_folder(out, spec.model, spec.subset, spec.seed)
    path = folder / SELECTION_FILE
    if path.exists():
        return pd.read_csv(path, index_col=keys.CONFIG_ID)
    log(f"[grid] classifier {spec.model} seed {spec.seed}: {len(exp.model_ids)} EIPs + none")
    result = train_classifier(exp, grid.model_configs[spec.model], grid.train, tau=grid.tau, out_dir=folder / "classifier")
    selection = select_pool(result.model, exp, device=grid.train.device)
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomic(folder / "classifier.json", json.dumps({
        "val_accuracy": result.val_accuracy, "train_class_counts": result.class_counts.to_dict(),
        "n_selected": int(selection["selected"].sum()), "n_pool": len(selection)}, indent=2))
    selection.to_csv(path)
    return selection


def _run_info(spec: RunSpec, grid: GridConfig) -> dict:
    return {"dataset": grid.dataset, "split": spec.seed, "strategy": spec.tag}


def _la_inputs(out: Path, spec: RunSpec, exp: Experiment, grid: GridConfig, log):
    """The pool selection of an LA / MP+LA run and a factory of the network each alpha starts from."""
    selection = _selection(out, spec, exp, grid, log)
    if spec.strategy == "la":
        def factory():
            return grid.model_configs[spec.model]
    else:
        pretrained = _pretrained(out, spec, exp, grid, log)

        def factory():
            return for_finetuning(pretrained, seed=spec.seed)
    return selection, factory


def fit_alpha(spec: RunSpec, alpha: float, base: Experiment, grid: GridConfig, out: str | Path,
              log: Callable[[str], object] = print) -> None:
    """Train (or resume) one alpha's fit of a full LA / MP+LA run, without choosing among alphas:
    ``run_one`` then reuses it (parallel workers train a run's alphas side by side)."""
    out = Path(out)
    exp = restrict(base, eip_subset(base, spec.subset))
    selection, factory = _la_inputs(out, spec, exp, grid, log)
    folder = alpha_folder(run_folder(out, spec), alpha)  # where select_alpha looks for it
    fit_augmented(exp, selection, factory(), replace(grid.train, seed=spec.seed), alpha=alpha, tukey=spec.tukey,
                  out_dir=folder, run_info=_run_info(spec, grid))


def run_one(spec: RunSpec, base: Experiment, grid: GridConfig, out: Path, log: Callable[[str], object] = print) -> dict:
    """Run one grid cell (or return its stored result)."""
    folder = run_folder(out, spec)
    done = _done(folder)
    if done is not None:
        why = stale_reason(done, spec, grid.alphas, out)
        if why is None:
            return done
        log(f"[grid] {spec.model} {spec.tag} seed {spec.seed}: redoing ({why})")
    exp = restrict(base, eip_subset(base, spec.subset))
    settings = replace(grid.train, seed=spec.seed)
    info = _run_info(spec, grid)
    extra: dict = {"eips": exp.model_ids}
    if spec.strategy == "baseline":
        fit = fit_energy_model(exp.parts[keys.TRAIN], exp.parts[keys.VAL], exp.parts[keys.TEST],
                               model=grid.model_configs[spec.model], settings=settings, out_dir=folder, run_info=info)
    elif spec.strategy == "mp":
        model = for_finetuning(_pretrained(out, spec, exp, grid, log), seed=spec.seed)
        fit = fit_energy_model(exp.parts[keys.TRAIN], exp.parts[keys.VAL], exp.parts[keys.TEST],
                               model=model, settings=settings, out_dir=folder, run_info=info)
    elif spec.group != "all":
        selection = _selection(out, spec, exp, grid, log)
        full = run_one(replace(spec, group="all"), base, grid, out, log=log)
        group = confidence_groups(selection)
        ids = group.index[group == spec.group]
        # one fit folder per alpha: a group run redone for a new alpha must not resume the old fit
        fit, info = fit_augmented(exp, selection, grid.model_configs[spec.model], settings, alpha=full["alpha"],
                                  tukey=spec.tukey, group=ids, out_dir=alpha_folder(folder, full["alpha"]),
                                  run_info=info)
        extra.update({k: info[k] for k in ("alpha", "effective_weight", "n_aug")})
        extra["confidence_range"] = [float(selection.loc[ids, "confidence"].min()), float(selection.loc[ids, "confidence"].max())]
    elif spec.strategy in ("la", "mp+la"):
        selection, factory = _la_inputs(out, spec, exp, grid, log)
        fit, alpha_table = select_alpha(exp, selection, factory, settings, alphas=grid.alphas, tukey=spec.tukey,
                                        out_dir=folder, run_info=info)
        chosen = alpha_table[alpha_table["chosen"]].iloc[0]
        extra.update({"alpha": float(chosen.name), "effective_weight": float(chosen["effective_weight"]),
                      "n_aug": int(chosen["n_aug"]), "alpha_table": alpha_table.reset_index().to_dict(orient="records")})
        # every alpha's fit is part of the LA run's cost, not only the chosen one
        extra[RUN_WALL_TIME] = float(alpha_table[RUN_WALL_TIME].sum())
    else:
        raise ValueError(f"unknown strategy {spec.strategy!r}; choose from {STRATEGIES}")
    record = {
        **asdict(spec), "tag": spec.tag, "dataset": grid.dataset, **fit.test_metrics,
        "val_" + keys.MAE_CONFIG: float(fit.record["metrics"]["val_" + keys.MAE_CONFIG]),
        "val_" + keys.MAE_ATOM: float(fit.record["metrics"]["val_" + keys.MAE_ATOM]),
        # training time summed over resumed sessions (a reused or resumed fit keeps its cost)
        "epochs": settings.epochs, RUN_WALL_TIME: float(fit.record[RUN_WALL_TIME]), **extra,
    }
    _write(folder, record)
    log(f"[grid] {spec.model} {spec.tag} seed {spec.seed}: test MAE {record.get('test_' + keys.MAE_CONFIG, float('nan')):.4f} eV")
    return record


def run_grid(
    configs: ConfigSet,
    splits: Sequence[pd.Series],
    seeds: Sequence[int],
    eip_ids: Sequence[str],
    specs: Sequence[RunSpec],
    grid: GridConfig,
    out: str | Path,
    *,
    n_jobs: int = 1,
    workers: int = 1,
    threads: int = 1,
    log: Callable[[str], object] = print,
) -> pd.DataFrame:
    """Run every spec (skipping finished ones); return one row per run, in ``specs`` order.

    The runs go split by split (as the workers' fits do), so an interrupted grid leaves whole
    splits finished and only one split's experiment is held at a time. ``workers`` > 1 first
    trains the fits on that many processes with ``threads`` torch threads each (see
    :mod:`eiplab.strategies.parallel`); the rows are then read from what they stored.
    """
    out = Path(out)
    if workers > 1:
        from .parallel import train_in_workers

        train_in_workers(specs, grid, out, (configs, splits, seeds, eip_ids), workers=workers, threads=threads,
                         n_jobs=n_jobs, log=log)
    rows: dict[int, dict] = {}
    experiment, experiment_seed = None, None
    for k in sorted(range(len(specs)), key=lambda k: specs[k].seed):  # stable: spec order within a split
        spec = specs[k]
        if spec.seed != experiment_seed:
            split = splits[list(seeds).index(spec.seed)]
            experiment = prepare_experiment(configs, split, eip_ids, align=grid.align, n_jobs=n_jobs, progress=False)
            experiment_seed = spec.seed
        rows[k] = run_one(spec, experiment, grid, out, log=log)
    return pd.DataFrame([rows[k] for k in range(len(specs))])


# METHOD.md: SOAP/graph cutoff 5 Angstrom for Si, 7 Angstrom for Al; other systems use 6 Angstrom
# (decision: about the second-neighbour shell of fcc Ag/Au).
CUTOFF_BY_SPECIES = {("Si",): 5.0, ("Al",): 7.0}
DEFAULT_CUTOFF = 6.0


def default_cutoff(species: Sequence[str]) -> float:
    """Graph/SOAP cutoff (Angstrom) for a dataset's elements."""
    return CUTOFF_BY_SPECIES.get(tuple(sorted(species)), DEFAULT_CUTOFF)


def grid_from_profile(profile: str, configs: ConfigSet, models: Sequence[str] | None = None,
                      device: str = "auto", progress: bool = False, alphas: Sequence[float] | None = None,
                      **model_options) -> GridConfig:
    """A GridConfig with a profile's epochs, alpha grid and models (paper: A.4 settings).

    ``alphas`` replaces the profile's alpha grid (say so wherever the tables are reported);
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
