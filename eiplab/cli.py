"""The ``eiplab`` command line."""

from __future__ import annotations

import argparse
import sys


def _cmd_reproduce(args) -> int:
    from .reproduce import run_notebooks

    run_notebooks(args.dataset, args.profile, out=args.out, device=args.device, only=args.only, force=args.force)
    return 0


def _cmd_datasets(args) -> int:
    from .data import BUILTIN, load_dataset

    for name, spec in BUILTIN.items():
        configs = load_dataset(name, max_energy_per_atom=None)
        print(f"{name:12s} {len(configs):6d} configs  system {spec.system:5s} {spec.description}")
    return 0


def _cmd_label(args) -> int:
    from .data import load_dataset
    from .eips import label_dataset, models_for

    configs = load_dataset(args.dataset, limit=args.limit)
    models = args.models or [m.model_id for m in models_for(args.system)]
    table = label_dataset(configs, models, cache_dir=args.cache, n_jobs=args.jobs)
    print(table.describe().T.to_string())
    return 0


def _cmd_models(args) -> int:
    from .eips import list_installed, models_for

    if args.system:
        for m in models_for(args.system):
            print(f"{m.name:28s} {m.model_id}")
    else:
        print("\n".join(list_installed()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="eiplab", description="EIP knowledge for neural-network potentials")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("reproduce", help="run all notebooks headless (papermill), tables under --out")
    r.add_argument("--profile", default="demo", help="quick | demo | cpu | paper")
    r.add_argument("--dataset", default="si-pyxtal")
    r.add_argument("--out", default="results")
    r.add_argument("--device", default="auto", help="auto | cpu | cuda")
    r.add_argument("--only", nargs="*", help="run only notebooks whose name contains one of these")
    r.add_argument("--force", action="store_true", help="re-run notebooks that are up to date")
    r.set_defaults(func=_cmd_reproduce)

    d = sub.add_parser("datasets", help="list the built-in datasets")
    d.set_defaults(func=_cmd_datasets)

    m = sub.add_parser("models", help="list installed KIM models, or the Table 2 EIPs of --system")
    m.add_argument("--system", help="Si | Al | AgAu")
    m.set_defaults(func=_cmd_models)

    lab = sub.add_parser("label", help="compute (and cache) EIP energies for a dataset")
    lab.add_argument("--dataset", default="si-pyxtal")
    lab.add_argument("--system", default="Si")
    lab.add_argument("--models", nargs="*")
    lab.add_argument("--limit", type=int)
    lab.add_argument("--jobs", type=int, default=2)
    lab.add_argument("--cache", default=None, help="cache folder (default: ~/.cache/eiplab or $EIPLAB_CACHE)")
    lab.set_defaults(func=_cmd_label)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
