"""The experiment grid: models x strategies x splits (Tables 3, 4 and 7), resumable.

Layout under ``out``::

    pretrain/<model>/<eips key>/        MP backbone, keyed by what it was pretrained on (the pool
                                        and the EIP ids; no DFT): shared by every split and
                                        subset with the same pool and EIPs
    la/<model>/<subset>/seed<k>/        classifier + selection.csv (one per split)
    runs/<model>/<run tag>/seed<k>/     result.json of each finished run (+ checkpoints)
    splits/seed<k>.json                 the split's EIP ranking on its TRAIN configs (Table 7)

Every stored result is reused only when the inputs that made it match the call's
(``made_with.json`` in its folder, :mod:`eiplab.provenance`): tau, the EIP ids, the split, the
model and training settings, the confidence quantiles, and the fingerprints of the classifier
and backbone it was built from. A mismatch redoes it (its old files are removed first, so a
checkpoint of other inputs is never resumed). Otherwise a finished run is skipped and an
interrupted one resumes from its last epoch checkpoint.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import pandas as pd

from .. import keys
from ..atomic_io import write_text_atomic
from ..data import ConfigSet
from ..models import EnergyModel, ModelConfig
from ..provenance import MADE_WITH_FILE, fingerprint, fingerprint_pairs, mismatch, write_made_with
from ..training import RUN_WALL_TIME, TrainSettings, fit_energy_model
from .augment import ALPHA_GRID, alpha_folder, fit_augmented, select_alpha
from .classifier import resolve_tau, select_pool, train_classifier
from .confidence import CONFIDENCE_GROUPS, DEFAULT_QUANTILES, confidence_groups
from .experiment import Experiment, prepare_experiment
from .labels import DEFAULT_TAU
from .pretrain import PRETRAINED_FILE, for_finetuning, load_pretrained, pretrain
from .subsets import eip_subset, rank_eips, restrict, subset_of_ranking

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
        tau: LA "none" threshold, eV/atom, or "auto" (resolved on each split's TRAINING configs,
            :func:`eiplab.strategies.labels.auto_tau`).
        align: EIP alignment ("species" or "none").
        quantiles: confidence-group edges of the Table 5 runs (low below the first quantile of
            the selected configs' confidence, high above the second).
    """

    dataset: str
    train: TrainSettings
    model_configs: dict[str, ModelConfig]
    alphas: Sequence[float] = ALPHA_GRID
    tau: float | str = DEFAULT_TAU
    align: str = "species"
    quantiles: tuple[float, float] = DEFAULT_QUANTILES
    extra: dict = field(default_factory=dict)


# --- what a stored result depends on in the data ---------------------------------------------------
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


RANKING_FILE = "seed{seed}.json"


def grid_data(splits: Sequence[pd.Series], seeds: Sequence[int], eip_ids: Sequence[str], out: str | Path, *,
              experiments: Mapping[int, Experiment] | None = None) -> GridData:
    """The :class:`GridData` of a grid: split keys from the splits; EIP rankings from
    ``experiments`` (stored in ``out/splits/`` for later calls), else read from ``out/splits/``
    when they were stored for the same split and EIPs."""
    split_keys = {}
    for seed, split in zip(seeds, splits, strict=True):
        pool = sorted(split.index[split == keys.POOL])
        split_keys[int(seed)] = SplitKey(fingerprint_pairs(split.items()), fingerprint(pool), tuple(eip_ids))
    rankings: dict[int, tuple[str, ...]] = {}
    for seed, key in split_keys.items():
        path = Path(out) / "splits" / RANKING_FILE.format(seed=seed)
        if experiments is not None and seed in experiments:
            rankings[seed] = store_ranking(out, seed, experiments[seed])
        elif path.exists():
            stored = json.loads(path.read_text())
            if stored["split"] == key.split and stored["eips"] == list(key.eips):
                rankings[seed] = tuple(stored["ranking"])
    return GridData(split_keys, rankings)


