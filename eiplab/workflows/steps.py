"""What each job of a grid does: train (or reuse) one stored result of the run store.

Every step takes the split's experiment, the grid settings and the store (a :class:`RunStore`
or its folder); it holds the result's
folder lock, returns the stored result when it was made with the same inputs
(:meth:`RunStore.is_current`), and otherwise claims the folder (stale files removed) and trains
-- resuming from a checkpoint of the same inputs. Steps call the method (``eiplab.strategies``)
and nothing else decides where files go.

Steps: :func:`pool_selection` (an LA classifier and its selection), :func:`pretrained_backbone`
(an MP backbone), :func:`fit_alpha` (one alpha of an LA / MP+LA run), :func:`finish_run` (a
baseline / MP / confidence-group run, or an LA run's choice of alpha on validation, written as
the run's result).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

import pandas as pd

from .. import keys
from ..atomic_io import write_text_atomic
from ..models import EnergyModel, load_model
from ..strategies.augment import alpha_table, fit_augmented
from ..strategies.classifier import resolve_tau, select_pool, train_classifier
from ..strategies.confidence import confidence_groups
from ..strategies.delta import DELTA_EIP, delta_eip, delta_parts
from ..strategies.error_selector import select_by_error, train_error_regressor
from ..strategies.experiment import Experiment
from ..strategies.pretrain import for_finetuning, pretrain
from ..strategies.subsets import eip_subset, restrict
from ..training import BEST_MODEL_FILE, RECORD_FILE, RUN_METRICS, RUN_WALL_TIME, fit_energy_model
from .inputs import backbone_inputs, classifier_inputs, fit_inputs, run_inputs, split_key
from .spec import DELTA_STRATEGIES, LA_STRATEGIES, MP_STRATEGIES, STRATEGIES, GridConfig, RunSpec
from .store import (
    CLASSIFIER_FILE,
    CLASSIFIER_FIT,
    HELD_OUT_SELECTION_FILE,
    SELECTION_FILE,
    RunStore,
    read_json,
    store_of,
)

Log = Callable[[str], object]


def subset_experiment(base: Experiment, subset: str) -> Experiment:
    """The split's experiment restricted to a Table 7 subset's EIPs ("all": itself)."""
    return base if subset == "all" else restrict(base, eip_subset(base, subset))


# --- classifiers and backbones ---------------------------------------------------------------------
def pool_selection(store: RunStore | str | Path, model: str, seed: int, exp: Experiment, grid: GridConfig, *,
                   subset: str = "all", log: Log = print) -> pd.DataFrame:
    """The LA classifier's selection over the pool of split ``seed`` (``select_pool``), with
    ``exp`` restricted to the subset's EIPs: loaded when it was made with the same split, EIPs,
    tau and settings, else the classifier is trained (seeded with the split seed) and its
    selection -- and its picks on the held-out test configs, for Table 6 only -- stored first."""
    store = store_of(store)
    folder = store.classifier_folder(model, subset, seed)
    inputs = classifier_inputs(split_key(exp), grid, model, seed)
    with store.lock(folder):
        if store.is_current(folder, inputs, SELECTION_FILE):
            return pd.read_csv(folder / SELECTION_FILE, index_col=keys.CONFIG_ID)
        store.claim(folder, inputs, f"{model} classifier[{subset}] seed {seed}", log, subfolders=(CLASSIFIER_FIT,))
        settings = replace(grid.train, seed=seed)
        if grid.selector == "error-regression":
            log(f"[grid] error regression {model} seed {seed}: {len(exp.model_ids)} EIPs")
            result = train_error_regressor(exp, grid.model_configs[model], settings, tau=grid.tau,
                                           out_dir=folder / CLASSIFIER_FIT)
            selection = select_by_error(result.model, exp, tau=result.tau, device=grid.train.device)
            held_out = select_by_error(result.model, exp, tau=result.tau, device=grid.train.device, part=keys.TEST)
        else:
            log(f"[grid] classifier {model} seed {seed}: {len(exp.model_ids)} EIPs + none")
            result = train_classifier(exp, grid.model_configs[model], settings, tau=grid.tau,
                                      out_dir=folder / CLASSIFIER_FIT)
            selection = select_pool(result.model, exp, device=grid.train.device)
            held_out = select_pool(result.model, exp, device=grid.train.device, part=keys.TEST)
        write_text_atomic(folder / HELD_OUT_SELECTION_FILE, held_out.to_csv())
        write_text_atomic(folder / CLASSIFIER_FILE, json.dumps({
            "val_accuracy": result.val_accuracy, "train_class_counts": result.class_counts.to_dict(),
            "n_selected": int(selection["selected"].sum()), "n_pool": len(selection), "tau": result.tau,
            "eips": list(exp.model_ids), "seed": seed, "selector": grid.selector}, indent=2))
        write_text_atomic(folder / SELECTION_FILE, selection.to_csv())  # last: it marks the step finished
        return selection


def held_out_selection(store: RunStore | str | Path, model: str, seed: int, exp: Experiment, grid: GridConfig, *,
                       subset: str = "all", log: Log = print) -> pd.DataFrame:
    """The LA classifier of split ``seed`` run on the split's held-out TEST configs (as
    ``select_pool`` does on the pool): for the audit (Table 6) of datasets whose pool has no DFT
    (the mlearn sets). Nothing is trained or chosen with it."""
    store = store_of(store)
    pool_selection(store, model, seed, exp, grid, subset=subset, log=log)
    return pd.read_csv(store.classifier_folder(model, subset, seed) / HELD_OUT_SELECTION_FILE, index_col=keys.CONFIG_ID)


def pretrained_backbone(store: RunStore | str | Path, model: str, exp: Experiment, grid: GridConfig, *,
                        log: Log = print) -> EnergyModel:
    """The MP-pretrained network (K-output head) of ``model`` on the experiment's pool and EIPs
    (``exp`` restricted to a subset's EIPs for Table 7): loaded when it was pretrained on the
    same pool, EIPs and settings, else pretrained (no DFT) and stored first."""
    store = store_of(store)
    key = split_key(exp)
    folder = store.backbone_folder(model, key.pool, key.eips)
    inputs = backbone_inputs(key, grid, model)
    with store.lock(folder):
        if store.is_current(folder, inputs, BEST_MODEL_FILE):
            return load_model(folder / BEST_MODEL_FILE)
        store.claim(folder, inputs, f"{model} pretrain", log)
        log(f"[grid] pretraining {model} on {len(exp.parts[keys.POOL])} pool configs x {len(exp.model_ids)} EIPs")
        result = pretrain(exp.parts[keys.POOL], exp.aligned, exp.model_ids, grid.model_configs[model],
                          replace(grid.train, seed=0), out_dir=folder,
                          force_weight=grid.force_weight if grid.eip_forces else 0.0)
        return result.model


# --- fits and runs ---------------------------------------------------------------------------------
def _run_info(spec: RunSpec, grid: GridConfig) -> dict:
    return {"dataset": grid.dataset, "split": spec.seed, "strategy": spec.tag}


def _start_network(store: RunStore, spec: RunSpec, exp: Experiment, grid: GridConfig, log: Log):
    """The network a fit of ``spec`` starts from: a fresh ModelConfig, or the MP backbone with a
    fresh 1-output head (seeded with the split)."""
    if spec.strategy in MP_STRATEGIES:
        return for_finetuning(pretrained_backbone(store, spec.model, exp, grid, log=log), seed=spec.seed)
    return grid.model_configs[spec.model]


def fit_alpha(store: RunStore | str | Path, spec: RunSpec, alpha: float, base: Experiment, grid: GridConfig, *,
              log: Log = print) -> dict:
    """Train (or reuse) one alpha's fit of a full LA / MP+LA run; returns its training record
    (``run.json``: validation and test metrics, alpha, effective weight, EIP-labelled configs)."""
    store = store_of(store)
    exp = subset_experiment(base, spec.subset)
    folder = store.alpha_folder(spec, alpha)
    inputs = fit_inputs(split_key(exp), grid, spec, alpha)
    with store.lock(folder):
        if store.is_current(folder, inputs, RECORD_FILE):
            return read_json(folder / RECORD_FILE)
        selection = pool_selection(store, spec.model, spec.seed, exp, grid, subset=spec.subset, log=log)
        start = _start_network(store, spec, exp, grid, log)
        store.claim(folder, inputs, f"{spec.model} {spec.tag} seed {spec.seed} alpha {alpha:g}", log)
        fit, _ = fit_augmented(exp, selection, start, replace(grid.train, seed=spec.seed), alpha=alpha,
                               tukey=spec.tukey, out_dir=folder, run_info=_run_info(spec, grid),
                               force_weight=grid.force_weight, eip_forces=grid.eip_forces)
        return fit.record


def _alpha_row(record: dict) -> dict:
    metrics = record[RUN_METRICS]
    return {"alpha": float(record["alpha"]), "effective_weight": float(record["effective_weight"]),
            "n_dft": int(record["n_dft"]), "n_aug": int(record["n_aug"]), "tukey": bool(record["tukey"]),
            "val_" + keys.MAE_CONFIG: float(metrics["val_" + keys.MAE_CONFIG]),
            "val_" + keys.MAE_ATOM: float(metrics["val_" + keys.MAE_ATOM]),
            **{k: float(v) for k, v in metrics.items() if k.startswith("test_")},
            RUN_WALL_TIME: float(record[RUN_WALL_TIME])}


def alphas_tried(record: dict) -> list[float]:
    """The alpha grid an LA / MP+LA run chose its alpha from (sorted; empty for other runs)."""
    return sorted(float(row["alpha"]) for row in record.get("alpha_table", []))


def stale_reason(store: RunStore, record: dict, spec: RunSpec, grid: GridConfig, inputs: dict | None = None) -> str | None:
    """Why a finished run no longer matches the grid (None when it still does): it was made with
    other ``inputs`` (:func:`run_inputs`; checked when given), an LA run chose its alpha from
    another alpha grid, or a confidence-group run used an alpha its full LA run no longer chose.
    Redoing it retrains only what is missing (each alpha's fit is reused when its inputs match)."""
    from ..provenance import mismatch

    if inputs is not None:
        why = mismatch(store.run_folder(spec), inputs)
        if why is not None:
            return why
    if spec.strategy in ("la", "mp+la") and spec.group == "all":
        tried, wanted = alphas_tried(record), sorted(float(a) for a in grid.alphas)
        if tried != wanted:
            return f"alpha chosen from {tried}, grid is {wanted}"
    if spec.group != "all":
        full = store.result(replace(spec, group="all"))
        if full is not None and float(full["alpha"]) != float(record["alpha"]):
            return f"used alpha {record['alpha']:g}, the full LA run now chooses {full['alpha']:g}"
    return None


def finish_run(store: RunStore | str | Path, spec: RunSpec, base: Experiment, grid: GridConfig, *, log: Log = print) -> dict:
    """A run's result (``result.json``): the stored one when current, else made now -- a baseline
    or MP run trains its fit; an LA / MP+LA run chooses its alpha on validation from its alpha
    fits (training any missing); a confidence-group run trains on DFT + its group with the alpha
    its full LA run chose."""
    store = store_of(store)
    exp = subset_experiment(base, spec.subset)
    key = split_key(exp)
    inputs = run_inputs(key, grid, spec)
    folder = store.run_folder(spec)
    if spec.strategy in DELTA_STRATEGIES and grid.force_weight > 0:  # refused before any stored file is touched
        raise NotImplementedError(f"{spec.model} {spec.tag}: delta-learning with forces (the EIP's forces "
                                  "subtracted too) is not implemented; run delta strategies with force_weight=0")
    if spec.group != "all":  # the full LA run's choice first (it holds its own lock)
        full = finish_run(store, replace(spec, group="all"), base, grid, log=log)
    with store.lock(folder):
        done = store.result(spec)
        if done is not None:
            why = stale_reason(store, done, spec, grid, inputs)
            if why is None:
                return done
            log(f"[grid] {spec.model} {spec.tag} seed {spec.seed}: redoing ({why})")
        store.claim(folder, inputs, f"{spec.model} {spec.tag} seed {spec.seed}", log)
        settings = replace(grid.train, seed=spec.seed)
        extra: dict = {"eips": exp.model_ids}
        if spec.strategy in ("baseline", "mp"):
            fit = fit_energy_model(exp.parts[keys.TRAIN], exp.parts[keys.VAL], exp.parts[keys.TEST],
                                   model=_start_network(store, spec, exp, grid, log), settings=settings,
                                   out_dir=folder, run_info=_run_info(spec, grid), force_weight=grid.force_weight)
            fit_record = fit.record
        elif spec.strategy in DELTA_STRATEGIES:
            eip = delta_eip(exp, grid.delta_eip)  # the best on TRAIN unless named
            parts = delta_parts(exp, eip)
            fit = fit_energy_model(parts[keys.TRAIN], parts[keys.VAL], parts[keys.TEST],
                                   model=_start_network(store, spec, exp, grid, log), settings=settings,
                                   out_dir=folder, run_info={**_run_info(spec, grid), DELTA_EIP: eip})
            fit_record = fit.record
            extra[DELTA_EIP] = eip
        elif spec.group != "all":
            selection = pool_selection(store, spec.model, spec.seed, exp, grid, subset=spec.subset, log=log)
            group = confidence_groups(selection, grid.quantiles)
            ids = group.index[group == spec.group]
            alpha = float(full["alpha"])
            fit_dir = store.alpha_folder(spec, alpha)  # a group run redone for a new alpha never resumes the old fit
            store.claim(fit_dir, fit_inputs(key, grid, spec, alpha), f"{spec.model} {spec.tag} seed {spec.seed}", log)
            fit, info = fit_augmented(exp, selection, grid.model_configs[spec.model], settings, alpha=alpha,
                                      tukey=spec.tukey, group=ids, out_dir=fit_dir, run_info=_run_info(spec, grid),
                                      force_weight=grid.force_weight, eip_forces=grid.eip_forces)
            fit_record = fit.record
            extra.update({k: info[k] for k in ("alpha", "effective_weight", "n_aug")})
            extra["confidence_range"] = [float(selection.loc[ids, "confidence"].min()),
                                         float(selection.loc[ids, "confidence"].max())]
            extra["quantiles"] = list(grid.quantiles)
        elif spec.strategy in ("la", "mp+la"):
            rows = [_alpha_row(fit_alpha(store, spec, alpha, base, grid, log=log)) for alpha in grid.alphas]
            table = alpha_table(rows)
            chosen = table[table["chosen"]].iloc[0]
            fit_record = read_json(store.alpha_folder(spec, float(chosen.name)) / RECORD_FILE)
            extra.update({"alpha": float(chosen.name), "effective_weight": float(chosen["effective_weight"]),
                          "n_aug": int(chosen["n_aug"]), "alpha_table": table.reset_index().to_dict(orient="records")})
            extra[RUN_WALL_TIME] = float(table[RUN_WALL_TIME].sum())  # every alpha's fit is part of the run's cost
        else:
            raise ValueError(f"unknown strategy {spec.strategy!r}; choose from {(*STRATEGIES, *DELTA_STRATEGIES)}")
        if spec.strategy in LA_STRATEGIES:
            extra["tau"] = resolve_tau(exp, grid.tau)  # eV/atom, this split's
            extra["tau_setting"] = grid.tau  # as asked: a number or "auto"
            extra[keys.SELECTOR] = grid.selector  # tables keep runs of different selectors apart
        metrics = fit_record[RUN_METRICS]
        record = {
            **asdict(spec), "tag": spec.tag, "dataset": grid.dataset,
            **{k: float(v) for k, v in metrics.items() if k.startswith("test_")},
            "val_" + keys.MAE_CONFIG: float(metrics["val_" + keys.MAE_CONFIG]),
            "val_" + keys.MAE_ATOM: float(metrics["val_" + keys.MAE_ATOM]),
            **({"force_weight": grid.force_weight, "eip_forces": grid.eip_forces} if grid.force_weight > 0 else {}),
            # training time summed over resumed sessions (a reused or resumed fit keeps its cost)
            "epochs": settings.epochs, RUN_WALL_TIME: float(fit_record[RUN_WALL_TIME]), **extra,
        }
        store.write_result(spec, record)
    log(f"[grid] {spec.model} {spec.tag} seed {spec.seed}: test MAE "
        f"{record.get('test_' + keys.MAE_CONFIG, float('nan')):.4f} eV")
    return record
