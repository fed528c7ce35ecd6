"""Periodic neighbour graphs (vesin) as PyG ``Data``, and SOAP features (dscribe)."""

from eiplab.graphs.build import (
    GraphDataset,
    atom_batch,
    atoms_to_data,
    edge_batch,
    edge_pairs,
    edge_vectors,
    make_loader,
    n_configs,
)
from eiplab.graphs.inputs import build_graphs

__all__ = [
    "GraphDataset",
    "atom_batch",
    "atoms_to_data",
    "build_graphs",
    "edge_batch",
    "edge_pairs",
    "edge_vectors",
    "make_loader",
    "n_configs",
]
