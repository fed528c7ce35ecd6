"""Model inputs from configurations: neighbour graphs, plus SOAP features when asked."""

from __future__ import annotations

from collections.abc import Sequence

import ase
import numpy as np
import torch
from torch_geometric.data import Data

from eiplab import keys
from eiplab.graphs.build import FORCES, POS, GraphDataset


def build_graphs(
    configs: Sequence[ase.Atoms],
    cutoff: float,
    *,
    soap: dict | None = None,
    target: str | None = keys.ENERGY_DFT,
    n_jobs: int = 2,
    progress: bool = True,
    forces: bool = False,
) -> list[Data]:
    """Graphs of ``configs`` (cutoff in Angstrom) with ``y`` from ``atoms.info[target]``.

    Args:
        soap: SOAP settings as a dict (``SoapSettings.to_dict()``); when given, each graph
            also gets ``x`` [n_atoms, n_features] (cached on disk).
        forces: also attach the DFT forces ``arrays[keys.FORCES_DFT]`` as ``forces``
            [n_atoms, 3] (eV/Angstrom; NaN for a config without forces, masked in the loss).
    """
    graphs = list(GraphDataset(configs, cutoff, target=target, progress=progress))
    if forces:
        for graph, atoms in zip(graphs, configs, strict=True):
            values = atoms.arrays.get(keys.FORCES_DFT)
            values = np.full((len(atoms), 3), np.nan) if values is None else np.asarray(values, dtype=float)
            graph[FORCES] = torch.as_tensor(values, dtype=graph[POS].dtype)
    if soap is not None and graphs:
        from eiplab.graphs.soap import SoapSettings, attach_soap, soap_features

        features = soap_features(
            configs, SoapSettings.from_dict(soap), n_jobs=n_jobs, progress=progress
        )
        attach_soap(graphs, features)
    return graphs