def store_ranking(out: str | Path, seed: int, exp: Experiment) -> tuple[str, ...]:
    """Rank the experiment's EIPs on its TRAIN configs and store the ranking in ``out/splits/``
    (so that a plan knows each split's Table 7 subsets without the data); returns it."""
    ranking = tuple(rank_eips(exp))
    key = split_key(exp)
    write_text_atomic(Path(out) / "splits" / RANKING_FILE.format(seed=seed),
                      json.dumps({"split": key.split, "eips": list(key.eips), "ranking": list(ranking)}, indent=2))
    return ranking


# --- the inputs of each stored result (made_with.json) ---------------------------------------------
def _train_inputs(settings: TrainSettings) -> dict:
    """Training settings that change a result (not the progress bar or the device)."""
    return {k: v for k, v in asdict(settings).items() if k not in ("progress", "device")}


def classifier_inputs(key: SplitKey, grid: GridConfig, model: str, seed: int) -> dict:
    """Inputs of an LA classifier and its pool selection (split ``seed``, the key's EIPs)."""
    return {"kind": "la-classifier", "dataset": grid.dataset, "split": key.split, "eips": list(key.eips),
            "align": grid.align, "tau": grid.tau, "model": asdict(grid.model_configs[model]),
            "train": _train_inputs(replace(grid.train, seed=seed))}


def backbone_inputs(key: SplitKey, grid: GridConfig, model: str) -> dict:
    """Inputs of an MP backbone: the pool and the EIPs (no split, no DFT, no alignment: the
    per-EIP species fit of the targets removes any per-species shift)."""
    return {"kind": "mp-pretrain", "dataset": grid.dataset, "pool": key.pool, "eips": list(key.eips),
            "model": asdict(grid.model_configs[model]), "train": _train_inputs(replace(grid.train, seed=0))}


def run_inputs(key: SplitKey, grid: GridConfig, spec: RunSpec) -> dict:
    """Inputs of a run (and of its fit, for baseline / MP runs): for LA runs the classifier they
    select with, for MP runs the backbone they start from; not the alpha grid (a run chosen from
    another grid is redone reusing each alpha's fit) nor a group run's alpha (``stale_reason``)."""
    inputs = {"kind": "run", "run": spec.tag, "dataset": grid.dataset, "split": key.split, "eips": list(key.eips),
              "model": asdict(grid.model_configs[spec.model]), "train": _train_inputs(replace(grid.train, seed=spec.seed))}
    if "la" in spec.strategy:
        inputs["selection"] = fingerprint(classifier_inputs(key, grid, spec.model, spec.seed))
        inputs["tukey"] = spec.tukey
    if spec.strategy in ("mp", "mp+la"):
        inputs["backbone"] = fingerprint(backbone_inputs(key, grid, spec.model))
    if spec.group != "all":
        inputs["quantiles"] = list(grid.quantiles)
    return inputs


def fit_inputs(key: SplitKey, grid: GridConfig, spec: RunSpec, alpha: float) -> dict:
    """Inputs of one alpha's fit of an LA / MP+LA / confidence-group run."""
    return {**run_inputs(key, grid, spec), "kind": "la-fit", "alpha": float(alpha)}


def claim(folder: Path, inputs: dict, what: str, log: Callable[[str], object] = print,
          subfolders: Sequence[str] = ()) -> None:
    """Make ``folder`` hold a result of ``inputs``: when it holds files made with other inputs
    (or of unknown inputs), remove them (and ``subfolders``) first, saying why; then record the
    inputs, so an interrupted fit resumes only from a checkpoint of the same inputs."""
    why = mismatch(folder, inputs)
    if why is None:
        return
    stale = [f for f in folder.iterdir() if f.is_file()] if folder.is_dir() else []
    stale += [folder / name for name in subfolders if (folder / name).is_dir()]
    if stale and any(f.name != MADE_WITH_FILE for f in stale):
        log(f"[grid] {what}: stored result made with other inputs ({why}); redoing it")
    for item in stale:
        shutil.rmtree(item) if item.is_dir() else item.unlink()
    write_made_with(folder, inputs)


