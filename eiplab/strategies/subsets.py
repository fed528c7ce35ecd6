"""EIP subsets for the Table 7 ablation: all, best one, worst one, best + worst.

EIPs are ranked by their atom-level MAE (aligned) on the split's TRAINING configs -- never on
test data (the paper ranks by its Table 2; we keep the test set out of every choice).
"""

from __future__ import annotations

import numpy as np

from .. import keys
from .experiment import Experiment

SUBSETS = ("all", "best", "worst", "best+worst")


def rank_eips(exp: Experiment) -> list[str]:
    """EIP ids from most to least accurate on TRAIN (aligned atom-level MAE, NaN ignored)."""
    train = exp.parts[keys.TRAIN]
    err = np.abs(exp.aligned_for(keys.TRAIN).to_numpy() - train.energies_dft()[:, None]) / train.n_atoms()[:, None]
    mae = np.nanmean(np.where(np.isfinite(err), err, np.nan), axis=0)
    order = np.argsort(np.where(np.isfinite(mae), mae, np.inf), kind="stable")
    return [exp.model_ids[i] for i in order]


def subset_of_ranking(ranked: list[str], subset: str) -> list[str]:
    """The EIP ids of a named subset, from EIP ids ranked best first."""
    if subset not in SUBSETS:
        raise ValueError(f"unknown EIP subset {subset!r}; choose from {SUBSETS}")
    return {"all": list(ranked), "best": ranked[:1], "worst": ranked[-1:], "best+worst": [ranked[0], ranked[-1]]}[subset]


def eip_subset(exp: Experiment, subset: str) -> list[str]:
    """The EIP ids of a named subset ("all" keeps the experiment's order)."""
    if subset == "all":
        return list(exp.model_ids)
    return subset_of_ranking(rank_eips(exp), subset)


def restrict(exp: Experiment, model_ids: list[str]) -> Experiment:
    """The same experiment with only ``model_ids`` as EIPs."""
    from dataclasses import replace

    return replace(exp, model_ids=list(model_ids), aligned=exp.aligned[list(model_ids)])
