"""Multi-task pretraining (MP): a K-output head learns all EIPs' energies on the pool.

Targets (decision, METHOD.md leaves the standardisation open): for each EIP k,
t_k(C) = (E_k(C) - sum_s n_s nu_{k,s}) / sigma_k, where nu_k is a least-squares per-species fit
of E_k over the valid pool configs and sigma_k the std of the remainder. This removes every
per-species shift, so the species alignment (which needs DFT) cancels exactly: pretraining
uses no DFT at all, and one pretrained backbone serves every split. Invalid entries (NaN, inf,
|E_k/N| > ``max_abs_per_atom``) are masked out of the MSE.

With ``force_weight > 0`` the heads also learn the EIPs' forces, standardised like the energies
(F_k / sigma_k, so that output k's position gradient is matched): loss = masked energy MSE +
``force_weight`` x per-component force MSE over the valid (atom, EIP) pairs. Decision (the
cheaper equivalent of K backward passes): one backward pass of the random projection
sum_k w_k t_k with independent random signs w_k = +-1 per (config, EIP) and step. Since
E[(sum_k w_k d_k)^2] = sum_k d_k^2 for such signs, the projected squared force residual is an
unbiased estimate of the per-head force MSE (pinned by a test), at the cost of one backward
pass instead of K (K = 8-13 EIPs here); the noise it adds to the gradient averages out over steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch_geometric.data import Batch

from ..data import ConfigSet
from ..eips import eip_forces, species_counts
from ..graphs import make_loader
from ..graphs.build import POS, Y, atom_batch
from ..models import EnergyModel, ModelConfig, build_model, replace_head
from ..training import (
    MetricsFn,
    TrainSettings,
    model_inputs,
    prepare_for_fit,
    seed_everything,
    train,
)
from ..training.evaluate import force_graph_wanted, predicted_forces

MASK = "target_mask"  # bool [1, K] per graph: which EIP targets are valid
EIP_FORCES = "eip_forces"  # float [n_atoms, K, 3] per graph: standardised EIP forces F_k / sigma_k (NaN = none)
MAX_ABS_PER_ATOM = 200.0  # eV/atom; larger |E_k/N| is treated as a failed evaluation
MAX_ABS_FORCE = 100.0  # eV/Angstrom; a (config, EIP) with a larger force component is left out of the force term


@dataclass
class TargetScaler:
    """Per-EIP standardisation of EIP energies (fitted on pool configs; no DFT).

    Attributes:
        model_ids: the K EIPs.
        species: element symbols of the per-species fit.
        nu: per-species offsets [K, n_species], eV/atom.
        sigma: scale per EIP [K], eV.
    """

    model_ids: list[str]
    species: list[str]
    nu: np.ndarray
    sigma: np.ndarray

    def transform(self, configs: ConfigSet, energies: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Standardised targets [n, K] and validity mask [n, K]."""
        e = energies.loc[configs.ids, self.model_ids].to_numpy(dtype=float)
        counts = species_counts(configs, self.species).to_numpy(dtype=float)
        mask = valid_mask(e, configs.n_atoms())
        t = (e - counts @ self.nu.T) / self.sigma
        return np.where(mask, t, 0.0), mask

    def inverse(self, configs: ConfigSet, t: np.ndarray) -> np.ndarray:
        """Energies (eV) from standardised outputs [n, K]."""
        counts = species_counts(configs, self.species).to_numpy(dtype=float)
        return t * self.sigma + counts @ self.nu.T


def valid_mask(energies: np.ndarray, n_atoms: np.ndarray, max_abs_per_atom: float = MAX_ABS_PER_ATOM) -> np.ndarray:
    """True where an EIP energy [n, K] is finite and |E/N| <= max_abs_per_atom."""
    per_atom = energies / np.asarray(n_atoms, dtype=float)[:, None]
    return np.isfinite(per_atom) & (np.abs(per_atom) <= max_abs_per_atom)


def fit_scaler(configs: ConfigSet, energies: pd.DataFrame, model_ids: Sequence[str]) -> TargetScaler:
    """Fit the per-EIP species offsets and scales on ``configs`` (the pool)."""
    species = configs.species
    counts = species_counts(configs, species).to_numpy(dtype=float)
    e = energies.loc[configs.ids, list(model_ids)].to_numpy(dtype=float)
    mask = valid_mask(e, configs.n_atoms())
    nu = np.zeros((len(model_ids), len(species)))
    sigma = np.ones(len(model_ids))
    for k, m in enumerate(model_ids):
        ok = mask[:, k]
        if ok.sum() < len(species) + 1:
            raise ValueError(f"EIP {m}: only {int(ok.sum())} valid energies on the pool; cannot pretrain on it")
        nu[k], *_ = np.linalg.lstsq(counts[ok], e[ok, k], rcond=None)
        sigma[k] = max(float(np.std(e[ok, k] - counts[ok] @ nu[k])), 1e-6)
    return TargetScaler(list(model_ids), species, nu, sigma)