def is_current(folder: Path, inputs: dict | None, done_file: str) -> bool:
    """True when ``folder`` holds a finished result (``done_file``) made with ``inputs``."""
    return inputs is not None and (folder / done_file).exists() and mismatch(folder, inputs) is None


# --- the grid folder's layout (shared with eiplab.strategies.plan and .parallel) ------------------
SELECTION_FILE = "selection.csv"
HELD_OUT_SELECTION_FILE = "held_out_selection.csv"  # the classifier on the split's TEST configs: Table 6 only


def run_folder(out: str | Path, spec: RunSpec) -> Path:
    """``out/runs/<model>/<tag>/seed<k>``: a run's result (and its fit, or one fit per alpha)."""
    return Path(out) / "runs" / spec.model / spec.tag / f"seed{spec.seed}"


def classifier_folder(out: str | Path, model: str, subset: str, seed: int) -> Path:
    """``out/la/<model>/<subset>/seed<k>``: the LA classifier (``classifier/``) and its selection."""
    return Path(out) / "la" / model / subset / f"seed{seed}"


def backbone_folder(out: str | Path, model: str, key: SplitKey) -> Path:
    """``out/pretrain/<model>/eips-<hash>``: the MP backbone pretrained on the key's pool and EIPs
    (shared by every split and subset with the same pool and EIPs; ``made_with.json`` lists them)."""
    return Path(out) / "pretrain" / model / ("eips-" + fingerprint({"pool": key.pool, "eips": sorted(key.eips)})[:12])


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


def stale_reason(record: dict, spec: RunSpec, alphas: Sequence[float], out: Path,
                 inputs: dict | None = None) -> str | None:
    """Why a finished run no longer matches the grid (None when it still does): it was made with
    other ``inputs`` (:func:`run_inputs`; checked when given), an LA run chose its alpha from
    another alpha grid, or a confidence-group run used an alpha its full LA run no longer chose.
    Redoing it retrains only what is missing (each alpha's fit resumes when its inputs match)."""
    if inputs is not None:
        why = mismatch(run_folder(out, spec), inputs)
        if why is not None:
            return why
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


def pretrained_backbone(out: str | Path, model: str, exp: Experiment, grid: GridConfig, *,
                        log: Callable[[str], object] = print) -> EnergyModel:
    """The MP-pretrained network (K-output head) of ``model`` on the experiment's pool and EIPs
    (``exp`` restricted to a subset's EIPs for Table 7): loaded from ``out/pretrain`` when it was
    pretrained on the same pool, EIPs and settings, else pretrained (no DFT) and stored first."""
    key = split_key(exp)
    folder = backbone_folder(out, model, key)
    inputs = backbone_inputs(key, grid, model)
    if is_current(folder, inputs, PRETRAINED_FILE):
        return load_pretrained(folder)
    claim(folder, inputs, f"{model} pretrain", log)
    log(f"[grid] pretraining {model} on {len(exp.parts[keys.POOL])} pool configs x {len(exp.model_ids)} EIPs")
    settings = replace(grid.train, seed=0)
    result = pretrain(exp.parts[keys.POOL], exp.aligned, exp.model_ids, grid.model_configs[model], settings, out_dir=folder)
    return result.model


