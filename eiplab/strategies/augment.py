"""Label augmentation, step 3: train on DFT + EIP-labelled pool configs with a Tukey term.

L = MSE(DFT configs in the batch, eV^2) + alpha * (N_dft / N_aug) * Tukey(EIP configs in the batch).
The Tukey residual is per atom ((E_pred - E_label) / N, eV/atom; decision: so that large cells do
not dominate the robust scale); its scale s is 1.4826 * median |residual| over the EIP configs of
the batch. ``tukey=False`` replaces the Tukey term by a plain MSE on the EIP labels (Table 4).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import torch

from .. import keys
from ..graphs.build import N_ATOMS, Y
from ..training import FitResult, TrainSettings, fit_energy_model, model_inputs
from .experiment import Experiment
from .tukey import TUKEY_C, tukey_biweight

if TYPE_CHECKING:
    from torch_geometric.data import Data

    from ..models import EnergyModel, ModelConfig

IS_EIP = "is_eip"  # bool [1] per graph: the label is an EIP energy (not DFT)
ALPHA_GRID = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0)


@dataclass(frozen=True)
class AugmentedLoss:
    """The LA training loss (a pure function of prediction and batch).

    Attributes:
        weight: the effective weight alpha * N_dft / N_aug of the EIP term.
        tukey: Tukey biweight (True) or plain MSE on per-atom residuals (False).
        c: Tukey constant; eps: floor of the robust scale (eV/atom).
    """

    weight: float
    tukey: bool = True
    c: float = TUKEY_C
    eps: float = 1e-3

    def __call__(self, prediction: torch.Tensor, batch) -> torch.Tensor:
        pred = prediction.reshape(-1)
        target = batch[Y].to(pred.dtype).reshape(-1)
        is_eip = batch[IS_EIP].reshape(-1).bool()
        dft = ~is_eip
        loss = ((pred[dft] - target[dft]) ** 2).mean() if dft.any() else pred.sum() * 0.0
        if is_eip.any():
            residual = (pred[is_eip] - target[is_eip]) / batch[N_ATOMS].reshape(-1)[is_eip].to(pred.dtype)
            term = tukey_biweight(residual, self.c, self.eps) if self.tukey else (residual**2).mean()
            loss = loss + self.weight * term
        return loss


def augmented_graphs(exp: Experiment, selection: pd.DataFrame, config: ModelConfig, *,
                     group: Sequence[str] | None = None) -> tuple[list[Data], list[Data]]:
    """Training graphs: DFT train configs (y = E_dft) + selected pool configs (y = EIP label).

    ``group``: restrict the EIP-labelled configs to these ids (confidence groups, Table 5).
    """
    train = model_inputs(exp.parts[keys.TRAIN], config, progress=False)
    for g in train:
        g[IS_EIP] = torch.tensor([False])
    chosen = selection[selection["selected"]]
    if group is not None:
        chosen = chosen.loc[list(group)]
    pool = exp.parts[keys.POOL].subset(chosen.index)
    aug = model_inputs(pool, config, target=None, progress=False)
    for g, e in zip(aug, chosen["label_energy"].to_numpy(), strict=True):
        g[Y] = torch.tensor([float(e)], dtype=torch.get_default_dtype())
        g[IS_EIP] = torch.tensor([True])
    return train, aug


def fit_augmented(
    exp: Experiment,
    selection: pd.DataFrame,
    model: EnergyModel,
    settings: TrainSettings,
    *,
    alpha: float,
    tukey: bool = True,
    group: Sequence[str] | None = None,
    out_dir: str | Path | None = None,
    run_info: dict | None = None,
) -> tuple[FitResult, dict]:
    """Train on DFT + EIP-labelled pool configs; returns the fit and {alpha, weight, n_dft, n_aug}.

    ``model``: a ModelConfig (fresh network) or a pretrained EnergyModel with a 1-output head
    (MP+LA).
    """
    config = model if not hasattr(model, "config") else model.config
    train, aug = augmented_graphs(exp, selection, config, group=group)
    n_dft, n_aug = len(train), len(aug)
    weight = alpha * n_dft / n_aug if n_aug else 0.0
    info = {"alpha": alpha, "effective_weight": weight, "n_dft": n_dft, "n_aug": n_aug, "tukey": tukey}
    val = model_inputs(exp.parts[keys.VAL], config, progress=False)
    test = model_inputs(exp.parts[keys.TEST], config, progress=False)
    for g in val + test:
        g[IS_EIP] = torch.tensor([False])
    fit = fit_energy_model(
        train + aug, val, test, model=model, settings=settings, out_dir=out_dir,
        loss_fn=AugmentedLoss(weight, tukey=tukey), run_info={**info, **(run_info or {})},
        baseline_graphs=train,
    )
    return fit, info


def alpha_table(rows: Sequence[dict]) -> pd.DataFrame:
    """One row per alpha's fit (``alpha``, ``val_mae_config`` in eV, test metrics, ...), indexed by
    alpha, with ``chosen`` True for the alpha of the best VALIDATION config-level MAE (the first
    such on ties). Test metrics are kept but never used for the choice."""
    if not rows:
        raise ValueError("no alpha fits to choose from")
    table = pd.DataFrame(list(rows)).set_index("alpha")
    table["chosen"] = table.index == table["val_" + keys.MAE_CONFIG].idxmin()
    return table
