"""Train what notebooks 04 and 05 analyse, without the LA runs: the LA classifiers (one per split)
and the MP-pretrained backbone of one network, stored in a grid folder (resumable).

Usage: python scripts/prepare_analysis.py --profile cpu --model schnet --grid-dir .cache/grid/si-pyxtal-cpu
"""

from __future__ import annotations

import argparse

import torch

from eiplab.data import dataset_splits, load_dataset
from eiplab.eips import models_for_dataset
from eiplab.profiles import get_profile
from eiplab.strategies import prepare_experiment
from eiplab.workflows import grid_from_profile, pool_selection, pretrained_backbone


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
    settings = get_profile(args.profile)
    configs = load_dataset(args.dataset, limit=settings.limit)
    splits = dataset_splits(configs, seeds=settings.seeds)
    eip_ids = [m.model_id for m in models_for_dataset(configs)]
    grid = grid_from_profile(args.profile, configs, models=[args.model], progress=True)
    wanted = settings.seeds if args.seeds is None else args.seeds
    unknown = sorted(set(wanted) - set(settings.seeds))
    if unknown:
        raise SystemExit(f"--seeds {unknown}: not splits of profile {args.profile!r} (its seeds: {list(settings.seeds)})")
    experiments = {}
    for seed, split in zip(settings.seeds, splits, strict=True):
        if seed not in wanted and (args.no_pretrain or seed != settings.seeds[0]):
            continue
        experiments[seed] = prepare_experiment(configs, split, eip_ids, n_jobs=settings.n_jobs, progress=False)
    for seed in wanted:
        sel = pool_selection(args.grid_dir, args.model, seed, experiments[seed], grid)
        print(f"[prepare] {args.model} split {seed}: {int(sel['selected'].sum())} of {len(sel)} pool configs selected")
    if not args.no_pretrain:
        pretrained_backbone(args.grid_dir, args.model, experiments[settings.seeds[0]], grid)
        print(f"[prepare] {args.model} pretrained backbone in {args.grid_dir}/pretrain/{args.model}/all")

if __name__ == "__main__":
    main()
