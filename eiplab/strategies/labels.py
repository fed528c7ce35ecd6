"""Classifier labels for label augmentation (METHOD.md step 1).

For a DFT-labelled config: the EIP with the smallest |E_k - E_dft| (aligned energies), or the
class "none" (index K) when that best error per atom exceeds tau. NaN/inf EIP energies are never
the best class.
"""

from __future__ import annotations

import numpy as np

DEFAULT_TAU = 0.1  # eV/atom


def best_eip_labels(energies_eip: np.ndarray, energies_dft: np.ndarray, n_atoms: np.ndarray, tau: float = DEFAULT_TAU) -> np.ndarray:
    """Class index per config: argmin_k |E_k - E_dft| or K ("none").

    Args:
        energies_eip: aligned EIP energies, eV [n_configs, K] (NaN/inf allowed: never chosen).
        energies_dft: DFT energies, eV [n_configs].
        n_atoms: atoms per config [n_configs].
        tau: largest acceptable error of the best EIP, eV/atom.

    Returns:
        int array [n_configs] in 0..K.
    """
    e = np.asarray(energies_eip, dtype=float)
    if e.ndim != 2:
        raise ValueError(f"energies_eip must be [n_configs, K], got shape {e.shape}")
    k = e.shape[1]
    err = np.abs(e - np.asarray(energies_dft, dtype=float)[:, None]) / np.asarray(n_atoms, dtype=float)[:, None]
    err = np.where(np.isfinite(err), err, np.inf)
    best = np.argmin(err, axis=1)
    best_err = err[np.arange(len(e)), best]
    return np.where(best_err <= tau, best, k).astype(int)


AUTO = "auto"
AUTO_TAU_QUANTILE = 0.75


def best_eip_errors(energies_eip: np.ndarray, energies_dft: np.ndarray, n_atoms: np.ndarray) -> np.ndarray:
    """Per config, the smallest |E_k - E_dft| / N over the EIPs, eV/atom [n_configs] (inf where
    every EIP failed)."""
    e = np.asarray(energies_eip, dtype=float)
    err = np.abs(e - np.asarray(energies_dft, dtype=float)[:, None]) / np.asarray(n_atoms, dtype=float)[:, None]
    return np.where(np.isfinite(err), err, np.inf).min(axis=1)


def auto_tau(energies_eip: np.ndarray, energies_dft: np.ndarray, n_atoms: np.ndarray,
             quantile: float = AUTO_TAU_QUANTILE) -> float:
    """The dataset rule for tau (decision, docs/METHOD.md): the ``quantile`` (0.75) of the
    best-EIP error per atom over the given -- TRAINING -- configs, so that the best aligned EIP
    counts as right on three quarters of them. On si-pyxtal this gives about the paper's
    0.1 eV/atom; where EIPs are much better (mlearn Mo) or worse it follows them.

    Args:
        energies_eip: aligned EIP energies of the training configs, eV [n, K].
        energies_dft: their DFT energies, eV [n].
        n_atoms: atoms per config [n].
        quantile: share of training configs whose best EIP is within tau.
    """
    err = best_eip_errors(energies_eip, energies_dft, n_atoms)
    err = err[np.isfinite(err)]
    if err.size == 0:
        raise ValueError("tau='auto' needs training configs where at least one EIP gave an energy")
    return float(np.quantile(err, quantile))
