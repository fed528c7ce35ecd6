"""The one place a network is prepared for a fit: its fitted quantities besides the weights.

Every fit of a network -- the DFT baseline recipe, LA, MP pretraining and fine-tuning, the LA
classifier -- goes through :func:`prepare_for_fit`, and :func:`eiplab.training.train` refuses a
network that was not prepared (:func:`check_prepared`), so no fit can forget it. Two quantities:

- the representation's input scaling (SOAPNet's per-feature mean/std): fitted once, on the
  graphs of the network's first fit, then kept with the network. A fine-tuned MP backbone keeps
  the scaling it was pretrained with, so its first layer sees the inputs it learned on.
- the per-species energy baseline (eV/atom, least squares of total energies on species counts):
  refitted by every fit on DFT energies (``energy_baseline=True``); left at zero for fits whose
  outputs are not DFT energies (MP's standardised EIP targets, the classifier's logits).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from torch_geometric.data import Data

from eiplab.graphs.build import Y, Z
from eiplab.models.base import EnergyModel


def species_counts(graphs: Sequence[Data], species: Sequence[int]) -> np.ndarray:
    """Atom counts per species, int [n_configs, n_species]."""
    column = {int(z): k for k, z in enumerate(species)}
    counts = np.zeros((len(graphs), len(species)), dtype=np.int64)
    for row, graph in enumerate(graphs):
        for z in graph[Z].tolist():
            counts[row, column[z]] += 1
    return counts


def fit_species_baseline(graphs: Sequence[Data]) -> dict[int, float]:
    """Per-species energies mu_s (eV/atom) minimising sum_C (E_C - sum_s n_Cs mu_s)^2.

    Uses the graphs' ``y`` (total energy, eV). Raises when the compositions cannot identify
    the per-species values (e.g. every config at the same A:B ratio).
    """
    labelled = [g for g in graphs if getattr(g, Y, None) is not None]
    if not labelled:
        raise ValueError("no labelled configurations to fit the energy baseline on")
    species = sorted({int(z) for g in labelled for z in g[Z].tolist()})
    counts = species_counts(labelled, species).astype(np.float64)
    energies = np.array([float(g[Y].reshape(-1)[0]) for g in labelled])
    if np.linalg.matrix_rank(counts) < len(species):
        raise ValueError(
            f"the training compositions cannot identify per-species energies of {species} "
            "(species counts are linearly dependent, e.g. one fixed composition)"
        )
    mu, *_ = np.linalg.lstsq(counts, energies, rcond=None)
    return {z: float(m) for z, m in zip(species, mu, strict=True)}


def prepare_for_fit(model: EnergyModel, graphs: Sequence[Data], *, energy_baseline: bool) -> None:
    """Prepare ``model`` for a fit on ``graphs`` (its training graphs).

    Args:
        model: the network to train (fresh, or pretrained and given a new head).
        graphs: the fit's training graphs (for LA: the DFT-labelled ones only).
        energy_baseline: refit the per-species energy baseline on the graphs' ``y`` (fits on
            DFT energies); False leaves it as it is (zero for MP pretraining and classifiers).
    """
    representation = model.representation_module
    if representation.needs_input_scaling():
        representation.fit_input_scaling(graphs)
    if energy_baseline:
        model.set_baseline(fit_species_baseline(graphs))


def check_prepared(model: object) -> None:
    """Raise when ``model`` has input scaling left to fit (it skipped :func:`prepare_for_fit`)."""
    representation = getattr(model, "representation_module", None)
    if representation is not None and representation.needs_input_scaling():
        name = getattr(getattr(model, "config", None), "name", type(representation).__name__)
        raise ValueError(
            f"{name}: the network's input scaling is not fitted; call "
            "eiplab.training.prepare_for_fit(model, train_graphs, energy_baseline=...) before training"
        )
