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
