"""An LA selector that predicts each EIP's error: ``selector="error-regression"``.

Instead of the paper's K+1-class classifier, a K-output regression head on the same backbone
learns, on the DFT training configs, the error of every EIP, |E_eip(aligned) - E_dft| (eV, as a
sum of per-atom contributions; an EIP that failed on a config is masked), read per atom
(eV/atom) at prediction. On the pool it picks the EIP with
the smallest predicted error and adds the config only when that error is below tau -- and says
how wrong each pick is expected to be (``predicted_error``). It writes the same selection table
as :func:`eiplab.strategies.select_pool` (``confidence`` = 1 / (1 + predicted error / tau), in
(0, 1], larger for a smaller predicted error), so Tables 5 and 6, the audit and notebook 04 work
unchanged. Nothing here uses validation, test or pool DFT for a choice: VAL only picks the
checkpoint (validation loss) and reports the pick accuracy.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import torch

from .. import keys
from ..graphs import make_loader
from ..graphs.build import Y
from ..models import ModelConfig, build_model
from ..training import TrainSettings, model_inputs, predict, prepare_for_fit, seed_everything, train
from .classifier import CLASS, ClassifierResult, class_names, classifier_targets, resolve_tau
from .experiment import Experiment
from .labels import DEFAULT_TAU
from .pretrain import MASK, masked_mse

#: The LA selectors: the paper's classifier, or the per-EIP error regression of this module.
SELECTORS = ("classifier", "error-regression")


def eip_errors(exp: Experiment, part: str) -> np.ndarray:
    """Per-atom error of every EIP on ``part``'s configs, float [n_configs, K] (eV/atom; NaN
    where the EIP failed)."""
    configs = exp.parts[part]
    aligned = exp.aligned_for(part).to_numpy(dtype=float)
    return np.abs(aligned - configs.energies_dft()[:, None]) / configs.n_atoms()[:, None]


def _error_graphs(exp: Experiment, part: str, config: ModelConfig):
    # the network learns each EIP's TOTAL error (eV) as a sum of per-atom contributions (the
    # atomwise head; local, like the energy itself); divided by n_atoms at prediction
    graphs = model_inputs(exp.parts[part], config, target=None, progress=False)
    errors = eip_errors(exp, part) * exp.parts[part].n_atoms()[:, None]
    for g, row in zip(graphs, errors, strict=True):
        known = np.isfinite(row)
        g[Y] = torch.tensor(np.where(known, row, 0.0), dtype=torch.get_default_dtype()).reshape(1, -1)
        g[MASK] = torch.tensor(known).reshape(1, -1)
    return graphs


def train_error_regressor(exp: Experiment, config: ModelConfig, settings: TrainSettings, *,
                          tau: float | str = DEFAULT_TAU, out_dir=None) -> ClassifierResult:
    """Train the K-output error regression on TRAIN (checkpoint on the VAL loss); its
    ``val_accuracy`` is how often its pick (smallest predicted error, or "none" above tau)
    equals the class the paper's classifier would be trained to predict on VAL."""
    tau = resolve_tau(exp, tau)
    k = len(exp.model_ids)
    config = config.replace(n_out=k, head="atomwise")
    settings = replace(settings, schedule="slanted_triangular", select_on="val_loss", select_mode="min")
    train_graphs = _error_graphs(exp, keys.TRAIN, config)
    val_graphs = _error_graphs(exp, keys.VAL, config)
    seed_everything(settings.seed)
    model = build_model(config)
    prepare_for_fit(model, train_graphs, energy_baseline=False)  # outputs are errors: no energy baseline
    result = train(model, make_loader(train_graphs, settings.batch_size, shuffle=True, seed=settings.seed),
                   make_loader(val_graphs, settings.batch_size), masked_mse, settings, out_dir=out_dir,
                   metrics_fn=None, run_info={"strategy": "la-error-regression", "tau": tau,
                                              "eips": list(exp.model_ids)})
    picks = select_by_error(result.model, exp, tau=tau, device=settings.device, part=keys.VAL)
    truth = classifier_targets(exp, keys.VAL, tau)
    accuracy = float(np.mean(picks[CLASS].to_numpy() == np.asarray(truth)))
    labels = np.asarray(classifier_targets(exp, keys.TRAIN, tau))
    counts = pd.Series(np.bincount(labels, minlength=k + 1), index=class_names(exp.model_ids), name="train_configs")
    return ClassifierResult(result.model, accuracy, counts, result.history, tau)


def select_by_error(model: torch.nn.Module, exp: Experiment, *, tau: float, device: str = "auto",
                    part: str = keys.POOL) -> pd.DataFrame:
    """The regression's picks on ``part`` (default the pool), as :func:`select_pool`'s table plus
    ``predicted_error`` (eV/atom): the EIP with the smallest predicted error, "none" when even
    that is above ``tau``; a pick whose EIP energy is NaN/inf is never selected."""
    configs = exp.parts[part]
    predicted = np.atleast_2d(predict(model, configs, device=device)) / configs.n_atoms()[:, None]  # eV/atom
    aligned = exp.aligned_for(part).to_numpy(dtype=float)
    predicted = np.where(np.isfinite(aligned), predicted, np.inf)  # a failed EIP is never picked
    k = len(exp.model_ids)
    best = predicted.argmin(axis=1)
    best_error = predicted[np.arange(len(configs)), best]
    chosen = np.where(best_error <= tau, best, k)
    names = class_names(exp.model_ids)
    label = np.full(len(configs), np.nan)
    is_eip = chosen < k
    label[is_eip] = aligned[np.flatnonzero(is_eip), chosen[is_eip]]
    return pd.DataFrame(
        {CLASS: chosen, "model_id": [names[c] for c in chosen],
         "confidence": 1.0 / (1.0 + np.clip(best_error, 0.0, None) / tau), "label_energy": label,
         keys.N_ATOMS: configs.n_atoms(), "selected": is_eip & np.isfinite(label), "predicted_error": best_error},
        index=pd.Index(configs.ids, name=keys.CONFIG_ID))