def pool_selection(out: str | Path, model: str, seed: int, exp: Experiment, grid: GridConfig, *, subset: str = "all",
                   log: Callable[[str], object] = print) -> pd.DataFrame:
    """The LA classifier's selection over the pool of split ``seed`` (see ``select_pool``), with
    ``exp`` restricted to the subset's EIPs: loaded from ``out/la`` when it was made with the same
    split, EIPs, tau and settings, else the classifier is trained (seeded with the split seed)
    and its selection stored first."""
    out = Path(out)
    folder = classifier_folder(out, model, subset, seed)
    inputs = classifier_inputs(split_key(exp), grid, model, seed)
    if is_current(folder, inputs, SELECTION_FILE):
        return pd.read_csv(folder / SELECTION_FILE, index_col=keys.CONFIG_ID)
    claim(folder, inputs, f"{model} classifier[{subset}] seed {seed}", log, subfolders=("classifier",))
    log(f"[grid] classifier {model} seed {seed}: {len(exp.model_ids)} EIPs + none")
    result = train_classifier(exp, grid.model_configs[model], replace(grid.train, seed=seed), tau=grid.tau,
                              out_dir=folder / "classifier")
    selection = select_pool(result.model, exp, device=grid.train.device)
    held_out = select_pool(result.model, exp, device=grid.train.device, part=keys.TEST)
    write_text_atomic(folder / HELD_OUT_SELECTION_FILE, held_out.to_csv())
    write_text_atomic(folder / "classifier.json", json.dumps({
        "val_accuracy": result.val_accuracy, "train_class_counts": result.class_counts.to_dict(),
        "n_selected": int(selection["selected"].sum()), "n_pool": len(selection), "tau": result.tau,
        "eips": list(exp.model_ids), "seed": seed}, indent=2))
    write_text_atomic(folder / SELECTION_FILE, selection.to_csv())
    return selection


def held_out_selection(out: str | Path, model: str, seed: int, exp: Experiment, grid: GridConfig, *,
                       subset: str = "all", log: Callable[[str], object] = print) -> pd.DataFrame:
    """The LA classifier of split ``seed`` run on the split's held-out TEST configs (as
    ``select_pool`` does on the pool): for the audit (Table 6) of datasets whose pool has no DFT
    (the mlearn sets). Nothing is trained or chosen with it."""
    pool_selection(out, model, seed, exp, grid, subset=subset, log=log)
    return pd.read_csv(classifier_folder(out, model, subset, seed) / HELD_OUT_SELECTION_FILE, index_col=keys.CONFIG_ID)


def _run_info(spec: RunSpec, grid: GridConfig) -> dict:
    return {"dataset": grid.dataset, "split": spec.seed, "strategy": spec.tag}


def _la_inputs(out: Path, spec: RunSpec, exp: Experiment, grid: GridConfig, log):
    """The pool selection of an LA / MP+LA run and a factory of the network each alpha starts from."""
    selection = pool_selection(out, spec.model, spec.seed, exp, grid, subset=spec.subset, log=log)
    if spec.strategy == "la":
        def factory():
            return grid.model_configs[spec.model]
    else:
        pretrained = pretrained_backbone(out, spec.model, exp, grid, log=log)

        def factory():
            return for_finetuning(pretrained, seed=spec.seed)
    return selection, factory


def _claim_alpha(out: Path, spec: RunSpec, exp: Experiment, grid: GridConfig, alpha: float, log) -> Path:
    folder = alpha_folder(run_folder(out, spec), alpha)  # where select_alpha looks for it
    claim(folder, fit_inputs(split_key(exp), grid, spec, alpha), f"{spec.model} {spec.tag} seed {spec.seed} alpha {alpha:g}",
          log)
    return folder


def fit_alpha(spec: RunSpec, alpha: float, base: Experiment, grid: GridConfig, out: str | Path,
              log: Callable[[str], object] = print) -> None:
    """Train (or resume) one alpha's fit of a full LA / MP+LA run, without choosing among alphas:
    ``run_one`` then reuses it (parallel workers train a run's alphas side by side)."""
    out = Path(out)
    exp = restrict(base, eip_subset(base, spec.subset))
    selection, factory = _la_inputs(out, spec, exp, grid, log)
    folder = _claim_alpha(out, spec, exp, grid, alpha, log)
    fit_augmented(exp, selection, factory(), replace(grid.train, seed=spec.seed), alpha=alpha, tukey=spec.tukey,
                  out_dir=folder, run_info=_run_info(spec, grid))