def masked_mse(prediction: torch.Tensor, batch: Batch) -> torch.Tensor:
    """MSE over the valid entries of the [n_configs, K] standardised targets."""
    target = batch[Y].to(prediction.dtype).reshape(prediction.shape)
    mask = batch[MASK].reshape(prediction.shape)
    diff = torch.where(mask, prediction - target, torch.zeros_like(prediction))
    return (diff**2).sum() / mask.sum().clamp_min(1)


@dataclass(frozen=True)
class MultiTaskForceLoss:
    """Masked energy MSE + ``force_weight`` x the projected per-head force MSE (module docstring).

    Graphs carry ``eip_forces`` [n_atoms, K, 3] (standardised; NaN where an EIP has no forces or
    its energy is masked); ``batch.pos`` must require grad (``needs_position_grad``).
    """

    force_weight: float
    needs_position_grad: bool = True

    def __call__(self, prediction: torch.Tensor, batch: Batch) -> torch.Tensor:
        value = masked_mse(prediction, batch)
        reference = batch[EIP_FORCES].to(prediction.dtype)  # [n_atoms, K, 3]
        atom_config = atom_batch(batch)
        missing = (~torch.isfinite(reference).all(dim=2)).to(prediction.dtype)  # [n_atoms, K]
        bad = torch.zeros_like(prediction).index_add_(0, atom_config, missing)  # [n_configs, K]
        valid = bad == 0
        if not bool(valid.any()):
            return value
        signs = torch.randint(0, 2, prediction.shape, device=prediction.device).to(prediction.dtype) * 2 - 1
        w = torch.where(valid, signs, torch.zeros_like(signs))  # [n_configs, K]
        forces = predicted_forces(prediction, batch, create_graph=force_graph_wanted(), head_weights=w)
        w_atom = w[atom_config]  # [n_atoms, K]
        target = (w_atom.unsqueeze(2) * torch.nan_to_num(reference)).sum(1)  # [n_atoms, 3]
        n_pairs = (valid.to(prediction.dtype)[atom_config]).sum()  # valid (atom, EIP) pairs
        force_mse = ((forces - target) ** 2).sum() / (3 * n_pairs)
        return value + self.force_weight * force_mse


def per_head_force_mse(model: EnergyModel, batch: Batch) -> torch.Tensor:
    """The exact per-component force MSE over valid (atom, EIP) pairs with one backward pass per
    head (what :class:`MultiTaskForceLoss` estimates; for tests and checks)."""
    batch[POS].requires_grad_(True)
    prediction = model(batch)
    reference = batch[EIP_FORCES].to(prediction.dtype)
    total, count = prediction.new_zeros(()), 0
    for k in range(prediction.shape[1]):
        head = torch.zeros_like(prediction)
        head[:, k] = 1.0
        forces = predicted_forces(prediction, batch, head_weights=head, retain_graph=True)
        ok = torch.isfinite(reference[:, k]).all(dim=1)
        total = total + ((forces[ok] - reference[ok, k]) ** 2).sum()
        count += 3 * int(ok.sum())
    return total / max(count, 1)


def _mtl_graphs(configs: ConfigSet, energies: pd.DataFrame, scaler: TargetScaler, config: ModelConfig,
                forces: bool = False):
    graphs = model_inputs(configs, config, target=None, progress=False)
    t, mask = scaler.transform(configs, energies.loc[configs.ids])
    for g, ti, mi in zip(graphs, t, mask, strict=True):
        g[Y] = torch.tensor(ti, dtype=torch.get_default_dtype()).reshape(1, -1)
        g[MASK] = torch.tensor(mi).reshape(1, -1)
    if forces:
        for g, atoms, mi in zip(graphs, configs, mask, strict=True):
            g[EIP_FORCES] = torch.as_tensor(standardised_forces(atoms, scaler, mi), dtype=g[POS].dtype)
    return graphs


def standardised_forces(atoms, scaler: TargetScaler, valid: np.ndarray) -> np.ndarray:
    """The EIPs' forces on one config divided by each EIP's scale, [n_atoms, K, 3] (1/Angstrom
    in target units); NaN where the EIP failed, its energy is masked (``valid`` [K]) or one of
    its force components exceeds ``MAX_ABS_FORCE`` (an EIP near its repulsive wall: such forces
    would dominate the loss, as absurd energies would).

    Raises:
        KeyError: the config was not labelled with forces (``label_dataset(..., forces=True)``).
    """
    out = np.full((len(atoms), len(scaler.model_ids), 3), np.nan)
    for k, m in enumerate(scaler.model_ids):
        f = eip_forces(atoms, m)
        if f is not None and valid[k] and np.abs(f).max(initial=0.0) <= MAX_ABS_FORCE:
            out[:, k] = np.asarray(f, dtype=float) / scaler.sigma[k]
    return out


