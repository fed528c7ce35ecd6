"""Train what notebooks 04 and 05 analyse, without the LA runs: the LA classifiers (one per split)
and the MP-pretrained backbone of one network, stored in a grid folder (resumable).

Usage: python scripts/prepare_analysis.py --profile cpu --model schnet --grid-dir .cache/grid/si-pyxtal-cpu
"""

from __future__ import annotations

import argparse

import torch

from eiplab import Study
from eiplab.workflows import pretrained_backbone


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--dataset", default="si-pyxtal")
    ap.add_argument("--model", default="schnet")
    ap.add_argument("--grid-dir", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seeds", type=int, nargs="*", default=None,
                    help="splits whose classifiers to train (default: the profile's); the backbone is always "
                         "pretrained on the pool of the profile's first split")
    ap.add_argument("--no-pretrain", action="store_true", help="classifiers only")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    study = Study(args.dataset, args.profile, models=[args.model], grid_dir=args.grid_dir, progress=True)
    wanted = study.seeds if args.seeds is None else args.seeds
    unknown = sorted(set(wanted) - set(study.seeds))
    if unknown:
        raise SystemExit(f"--seeds {unknown}: not splits of profile {args.profile!r} (its seeds: {list(study.seeds)})")
    for seed in wanted:
        sel = study.selection(args.model, seed)
        print(f"[prepare] {args.model} split {seed}: {int(sel['selected'].sum())} of {len(sel)} pool configs selected")
    if not args.no_pretrain:
        pretrained_backbone(study.store, args.model, study.experiment(study.seeds[0]), study.grid)
        print(f"[prepare] {args.model} pretrained backbone in {study.grid_dir}/pretrain/{args.model}/all")


if __name__ == "__main__":
    main()
