"""Each EIP's forces against DFT on a dataset's pool (split 0's), into a CSV.

    python scripts/eip_force_errors.py --dataset si-pyxtal --out reports/si-pyxtal-eip-forces/force_errors.csv

The pool's EIP forces come from the labelling cache (computed first if missing: minutes); the
pool's DFT forces are hidden from training but known for si-pyxtal, so the comparison needs no
training. Columns: see :func:`eiplab.eips.force_errors`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from eiplab import Study, keys
from eiplab.eips import force_errors
from eiplab.strategies.experiment import label_with_eips


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="si-pyxtal")
    parser.add_argument("--out", required=True, help="CSV file")
    args = parser.parse_args()
    study = Study(args.dataset, "cpu", models=["schnet"], device="cpu")
    pool = study.experiment(0).parts[keys.POOL]
    label_with_eips(pool, study.eip_ids, forces=True, progress=True)
    table = force_errors(pool, study.eip_ids)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    print(table.round(4).to_string(index=False))


if __name__ == "__main__":
    main()