def run_one(spec: RunSpec, base: Experiment, grid: GridConfig, out: Path, log: Callable[[str], object] = print) -> dict:
    """Run one grid cell (or return its stored result, when it was made with the same inputs)."""
    out = Path(out)
    folder = run_folder(out, spec)
    exp = restrict(base, eip_subset(base, spec.subset))
    key = split_key(exp)
    inputs = run_inputs(key, grid, spec)
    done = _done(folder)
    if done is not None:
        why = stale_reason(done, spec, grid.alphas, out, inputs)
        if why is None:
            return done
        log(f"[grid] {spec.model} {spec.tag} seed {spec.seed}: redoing ({why})")
    claim(folder, inputs, f"{spec.model} {spec.tag} seed {spec.seed}", log)
    settings = replace(grid.train, seed=spec.seed)
    info = _run_info(spec, grid)
    extra: dict = {"eips": exp.model_ids}
    if spec.strategy == "baseline":
        fit = fit_energy_model(exp.parts[keys.TRAIN], exp.parts[keys.VAL], exp.parts[keys.TEST],
                               model=grid.model_configs[spec.model], settings=settings, out_dir=folder, run_info=info)
    elif spec.strategy == "mp":
        model = for_finetuning(pretrained_backbone(out, spec.model, exp, grid, log=log), seed=spec.seed)
        fit = fit_energy_model(exp.parts[keys.TRAIN], exp.parts[keys.VAL], exp.parts[keys.TEST],
                               model=model, settings=settings, out_dir=folder, run_info=info)
    elif spec.group != "all":
        selection = pool_selection(out, spec.model, spec.seed, exp, grid, subset=spec.subset, log=log)
        full = run_one(replace(spec, group="all"), base, grid, out, log=log)
        group = confidence_groups(selection, grid.quantiles)
        ids = group.index[group == spec.group]
        # one fit folder per alpha: a group run redone for a new alpha must not resume the old fit
        fit_dir = alpha_folder(folder, full["alpha"])
        claim(fit_dir, fit_inputs(key, grid, spec, full["alpha"]), f"{spec.model} {spec.tag} seed {spec.seed}", log)
        fit, info = fit_augmented(exp, selection, grid.model_configs[spec.model], settings, alpha=full["alpha"],
                                  tukey=spec.tukey, group=ids, out_dir=fit_dir, run_info=info)
        extra.update({k: info[k] for k in ("alpha", "effective_weight", "n_aug")})
        extra["confidence_range"] = [float(selection.loc[ids, "confidence"].min()), float(selection.loc[ids, "confidence"].max())]
        extra["quantiles"] = list(grid.quantiles)
    elif spec.strategy in ("la", "mp+la"):
        selection, factory = _la_inputs(out, spec, exp, grid, log)
        for alpha in grid.alphas:
            _claim_alpha(out, spec, exp, grid, alpha, log)
        fit, alpha_table = select_alpha(exp, selection, factory, settings, alphas=grid.alphas, tukey=spec.tukey,
                                        out_dir=folder, run_info=info)
        chosen = alpha_table[alpha_table["chosen"]].iloc[0]
        extra.update({"alpha": float(chosen.name), "effective_weight": float(chosen["effective_weight"]),
                      "n_aug": int(chosen["n_aug"]), "alpha_table": alpha_table.reset_index().to_dict(orient="records")})
        # every alpha's fit is part of the LA run's cost, not only the chosen one
        extra[RUN_WALL_TIME] = float(alpha_table[RUN_WALL_TIME].sum())
    else:
        raise ValueError(f"unknown strategy {spec.strategy!r}; choose from {STRATEGIES}")
    if "la" in spec.strategy:
        extra["tau"] = resolve_tau(exp, grid.tau)  # eV/atom, this split's
        extra["tau_setting"] = grid.tau  # as asked: a number or "auto"
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
            store_ranking(out, spec.seed, experiment)
        rows[k] = run_one(spec, experiment, grid, out, log=log)
    return pd.DataFrame([rows[k] for k in range(len(specs))])


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
