"""Energy error metrics (the paper's config-level and atom-level MAE)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from eiplab import keys


def mae_config(predicted: ArrayLike, reference: ArrayLike) -> float:
    """Config-level MAE (eV): mean |E_pred - E_dft| over configurations."""
    predicted, reference = _check(predicted, reference)
    return float(np.mean(np.abs(predicted - reference)))


def mae_atom(predicted: ArrayLike, reference: ArrayLike, n_atoms: ArrayLike) -> float:
    """Atom-level MAE (eV/atom): mean over configs of |E_pred - E_dft| / N_C."""
    predicted, reference = _check(predicted, reference)
    n_atoms = np.asarray(n_atoms, dtype=np.float64).reshape(-1)
    if n_atoms.shape != predicted.shape:
        raise ValueError(f"n_atoms has shape {n_atoms.shape}, energies {predicted.shape}")
    if np.any(n_atoms <= 0):
        raise ValueError("every configuration needs at least one atom")
    return float(np.mean(np.abs(predicted - reference) / n_atoms))


def energy_metrics(
    predicted: ArrayLike, reference: ArrayLike, n_atoms: ArrayLike
) -> dict[str, float]:
    """Both MAEs as ``{keys.MAE_CONFIG: eV, keys.MAE_ATOM: eV/atom}``."""
    return {
        keys.MAE_CONFIG: mae_config(predicted, reference),
        keys.MAE_ATOM: mae_atom(predicted, reference, n_atoms),
    }


def _check(predicted: ArrayLike, reference: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    predicted = np.asarray(predicted, dtype=np.float64).reshape(-1)
    reference = np.asarray(reference, dtype=np.float64).reshape(-1)
    if predicted.shape != reference.shape:
        raise ValueError(f"shapes differ: predicted {predicted.shape}, reference {reference.shape}")
    if predicted.size == 0:
        raise ValueError("no configurations to score")
    return predicted, reference
