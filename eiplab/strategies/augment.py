"""Label augmentation, step 3: train on DFT + EIP-labelled pool configs with a Tukey term.

L = MSE(DFT configs in the batch, eV^2) + alpha * (N_dft / N_aug) * Tukey(EIP configs in the batch).
The Tukey residual is per atom ((E_pred - E_label) / N, eV/atom; decision: so that large cells do
not dominate the robust scale); its scale s is 1.4826 * median |residual| over the EIP configs of
the batch. ``tukey=False`` replaces the Tukey term by a plain MSE on the EIP labels (Table 4).

Forces (beyond the paper; ``force_weight > 0``): the DFT configs add ``force_weight`` x their
per-component force MSE ((eV/Angstrom)^2), and with ``eip_forces`` the EIP-labelled configs add
``weight * force_weight`` x a Tukey term on the per-component residuals against the SELECTED
EIP's forces (the species alignment shifts energies only, so the forces are the EIP's own), with
its own robust scale over the force residuals of the batch: a wrong pick's forces are as harmless
as its energy. Without ``eip_forces`` the EIP-labelled configs train on energies only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from .. import keys
from ..eips import eip_forces as forces_of_eip
from ..graphs.build import FORCES, N_ATOMS, POS, Y, atom_batch
from ..training import FitResult, TrainSettings, fit_energy_model, model_inputs
from ..training.evaluate import force_graph_wanted, predicted_forces
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
        c: Tukey constant; eps: floor of the robust scale (eV/atom; eV/Angstrom for forces).
        force_weight: weight of the force terms (0: energies only, the paper's loss).
        eip_forces: the EIP-labelled configs' forces (the selected EIP's) enter the loss too.

    With forces the loss is ``MSE(E_dft) + force_weight * MSE(F_dft) + weight * (rho(e_eip) +
    force_weight * rho(F_eip))`` (``rho``: Tukey on each part's own robust scale). One
    ``force_weight`` sets how much forces count against energies for DFT and EIP labels alike,
    and alpha (in ``weight``) how much EIP labels count against DFT, for energies and forces
    alike: two knobs with one meaning each, both chosen on validation, instead of a third weight
    for EIP forces whose choice would need another validation grid.
    """

    weight: float
    tukey: bool = True
    c: float = TUKEY_C
    eps: float = 1e-3
    force_weight: float = 0.0
    eip_forces: bool = False

    @property
    def needs_position_grad(self) -> bool:
        """The loss differentiates the energy by positions (force terms)."""
        return self.force_weight > 0

    def _robust(self, residual: torch.Tensor) -> torch.Tensor:
        return tukey_biweight(residual, self.c, self.eps) if self.tukey else (residual**2).mean()

    def __call__(self, prediction: torch.Tensor, batch) -> torch.Tensor:
        pred = prediction.reshape(-1)
        target = batch[Y].to(pred.dtype).reshape(-1)
        is_eip = batch[IS_EIP].reshape(-1).bool()
        dft = ~is_eip
        loss = ((pred[dft] - target[dft]) ** 2).mean() if dft.any() else pred.sum() * 0.0
        if is_eip.any():
            residual = (pred[is_eip] - target[is_eip]) / batch[N_ATOMS].reshape(-1)[is_eip].to(pred.dtype)
            loss = loss + self.weight * self._robust(residual)
        if self.force_weight > 0:
            loss = loss + self._force_terms(prediction, batch, is_eip)
        return loss

    def _force_terms(self, prediction: torch.Tensor, batch, is_eip: torch.Tensor) -> torch.Tensor:
        reference = batch[FORCES].to(prediction.dtype)
        atom_config = atom_batch(batch)
        known = torch.isfinite(reference).all(dim=1)
        atom_is_eip = is_eip[atom_config]
        dft, eip = known & ~atom_is_eip, known & atom_is_eip & self.eip_forces
        term = prediction.sum() * 0.0
        if not bool((dft | eip).any()):
            return term
        forces = predicted_forces(prediction, batch, create_graph=force_graph_wanted())
        if bool(dft.any()):
            term = term + self.force_weight * ((forces[dft] - reference[dft]) ** 2).mean()
        if bool(eip.any()):
            term = term + self.weight * self.force_weight * self._robust((forces[eip] - reference[eip]).reshape(-1))
        return term


def augmented_graphs(exp: Experiment, selection: pd.DataFrame, config: ModelConfig, *,
                     group: Sequence[str] | None = None, forces: bool = False,
                     eip_forces: bool = False) -> tuple[list[Data], list[Data]]:
    """Training graphs: DFT train configs (y = E_dft) + selected pool configs (y = EIP label).

    ``group``: restrict the EIP-labelled configs to these ids (confidence groups, Table 5).
    ``forces``: attach ``forces`` [n_atoms, 3] (eV/Angstrom): the DFT forces of the train
    configs, and for the pool configs the selected EIP's forces with ``eip_forces`` (the pool
    labelled with forces) or NaN (no force term) without.
    """
    train = model_inputs(exp.parts[keys.TRAIN], config, progress=False, forces=forces)
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
    if forces:
        for g, atoms, model_id in zip(aug, pool, chosen["model_id"], strict=True):
            f = forces_of_eip(atoms, str(model_id)) if eip_forces else None
            g[FORCES] = torch.as_tensor(np.full((len(atoms), 3), np.nan) if f is None else np.asarray(f, dtype=float),
                                        dtype=g[POS].dtype)
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
    force_weight: float = 0.0,
    eip_forces: bool = False,
) -> tuple[FitResult, dict]:
    """Train on DFT + EIP-labelled pool configs; returns the fit and {alpha, weight, n_dft, n_aug}.

    ``model``: a ModelConfig (fresh network) or a pretrained EnergyModel with a 1-output head
    (MP+LA). ``force_weight`` > 0 trains on DFT forces too, and ``eip_forces`` on the selected
    EIP's forces of the EIP-labelled configs (module docstring; the pool must be labelled with
    forces).
    """
    if eip_forces and force_weight <= 0:
        raise ValueError("eip_forces=True needs force_weight > 0 (the weight of the force terms)")
    config = model if not hasattr(model, "config") else model.config
    forces = force_weight > 0
    train, aug = augmented_graphs(exp, selection, config, group=group, forces=forces, eip_forces=eip_forces)
    n_dft, n_aug = len(train), len(aug)
    weight = alpha * n_dft / n_aug if n_aug else 0.0
    info = {"alpha": alpha, "effective_weight": weight, "n_dft": n_dft, "n_aug": n_aug, "tukey": tukey}
    if forces:
        info["eip_forces"] = eip_forces
    val = model_inputs(exp.parts[keys.VAL], config, progress=False, forces=forces)
    test = model_inputs(exp.parts[keys.TEST], config, progress=False, forces=forces)
    for g in val + test:
        g[IS_EIP] = torch.tensor([False])
    fit = fit_energy_model(
        train + aug, val, test, model=model, settings=settings, out_dir=out_dir,
        loss_fn=AugmentedLoss(weight, tukey=tukey, force_weight=force_weight, eip_forces=eip_forces),
        run_info={**info, **(run_info or {})}, baseline_graphs=train, force_weight=force_weight,
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
