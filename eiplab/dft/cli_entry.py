"""``eiplab dft-generate``: make a built-in DFT dataset, resumably, in a work folder.

Run it again and again (in the background, after a Ctrl-C or a kill): each run reuses the
generated configurations, the DFT store and the EIP cache in ``out`` and only does what is
missing. The packed dataset and its provenance are written only when every DFT config is
finished (a failed SCF counts as finished: it is recorded with its reason).

Files in ``out``: ``plan.json`` (what is being made), ``configs.npz`` (the generated
configurations), ``dft.jsonl`` (the DFT store), ``eip-cache/`` (EIP energies), ``.lock`` (held
while a run works there: a second run on the folder is refused), and at the end
``{name}.npz`` (the audit configs marked ``keys.DFT_HIDDEN``), ``{name}.roles.csv``
(``config_id,role`` with role labelled/audit/pool), ``{name}.provenance.json``.
:func:`ship_dataset` then copies the finished dataset into the package (``eiplab dft-ship``).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from filelock import FileLock, Timeout

from .. import __version__, keys
from ..atomic_io import write_text_atomic
from ..data.configset import ConfigSet
from ..data.hashing import config_hash
from ..data.packed import load_packed, save_packed
from .datasets import RECIPES, DatasetRecipe
from .gpaw_calc import make_calculator
from .runner import CalculatorFactory, label_dft
from .settings import DFTSettings
from .store import DFTStore

LABELLED, AUDIT, POOL = "labelled", "audit", "pool"
#: The work folder's lock file: one dft-generate per folder at a time.
WORK_LOCK = ".lock"


class FolderInUseError(ValueError):
    """Another ``dft-generate`` is working in the folder (a ValueError: the command line reports
    it as a refused input, without a traceback)."""


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _save_packed_atomic(path: Path, configs: ConfigSet) -> None:
    tmp = path.with_name(path.stem + ".tmp.npz")
    save_packed(tmp, configs)
    os.replace(tmp, path)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assign_roles(ids: list[str], n_labelled: int, n_audit: int, seed: int) -> pd.Series:
    """Seeded roles: ``n_labelled`` configs get DFT for train/val/test, ``n_audit`` pool
    configs get hidden DFT for the classifier audit, the rest are pool (EIP energies only).

    Returns:
        Series indexed by config id (``keys.CONFIG_ID``), values labelled/audit/pool.
    """
    if n_labelled + n_audit > len(ids):
        raise ValueError(f"{n_labelled} labelled + {n_audit} audit > {len(ids)} configs")
    order = np.random.default_rng([seed, 7]).permutation(len(ids))
    roles = np.full(len(ids), POOL, dtype=object)
    roles[order[:n_labelled]] = LABELLED
    roles[order[n_labelled : n_labelled + n_audit]] = AUDIT
    return pd.Series(roles, index=pd.Index(ids, name=keys.CONFIG_ID), name="role")


def dft_generate(
    dataset: str,
    out: str | os.PathLike,
    *,
    n_labelled: int | None = None,
    n_pool: int | None = None,
    n_audit: int | None = None,
    seed: int | None = None,
    n_workers: int = 2,
    eip_jobs: int = 1,
    label_eips: bool = True,
    progress: bool = True,
    calculator_factory: CalculatorFactory = make_calculator,
) -> dict[str, Any]:
    """Generate (or resume generating) a built-in DFT dataset in the folder ``out``.

    Args:
        dataset: ``"al-gpaw"`` or ``"agau-gpaw"`` (see :data:`eiplab.dft.datasets.RECIPES`).
        out: work folder (created); rerun with the same folder to resume.
        n_labelled, n_pool, n_audit, seed: override the recipe (small trial runs); a folder
            keeps the plan it was started with: a different plan is refused.
        n_workers: DFT worker processes (one thread each).
        eip_jobs: worker processes for the EIP labelling.
        label_eips: label every config with the system's Table 2 EIPs (needs the KIM API).
        progress: progress bars.
        calculator_factory: DFT calculator factory (GPAW; tests inject a cheap one).

    Returns:
        ``{"finished": bool, "dataset": path of the npz or None, "n_dft": done, "n_dft_total":
        wanted, "failures": {config_id: reason}}``.

    Raises:
        KeyError: unknown dataset.
        ValueError: ``out`` holds a different plan.
        FolderInUseError: another ``dft-generate`` is working in ``out`` (two would compute the
            same configs twice and append them to one store).
    """
    if dataset not in RECIPES:
        raise KeyError(f"unknown DFT dataset {dataset!r}; known: {sorted(RECIPES)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(out / WORK_LOCK), timeout=0)  # an OS lock (filelock, a torch dependency): freed if its holder dies
    try:
        lock.acquire()
    except Timeout:
        raise FolderInUseError(
            f"{out} is being generated by another dft-generate (it holds {out / WORK_LOCK}); let it "
            "finish, or stop it and run this command again: it resumes where the other one stopped"
        ) from None
    try:
        return _generate(RECIPES[dataset], out, n_labelled=n_labelled, n_pool=n_pool, n_audit=n_audit, seed=seed,
                         n_workers=n_workers, eip_jobs=eip_jobs, label_eips=label_eips, progress=progress,
                         calculator_factory=calculator_factory)
    finally:
        lock.release()


def _generate(
    r: DatasetRecipe,
    out: Path,
    *,
    n_labelled: int | None,
    n_pool: int | None,
    n_audit: int | None,
    seed: int | None,
    n_workers: int,
    eip_jobs: int,
    label_eips: bool,
    progress: bool,
    calculator_factory: CalculatorFactory,
) -> dict[str, Any]:
    """:func:`dft_generate` in ``out``, whose lock the caller holds."""
    plan = {
        "dataset": r.name,
        "system": r.system,
        "seed": r.seed if seed is None else seed,
        "n_labelled": r.n_labelled if n_labelled is None else n_labelled,
        "n_pool": r.n_pool if n_pool is None else n_pool,
        "n_audit": r.n_audit if n_audit is None else n_audit,
        "dft": r.settings.as_dict(),
    }
    plan_path = out / "plan.json"
    if plan_path.exists():
        old = json.loads(plan_path.read_text())
        if old != plan:
            raise ValueError(
                f"{out} holds a different plan ({plan_path}); use a new folder or the same "
                f"options.\n  folder: {old}\n  asked:  {plan}"
            )
    else:
        write_text_atomic(plan_path, json.dumps(plan, indent=2) + "\n")

    # 1. configurations (generated once, stored)
    cfg_path = out / "configs.npz"
    n_total = plan["n_labelled"] + plan["n_pool"]
    if cfg_path.exists():
        configs = load_packed(cfg_path, name=r.name)
    else:
        configs = r.generate(n_total, plan["seed"])
        _save_packed_atomic(cfg_path, configs)
    roles = assign_roles(configs.ids, plan["n_labelled"], plan["n_audit"], plan["seed"])

    # 2. EIP energies of every config (cached, resumable; minutes: done first so that a
    #    model that cannot load stops the run before hours of DFT)
    eip_models: list[str] = []
    eip_failures: dict[str, int] = {}
    if label_eips:
        from ..eips.labelling import label_dataset
        from ..eips.registry import models_for

        df = label_dataset(
            configs,
            [s.model_id for s in models_for(r.system)],
            cache_dir=out / "eip-cache",
            n_jobs=eip_jobs,
            progress=progress,
        )
        eip_models = list(df.columns)
        eip_failures = {m: len(bad) for m, bad in df.attrs.get("failures", {}).items() if bad}

    # 3. DFT: the labelled configs first, then the audit subset
    store = DFTStore(out / "dft.jsonl")
    results = []
    for role in (LABELLED, AUDIT):
        subset = configs.subset(roles.index[roles == role])
        if len(subset):
            results.append(
                label_dft(
                    subset,
                    r.settings,
                    store,
                    n_workers=n_workers,
                    progress=progress,
                    calculator_factory=calculator_factory,
                    desc=f"DFT {r.name} {role}",
                )
            )
    dft = pd.concat(results) if results else pd.DataFrame()
    failures = {cid: reason for part in results for cid, reason in part.attrs["failures"].items()}

    # 4. everything finished: write the dataset, its roles and its provenance (last); the audit
    #    configs' DFT is marked hidden, so every split keeps them in the pool
    for atoms in configs.subset(roles.index[roles == AUDIT]):
        atoms.info[keys.DFT_HIDDEN] = True
    final = out / f"{r.name}.npz"
    _save_packed_atomic(final, configs)
    roles_path = out / f"{r.name}.roles.csv"
    roles.to_csv(roles_path.with_name(roles_path.name + ".tmp"))
    os.replace(roles_path.with_name(roles_path.name + ".tmp"), roles_path)
    prov = _provenance(r, plan, configs, roles, dft, failures, eip_models, final)
    prov["eip_failures"] = eip_failures  # configs per EIP whose energy is NaN (the EIP failed on them)
    write_text_atomic(out / f"{r.name}.provenance.json", json.dumps(prov, indent=2) + "\n")
    return {
        "finished": True,
        "dataset": final,
        "n_dft": int(len(dft)),
        "n_dft_total": plan["n_labelled"] + plan["n_audit"],
        "failures": failures,
    }


def dft_progress(out: str | os.PathLike, dataset: str | None = None) -> tuple[pd.DataFrame, str]:
    """How far a ``dft-generate`` folder is, read only (safe beside a running generation).

    Returns:
        A table indexed by role (labelled, audit, all) with columns ``configs``, ``done``,
        ``failed``, ``cpu_hours_spent`` and ``cpu_hours_left`` (estimated: each missing config at
        the median CPU time of the finished ones of its size in atoms, else of all; NaN before
        the first), and a one-line summary.

    Args:
        out: the work folder.
        dataset: the dataset it should hold (checked against its plan), or None.

    Raises:
        FileNotFoundError: ``out`` holds no started generation (no ``plan.json``), or its configs
            are still being generated (no ``configs.npz`` yet).
        ValueError: ``out`` holds another dataset than ``dataset``.
    """
    out = Path(out)
    plan_path, cfg_path = out / "plan.json", out / "configs.npz"
    if not plan_path.exists():
        raise FileNotFoundError(f"{out}: no dft-generate run started there (no plan.json); "
                                "start one with `eiplab dft-generate --dataset NAME --out DIR`")
    plan = json.loads(plan_path.read_text())
    if dataset is not None and dataset != plan["dataset"]:
        raise ValueError(f"{out} holds {plan['dataset']!r}, not {dataset!r}")
    if not cfg_path.exists():
        raise FileNotFoundError(f"{out}: {plan['dataset']} has started but its configs are still being generated "
                                "(no configs.npz yet); no DFT has run")
    configs = load_packed(cfg_path, name=plan["dataset"])
    roles = assign_roles(configs.ids, plan["n_labelled"], plan["n_audit"], plan["seed"])
    digest = DFTSettings.from_dict(plan["dft"]).digest()
    wanted = {(a.info[keys.CONFIG_ID], config_hash(a), digest) for a in configs}  # the store's keys
    records = {key[0]: rec for key, rec in DFTStore(out / "dft.jsonl").load(repair=False).items() if key in wanted}
    size = pd.Series(configs.n_atoms(), index=pd.Index(configs.ids, name=keys.CONFIG_ID))
    spent = pd.Series({cid: rec.cpu_seconds for cid, rec in records.items()}, dtype=float)
    by_size = spent.groupby(size.reindex(spent.index)).median() if len(spent) else pd.Series(dtype=float)
    overall = float(spent.median()) if len(spent) else float("nan")
    rows = {}
    for role in (LABELLED, AUDIT):
        ids = roles.index[roles == role]
        done = [c for c in ids if c in records]
        missing = [c for c in ids if c not in records]
        left = sum(float(by_size.get(size[c], overall)) for c in missing)
        rows[role] = {"configs": len(ids), "done": len(done), "failed": sum(not records[c].ok for c in done),
                      "cpu_hours_spent": spent.reindex(done).sum() / 3600, "cpu_hours_left": left / 3600}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.loc["all"] = table.sum(min_count=1)  # NaN left stays NaN: nothing finished to time it by
    table.index.name = "role"
    total = table.loc["all"]
    left = ("nothing left" if total["done"] == total["configs"] else
            "CPU-hours left unknown until a config has finished" if np.isnan(total["cpu_hours_left"]) else
            f"about {total['cpu_hours_left']:.1f} CPU-hours left (at the median CPU time of the finished configs "
            "of each size)")
    summary = (f"{plan['dataset']} in {out}: {int(total['done'])} of {int(total['configs'])} DFT configs done "
               f"({int(total['failed'])} failed), {total['cpu_hours_spent']:.2f} CPU-hours spent, {left}")
    return table.round(3), summary


def _provenance(
    r: DatasetRecipe,
    plan: dict[str, Any],
    configs: ConfigSet,
    roles: pd.Series,
    dft: pd.DataFrame,
    failures: dict[str, str],
    eip_models: list[str],
    final: Path,
) -> dict[str, Any]:
    ok = dft["status"] == "ok" if len(dft) else pd.Series(dtype=bool)
    phases = pd.Series([a.info.get(keys.PHASE, "unknown") for a in configs])
    return {
        "name": r.name,
        "system": r.system,
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "made_by": f"eiplab dft-generate --dataset {r.name} --out DIR (eiplab.dft.cli_entry)",
        "generator": {
            "function": f"eiplab.dft.datasets.RECIPES[{r.name!r}].generate",
            "seed": plan["seed"],
            "source": configs[0].info.get(keys.SOURCE, "") if len(configs) else "",
            "n_configs": len(configs),
            "phases": {str(k): int(v) for k, v in phases.value_counts().sort_index().items()},
            "n_atoms": {
                str(k): int(v)
                for k, v in pd.Series(configs.n_atoms()).value_counts().sort_index().items()
            },
        },
        "roles": {k: int(v) for k, v in roles.value_counts().items()},
        "roles_file": f"{r.name}.roles.csv (labelled: DFT for train/val/test; audit: pool "
        "configs whose DFT is hidden from training, for the classifier audit; pool: EIP only)",
        "dft": {
            "code": "GPAW",
            "settings": r.settings.as_dict(),
            "energy": "total energy extrapolated to zero smearing (GPAW get_potential_energy), eV",
            "kpoints": "Monkhorst-Pack, ceil(2 pi |b_i| kpt_density) per reciprocal vector",
            **r.notes,
            "n_ok_labelled": int(ok[roles.reindex(dft.index) == LABELLED].sum()) if len(dft) else 0,
            "n_ok_audit": int(ok[roles.reindex(dft.index) == AUDIT].sum()) if len(dft) else 0,
            "failures": failures,
            "cpu_hours": round(float(dft["cpu_seconds"].sum()) / 3600, 3) if len(dft) else 0.0,
        },
        "eip_models": eip_models,
        "code": {
            "eiplab": __version__,
            "gpaw": _version("gpaw"),
            "gpaw-data": _version("gpaw-data"),
            "ase": _version("ase"),
            "numpy": _version("numpy"),
            "kimpy": _version("kimpy"),
        },
        "sha256_npz": _sha256(final),
    }


def ship_dataset(work: str | os.PathLike, dest: str | os.PathLike | None = None) -> dict[str, Path]:
    """Copy a finished ``dft-generate`` folder's dataset into the package's built-in data.

    Checks that ``work`` holds the finished files (plan, dataset, roles, provenance), that every
    config of the roles file is in the dataset with its role (labelled: DFT not hidden; audit:
    DFT hidden), then writes ``{name}.npz`` and ``{name}.provenance.json`` (with the npz's
    sha256 and the plan) into ``dest`` (default: ``eiplab/data/builtin``). Registering the name
    in :data:`eiplab.data.builtin.BUILTIN` (system, split scheme, tau) is the one code change left.

    Returns:
        ``{"dataset": npz path, "provenance": json path}`` in ``dest``.

    Raises:
        FileNotFoundError: the generation is not finished (names the missing file and the command).
        ValueError: the files disagree (a role or a hidden flag does not match).
    """
    from ..data.builtin import DATA_LICENCE, builtin_dir

    work = Path(work)
    plan_path = work / "plan.json"
    if not plan_path.exists():
        raise FileNotFoundError(f"{work} is not a dft-generate folder (no plan.json): pass the --out folder of "
                                "`eiplab dft-generate`")
    plan = json.loads(plan_path.read_text())
    name = plan["dataset"]
    if dest is None and name in RECIPES:  # the package ships only the recipe's own plan, never a trial run
        r = RECIPES[name]
        wanted = {"seed": r.seed, "n_labelled": r.n_labelled, "n_pool": r.n_pool, "n_audit": r.n_audit,
                  "dft": r.settings.as_dict()}
        differs = {k: plan.get(k) for k, v in wanted.items() if plan.get(k) != v}
        if differs:
            raise ValueError(f"{plan_path}: a trial plan ({differs}) differs from the {name} recipe; the package ships "
                             "the recipe's dataset only (pass dest= / --dest to copy a trial elsewhere)")
    files = {kind: work / f"{name}.{kind}" for kind in ("npz", "roles.csv", "provenance.json")}
    for path in files.values():
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: the generation is not finished; resume it with "
                                    f"`eiplab dft-generate --dataset {name} --out {work}`")
    prov = json.loads(files["provenance.json"].read_text())
    if prov.get("sha256_npz") not in (None, _sha256(files["npz"])):
        raise ValueError(f"{files['npz']} does not match the sha256 in {files['provenance.json']}: it changed after "
                         f"dft-generate finished; rerun `eiplab dft-generate --dataset {name} --out {work}`")
    configs = load_packed(files["npz"], name=name)
    roles = pd.read_csv(files["roles.csv"], index_col=0)["role"]
    if sorted(roles.index) != sorted(configs.ids):
        raise ValueError(f"{files['roles.csv']} and {files['npz']} list different configs; rerun "
                         f"`eiplab dft-generate --dataset {name} --out {work}` to rewrite both")
    hidden = pd.Series(configs.dft_hidden(), index=configs.ids)
    wrong = hidden.index[hidden != (roles.reindex(hidden.index) == AUDIT)]
    if len(wrong):
        raise ValueError(f"{files['npz']}: config {wrong[0]!r} (and {len(wrong) - 1} more) has a DFT-hidden flag "
                         f"that disagrees with its role in {files['roles.csv']}; rerun dft-generate in {work}")
    dest = Path(dest) if dest is not None else builtin_dir()
    dest.mkdir(parents=True, exist_ok=True)
    if not (dest / DATA_LICENCE).exists():  # the licence the provenance names travels with the data
        shutil.copyfile(builtin_dir() / DATA_LICENCE, dest / DATA_LICENCE)
    npz = dest / f"{name}.npz"
    tmp = npz.with_name(npz.stem + ".tmp.npz")
    shutil.copyfile(files["npz"], tmp)  # the checked file itself, not a re-packed copy
    os.replace(tmp, npz)
    prov.update({"plan": plan, "sha256_npz": _sha256(npz), "licence": f"MIT, eiplab's own data ({DATA_LICENCE})",
                 "shipped_by": f"eiplab dft-ship --work DIR (eiplab.dft.cli_entry.ship_dataset) from {name}'s "
                               "dft-generate folder"})
    provenance_path = dest / f"{name}.provenance.json"
    write_text_atomic(provenance_path, json.dumps(prov, indent=2) + "\n")
    return {"dataset": npz, "provenance": provenance_path}
