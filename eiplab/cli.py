"""The ``eiplab`` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


def _cmd_reproduce(args) -> int:
    from .reproduce import run_notebooks

    run_notebooks(args.dataset, args.profile, out=args.out, device=args.device, only=args.only, force=args.force,
                  workers=args.workers, scheduler=args.scheduler,
                  cell_timeout="profile" if args.cell_timeout is None else (args.cell_timeout or None))
    return 0


def _cmd_grid(args) -> int:
    import torch

    from .analysis import results as res
    from .study import Study

    if args.threads:
        torch.set_num_threads(args.threads)
    study = Study(args.dataset, args.profile, device=args.device, models=args.models, eips=args.eips,
                  alphas=args.alphas, tau=_tau(args.tau), grid_dir=args.grid_dir, seeds=args.seeds,
                  workers=args.workers, scheduler=args.scheduler, progress=args.progress, delta_eip=args.delta_eip,
                  selector=args.selector, force_weight=args.force_weight, eip_forces=args.eip_forces,
                  compile=args.compile)
    options = {"ablations": args.ablations, "confidence": args.confidence}
    if args.plan:
        return _print_plan(study.plan(args.strategies, **options))
    specs = study.specs(args.strategies, **options)
    print(f"[grid] {len(specs)} runs on {study.configs.name} ({len(study.configs)} configs), profile {args.profile}, "
          f"runs in {study.grid_dir}")
    study.run(args.strategies, threads=args.threads or 1, progress=args.progress, **options)
    results = study.results()
    write_tables(results, args.tables)
    print(res.table3(results).to_string())
    return 0


def _tau(text: str | None) -> float | str | None:
    """``--tau``: a number (eV/atom), "auto", or None (the dataset's default)."""
    if text is None or text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise SystemExit(f"--tau takes a number in eV/atom or 'auto', not {text!r}") from None


def _print_plan(plan) -> int:
    """``eiplab grid --plan``: what the same command would train, from the grid folder (no training,
    no EIP labelling: Table 7 subsets are known once a grid call has ranked each split's EIPs)."""
    import pandas as pd

    from .workflows import plan_summary

    shown = plan.assign(estimate_min=(plan["estimate_s"] / 60).round(1)).drop(columns=["estimate_s", "name", "needs"])
    with pd.option_context("display.max_rows", None, "display.width", 200, "display.max_colwidth", 60):
        print(shown.to_string(index=False))
    print(plan_summary(plan))
    return 0


def write_tables(results: pd.DataFrame, out: str | Path | None) -> list[str]:
    """Write runs + every table the results support (3; 4, 5, 7 when their runs exist; the alpha
    sensitivity tables and figure when LA runs chose alpha from several values)."""
    from .analysis import alpha
    from .analysis import results as res
    from .analysis.tables import save_figure, save_table
    from .workflows import alphas_tried

    runs = results.copy()
    if "alpha_table" in runs:  # the alpha grid each LA run chose from (profiles and --alphas differ)
        runs["alpha_grid"] = [" ".join(f"{a:g}" for a in alphas_tried({"alpha_table": t if isinstance(t, list) else []}))
                              for t in runs["alpha_table"]]
    save_table(runs.drop(columns=["alpha_table", "eips"], errors="ignore"), out, "runs")
    written = ["runs", "table3"]
    save_table(res.table3(results), out, "table3")
    tags = set(results["tag"])
    if len(res.la_selectors(results)) > 1:  # Tables 4, 5 and 7 hold one selector's runs
        tags = set()
        print(f"[tables] LA runs of several selectors {res.la_selectors(results)}: Tables 4, 5 and 7 are not "
              "written (make them from one selector's grids); Table 3 and the alpha tables keep them apart")
    if "la-notukey" in tags:
        save_table(res.table4(results), out, "table4")
        written.append("table4")
    if any("{" in t for t in tags):
        save_table(res.table5(results), out, "table5")
        written.append("table5")
    if any("[" in t for t in tags):
        save_table(res.table7(results), out, "table7")
        written.append("table7")
    if not alpha.alpha_runs(results).empty:  # runs that chose alpha from several values
        save_table(alpha.alpha_sensitivity(results), out, "alpha_sensitivity")
        save_table(alpha.alpha_choice(results), out, "alpha_choice")
        save_figure(alpha.alpha_figure(results), out, "alpha_curves")
        written += ["alpha_sensitivity", "alpha_choice"]
    return written


def _cmd_tables(args) -> int:
    import pandas as pd

    from .analysis import results as res
    from .workflows import RunStore, load_records

    results = pd.concat([load_records(f) for f in args.sources], ignore_index=True)
    if args.models:
        results = results[results["model"].isin(args.models)]
    if results.empty:
        raise SystemExit(f"no runs of {args.models} in {args.sources}")
    if args.tau_sensitivity:  # grids that differ only in tau: one table of LA against tau
        from .analysis.tables import save_table

        table = res.tau_sensitivity(results)
        save_table(table, args.out, "tau_sensitivity")
        print(table.to_string())
        return 0
    written = write_tables(results, args.out)
    if args.export_records:
        for src in args.sources:
            RunStore(src).export(args.export_records, args.models)
    print(f"[tables] {', '.join(written)} written to {args.out} from {len(results)} runs")
    print(res.table3(results).to_string())
    return 0


def _cmd_dft_generate(args) -> int:
    from .dft.cli_entry import dft_generate, dft_progress

    if args.plan:  # read only: safe beside a running generation
        table, summary = dft_progress(args.out, args.dataset)
        print(table.to_string())
        print(summary)
        return 0
    report = dft_generate(args.dataset, args.out, n_workers=args.workers, eip_jobs=args.eip_jobs)
    print(f"[dft-generate] {report}")
    return 0 if report.get("finished") else 1


def _cmd_dft_ship(args) -> int:
    from .dft.cli_entry import ship_dataset

    written = ship_dataset(args.work, args.dest)
    print(f"[dft-ship] wrote {written['dataset']} and {written['provenance']}; register the name in "
          "eiplab.data.builtin.BUILTIN (system, split scheme, tau) to load it")
    return 0


def _cmd_datasets(args) -> int:
    import pandas as pd

    from .data import builtin_table

    with pd.option_context("display.width", 200, "display.max_colwidth", 70):
        print(builtin_table().drop(columns=["description"]).to_string())
    return 0


def _cmd_label(args) -> int:
    from .data import load_dataset
    from .eips import failures_table, models_for_dataset
    from .strategies.experiment import label_with_eips

    configs = load_dataset(args.dataset, limit=args.limit)
    models = args.models or [m.model_id for m in models_for_dataset(configs)]
    table = label_with_eips(configs, models, n_jobs=args.jobs, cache=args.cache, forces=args.forces)
    print(failures_table(table).to_string())
    print(table.describe().T.to_string())
    return 0


def _cmd_doctor(args) -> int:
    from .doctor import report, run_checks

    return report(run_checks(args.kim_collection))


def _cmd_models(args) -> int:
    from .eips import list_installed, models_for

    if args.system:
        for m in models_for(args.system):
            print(f"{m.name:28s} {m.model_id}")
    else:
        print("\n".join(list_installed()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``eiplab`` command line: one sub-command per job (reproduce, grid, tables, ...)."""
    p = argparse.ArgumentParser(prog="eiplab", description="EIP knowledge for neural-network potentials")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("reproduce", help="run all notebooks headless (papermill), tables under --out")
    r.add_argument("--profile", default="demo", help="quick | demo | cpu | paper")
    r.add_argument("--dataset", default="si-pyxtal")
    r.add_argument("--out", default="results")
    r.add_argument("--device", default="auto", help="auto | cpu | cuda")
    r.add_argument("--only", nargs="*", help="run only notebooks whose name contains one of these")
    r.add_argument("--force", action="store_true", help="re-run notebooks that are up to date")
    r.add_argument("--workers", type=int, default=None,
                   help="local Dask workers training fits side by side in notebooks 03 and 04 (default: the profile's "
                        "n_jobs)")
    r.add_argument("--scheduler", default=None, help="an existing Dask cluster for those fits (address or scheduler file)")
    r.add_argument("--cell-timeout", type=float, default=None,
                   help="seconds a cell may run before its notebook is run once more (default: the profile's, "
                        "eiplab.reproduce.CELL_TIMEOUT_S; 0: no limit)")
    r.set_defaults(func=_cmd_reproduce)

    g = sub.add_parser("grid", help="run the strategy grid (Tables 3/4/7) headless, resumable; write tables")
    g.add_argument("--profile", default="cpu", help="quick | demo | cpu | paper")
    g.add_argument("--dataset", default="si-pyxtal")
    g.add_argument("--models", nargs="*", help="default: the profile's models")
    g.add_argument("--strategies", nargs="*", default=["baseline", "la", "mp", "mp+la"],
                   help="baseline la mp mp+la (the paper's), delta delta+mp (delta-learning on an EIP)")
    g.add_argument("--selector", default="classifier", choices=["classifier", "error-regression"],
                   help="LA's EIP picker: the paper's K+1-class classifier or a regression of each EIP's error")
    g.add_argument("--delta-eip", default=None,
                   help="the EIP delta runs subtract (KIM id); default: the best on each split's TRAIN configs")
    g.add_argument("--force-weight", type=float, default=0.0,
                   help="> 0: train every DFT fit on forces too (loss = energy MSE + w x force MSE; graph networks)")
    g.add_argument("--eip-forces", action="store_true",
                   help="with --force-weight: MP pretrains on the EIPs' forces and LA uses the selected EIP's forces")
    g.add_argument("--ablations", action="store_true", help="also Table 4 (Tukey) and Table 7 (EIP subsets)")
    g.add_argument("--confidence", action="store_true",
                   help="also Table 5: LA retrained on DFT + each confidence group (low/medium/high)")
    g.add_argument("--seeds", nargs="*", type=int, help="split seeds (default: the profile's)")
    g.add_argument("--eips", nargs="*", help="KIM model ids (default: Table 2 EIPs of the dataset)")
    g.add_argument("--alphas", nargs="*", type=float,
                   help="LA alpha grid (default: the profile's); finished LA runs chosen from another grid are redone, "
                        "reusing each alpha's finished fit")
    g.add_argument("--tau", default=None,
                   help="LA 'none' threshold: eV/atom or 'auto' (0.75 quantile of each split's training best-EIP "
                        "errors); default: the dataset's (0.1 for si-pyxtal, auto for the mlearn sets)")
    g.add_argument("--grid-dir", default=".cache/grid", help="where runs and checkpoints are stored")
    g.add_argument("--tables", default="results/grid", help="where the CSV/HTML tables go")
    g.add_argument("--device", default="auto")
    g.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    g.add_argument("--compile", action="store_true",
                   help="train through torch.compile (~1.4x faster SchNet on CPU after ~20-30 s of compilation per "
                        "worker; energy training only; finished fits stay valid either way)")
    g.add_argument("--progress", action="store_true", help="show a progress bar of the fits")
    g.add_argument("--workers", type=int, default=1,
                   help="local Dask worker processes training fits side by side (classifiers, alphas, splits, "
                        "groups); each fit uses --threads torch threads (default 1): one worker per core on a CPU "
                        "machine")
    g.add_argument("--scheduler", default=None,
                   help="an existing Dask cluster instead: its scheduler address (tcp://host:8786) or scheduler "
                        "file; its workers must see --grid-dir (default: $EIPLAB_SCHEDULER)")
    g.add_argument("--plan", action="store_true",
                   help="train nothing: list each fit the command would train (done / resumes / to do) with a time "
                        "estimate from the speed this grid folder recorded (kinds it never timed: a probe of a few "
                        "training steps now)")
    g.set_defaults(func=_cmd_grid)

    t = sub.add_parser("tables", help="rebuild Tables 3/4/5/7 and the alpha sensitivity from run records "
                                         "(grid folders or exported records)")
    t.add_argument("sources", nargs="+", help="grid folders (with runs/) or folders of exported records")
    t.add_argument("--out", required=True, help="where the CSV/HTML tables go")
    t.add_argument("--models", nargs="*", help="only these networks")
    t.add_argument("--export-records", metavar="DIR", help="also copy the runs' records into DIR (for reports/)")
    t.add_argument("--tau-sensitivity", action="store_true",
                   help="the sources are grids that differ only in --tau: write tau_sensitivity (LA against tau) only")
    t.set_defaults(func=_cmd_tables)

    dg = sub.add_parser("dft-generate", help="generate configs + GPAW DFT + EIP energies for al-gpaw / agau-gpaw "
                        "(resumable: re-run the same command after an interrupt)")
    dg.add_argument("--dataset", required=True, choices=["al-gpaw", "agau-gpaw"])
    dg.add_argument("--out", required=True, help="work folder (finished files are written there last)")
    dg.add_argument("--workers", type=int, default=2, help="DFT worker processes (one thread each)")
    dg.add_argument("--eip-jobs", type=int, default=1, help="processes for the EIP labelling")
    dg.add_argument("--plan", action="store_true",
                    help="compute nothing: how far the folder is (done, failed, CPU-hours spent and left)")
    dg.set_defaults(func=_cmd_dft_generate)

    ds = sub.add_parser("dft-ship", help="copy a finished dft-generate folder's dataset (audit configs' DFT hidden) "
                        "into the package's built-in data, with its provenance")
    ds.add_argument("--work", required=True, help="the dft-generate work folder (finished)")
    ds.add_argument("--dest", default=None, help="target folder (default: eiplab/data/builtin)")
    ds.set_defaults(func=_cmd_dft_ship)

    d = sub.add_parser("datasets", help="list the built-in datasets")
    d.set_defaults(func=_cmd_datasets)

    m = sub.add_parser("models", help="list installed KIM models, or the Table 2 EIPs of --system")
    m.add_argument("--system", help="Si | Al | AgAu")
    m.set_defaults(func=_cmd_models)

    lab = sub.add_parser("label", help="compute (and cache) EIP energies for a dataset")
    lab.add_argument("--dataset", default="si-pyxtal")
    lab.add_argument("--models", nargs="*")
    lab.add_argument("--limit", type=int)
    lab.add_argument("--jobs", type=int, default=2)
    lab.add_argument("--forces", action="store_true", help="also compute (and cache) each EIP's forces")
    lab.add_argument("--cache", default=None, help="cache folder (default: ~/.cache/eiplab or $EIPLAB_CACHE)")
    lab.set_defaults(func=_cmd_label)

    doc = sub.add_parser("doctor", help="check the installation (KIM API, models, kernel, front end, torch, GPAW, "
                                        "Dask, disk); exit 1 if something required is missing")
    doc.add_argument("--kim-collection", metavar="DIR", default=None,
                     help="read installed KIM models from the model folders in DIR instead of the KIM API")
    doc.set_defaults(func=_cmd_doctor)
    return p


#: Errors that mean "the input or the settings are wrong" (their message says what to do): the
#: command prints the message, not a traceback, unless EIPLAB_TRACEBACK is set.
USER_ERRORS = (ValueError, KeyError, FileNotFoundError, NotImplementedError)
TRACEBACK_ENV = "EIPLAB_TRACEBACK"


def main(argv: list[str] | None = None) -> int:
    """Run ``eiplab`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit status (2 when
    the input or settings are refused: the message names what and why)."""
    import os

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except USER_ERRORS as err:
        if os.environ.get(TRACEBACK_ENV):
            raise
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"eiplab {args.command}: error ({type(err).__name__}): {message}\n"
              f"(set {TRACEBACK_ENV}=1 for the traceback)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