def eip_mae_metrics(scaler: TargetScaler) -> MetricsFn:
    """Validation metric: the mean over EIPs of each EIP's MAE (eV) over its valid entries, so
    every EIP weighs the same whatever its number of failed (masked) configs; an EIP with no
    valid validation entry is left out. (Identical to the MAE pooled over all valid entries
    when no entry is masked, as on si-pyxtal's pool.)"""

    @torch.no_grad()
    def metrics(model, loader, device) -> dict[str, float]:
        model.eval()
        sigma = torch.as_tensor(scaler.sigma, device=device)
        abs_err = torch.zeros(len(scaler.model_ids), dtype=torch.float64, device=device)
        count = torch.zeros(len(scaler.model_ids), dtype=torch.float64, device=device)
        for batch in loader:
            batch = batch.to(device)
            pred = model(batch)
            target = batch[Y].reshape(pred.shape)
            mask = batch[MASK].reshape(pred.shape)
            err = torch.where(mask, (pred - target).abs() * sigma, torch.zeros_like(pred))  # [n_configs, K] eV
            abs_err += err.sum(0).double()
            count += mask.sum(0).double()
        seen = count > 0
        per_eip = abs_err[seen] / count[seen]
        return {"val_eip_mae": float(per_eip.mean()) if bool(seen.any()) else float("nan")}

    return metrics


@dataclass
class PretrainResult:
    """Pretrained K-output model, its scaler and history."""

    model: EnergyModel
    scaler: TargetScaler
    history: list
    val_eip_mae: float


def pretrain(
    pool: ConfigSet,
    energies: pd.DataFrame,
    model_ids: Sequence[str],
    config: ModelConfig,
    settings: TrainSettings,
    *,
    val_fraction: float = 0.1,
    out_dir: str | Path | None = None,
    force_weight: float = 0.0,
) -> PretrainResult:
    """Pretrain a K-output network on the pool's EIP energies (no DFT).

    A random ``val_fraction`` of the pool (seeded) selects the checkpoint (validation EIP MAE).
    ``out_dir``: the training loop's folder (checkpoints, the best model, the run record).
    ``force_weight``: > 0 also fits each EIP's forces (module docstring; the pool must be
    labelled with forces, ``label_dataset(..., forces=True)``); needs a graph network.
    """
    order = np.random.default_rng(settings.seed).permutation(len(pool))
    n_val = max(1, int(round(val_fraction * len(pool))))
    val_set = ConfigSet([pool[i] for i in sorted(order[:n_val])], name=f"{pool.name}/mp-val")
    train_set = ConfigSet([pool[i] for i in sorted(order[n_val:])], name=f"{pool.name}/mp-train")
    if settings.max_configs is not None:
        train_set = train_set[: settings.max_configs]
        val_set = val_set[: settings.max_configs]
    scaler = fit_scaler(train_set, energies, model_ids)
    config = config.replace(n_out=len(model_ids), head="atomwise")
    forces = force_weight > 0
    if forces and config.soap:
        raise ValueError(f"force_weight={force_weight}: {config.name} reads precomputed SOAP features and has no "
                         "position gradient; pretrain on EIP forces with SchNet, CGCNN or GemNet")
    train_graphs = _mtl_graphs(train_set, energies, scaler, config, forces)
    val_graphs = _mtl_graphs(val_set, energies, scaler, config, forces)
    seed_everything(settings.seed)
    model = build_model(config)
    prepare_for_fit(model, train_graphs, energy_baseline=False)  # targets are standardised EIP energies
    settings = replace(settings, schedule="slanted_triangular", select_on="val_eip_mae", select_mode="min")
    result = train(
        model,
        make_loader(train_graphs, settings.batch_size, shuffle=True, seed=settings.seed),
        make_loader(val_graphs, settings.batch_size),
        MultiTaskForceLoss(force_weight) if forces else masked_mse,
        settings,
        out_dir=out_dir,
        metrics_fn=eip_mae_metrics(scaler),
        run_info={"strategy": "mp-pretrain", "eips": list(model_ids), "n_pool_train": len(train_set),
                  "n_pool_val": len(val_set), **({"eip_force_weight": force_weight} if forces else {})},
    )
    return PretrainResult(result.model, scaler, result.history, float(result.best_metrics.get("val_eip_mae", np.nan)))


def for_finetuning(pretrained: EnergyModel, seed: int | None = None) -> EnergyModel:
    """A copy of the pretrained network with a fresh 1-output energy head (nothing frozen).

    ``seed`` initialises the head from its own generator (the global RNG is left as it was), so a
    fine-tune starts from the same weights whatever ran before it in the process.
    """
    model = load_model_copy(pretrained)
    if seed is None:
        return replace_head(model, n_out=1, head="atomwise")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return replace_head(model, n_out=1, head="atomwise")


def load_model_copy(model: EnergyModel) -> EnergyModel:
    """A deep copy of ``model`` (same config and weights), on the CPU."""
    clone = build_model(model.config)
    clone.load_state_dict({k: v.detach().cpu() for k, v in model.state_dict().items()})
    return clone

