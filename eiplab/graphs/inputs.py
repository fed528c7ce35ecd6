"""Model inputs from configurations: neighbour graphs, plus SOAP features when asked."""

from __future__ import annotations

from collections.abc import Sequence

import ase
from torch_geometric.data import Data

from eiplab import keys
from eiplab.graphs.build import GraphDataset


def build_graphs(
    configs: Sequence[ase.Atoms],
    cutoff: float,
    *,
    soap: dict | None = None,
    target: str | None = keys.ENERGY_DFT,
    n_jobs: int = 2,
    progress: bool = True,
) -> list[Data]:
    """Graphs of ``configs`` (cutoff in Angstrom) with ``y`` from ``atoms.info[target]``.

    Args:
        soap: SOAP settings as a dict (``SoapSettings.to_dict()``); when given, each graph
            also gets ``x`` [n_atoms, n_features] (cached on disk).
    """
    graphs = list(GraphDataset(configs, cutoff, target=target, progress=progress))
    if soap is not None and graphs:
        from eiplab.graphs.soap import SoapSettings, attach_soap, soap_features

        features = soap_features(
            configs, SoapSettings.from_dict(soap), n_jobs=n_jobs, progress=progress
        )
        attach_soap(graphs, features)
    return graphs
