"""How much the alignment's weighting matters: per-atom (eiplab's default) vs total residuals.

For every EIP of a dataset and every split, fits the per-species offsets on the split's TRAIN
configs both ways (``SpeciesAligner(weighting="per-atom" | "total")``) and writes the offsets
and Table 2 (test MAE, mean (sample std) over the splits) under each, plus their differences.

Usage: python scripts/compare_alignment.py --dataset si-pyxtal --out reports/alignment-weighting
"""

from __future__ import annotations

import argparse

import pandas as pd

from eiplab import keys
from eiplab.analysis.tables import save_table
from eiplab.data import dataset_splits, load_dataset
from eiplab.eips import eip_benchmark, models_for_dataset, summarize, table2
from eiplab.eips.registry import spec_for
from eiplab.strategies.experiment import label_with_eips


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="si-pyxtal")
    ap.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    ap.add_argument("--out", required=True)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    configs = load_dataset(args.dataset)
    splits = dataset_splits(configs, seeds=tuple(args.seeds))
    model_ids = [m.model_id for m in models_for_dataset(configs)]
    energies = label_with_eips(configs, model_ids, n_jobs=args.jobs)
    tidy = {w: eip_benchmark(configs, splits, model_ids, align=["species"], energies_eip=energies, weighting=w)
            for w in ("per-atom", "total")}
    offsets = []
    for weighting, t in tidy.items():
        for split, by_align in t.attrs["offsets"].items():
            for model, per_species in by_align["species"].items():
                offsets += [{"weighting": weighting, "split": split, "EIP": spec_for(model).name, "species": s,
                             "offset_eV_per_atom": v} for s, v in per_species.items()]
    offsets = pd.DataFrame(offsets).pivot_table(index=["EIP", "species", "split"], columns="weighting",
                                                values="offset_eV_per_atom")
    offsets["total - per-atom"] = offsets["total"] - offsets["per-atom"]
    save_table(offsets, args.out, "offsets")
    summaries = {w: summarize(t).set_index("name") for w, t in tidy.items()}
    change = pd.DataFrame({
        f"{metric} per-atom": summaries["per-atom"][f"{metric}_mean"] for metric in (keys.MAE_CONFIG, keys.MAE_ATOM)
    })
    for metric in (keys.MAE_CONFIG, keys.MAE_ATOM):
        change[f"{metric} total"] = summaries["total"][f"{metric}_mean"]
        change[f"{metric} change"] = change[f"{metric} total"] / change[f"{metric} per-atom"] - 1
    save_table(change, args.out, "table2_change")
    for weighting, t in tidy.items():
        save_table(table2(t, align="species"), args.out, f"table2_{weighting}")
        print(f"weighting = {weighting}")
        print(table2(t, align="species").to_string())
    print(offsets.groupby(level=["EIP", "species"]).mean().round(4).to_string())
    print(change.round(4).to_string())


if __name__ == "__main__":
    main()
