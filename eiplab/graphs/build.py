"""Periodic neighbour graphs: ``ase.Atoms`` -> ``torch_geometric.data.Data``.

Graphs are built once, before any model sees them (models never build graphs). Edges are
real atoms plus integer cell-shift vectors (no ghost atoms), with no cap on the number of
neighbours, so 1-atom periodic cells with many images inside the cutoff are exact.

Edge convention (PyG "source_to_target"): ``edge_index[0] = j`` is the neighbour (source,
message sender) and ``edge_index[1] = i`` is the centre atom (target, receiver). The edge
vector is ``r_ij = pos[j] - pos[i] + cell_shift @ cell`` (Angstrom) and messages are summed
at ``i``. Every pair appears in both directions (full neighbour list), in a fixed order: in
each graph, edges ``[0, n_pairs)`` are the unique pairs and edges ``[n_pairs, 2 n_pairs)`` are
their reverses in the same order (j and i swapped, shift negated). Models may use this to
compute pair-symmetric quantities (distances, radial filters) once per pair (see
:func:`edge_pairs`); nothing else depends on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ase
import numpy as np
import torch
from torch_geometric.data import Batch, Data
from torch_geometric.loader import DataLoader
from tqdm.auto import tqdm
from vesin import NeighborList

from eiplab import keys

# --- attribute names of a graph (Data / Batch) ------------------------------------------------
Z = "z"  # long [n_atoms]; atomic numbers
POS = "pos"  # float [n_atoms, 3], Angstrom; Cartesian positions
CELL = "cell"  # float [1, 3, 3], Angstrom; lattice vectors as rows (batched: [n_configs, 3, 3])
PBC = "pbc"  # bool [1, 3]; periodic directions (batched: [n_configs, 3])
EDGE_INDEX = "edge_index"  # long [2, n_edges]; row 0 = j (neighbour), row 1 = i (centre)
CELL_SHIFT = "cell_shift"  # float [n_edges, 3]; integer image offsets S of j (r_ij uses S @ cell)
N_ATOMS = keys.N_ATOMS  # long [1] (batched: [n_configs]); atoms per configuration
Y = "y"  # float [1] or [1, n_targets], eV; target total energy (absent when unlabelled)
FORCES = "forces"  # float [n_atoms, 3], eV/Angstrom; target forces (only when asked; NaN = none)
X = "x"  # float [n_atoms, n_features]; per-atom input features (SOAP), when computed
N_PAIRS = "n_pairs"  # long [1] (batched: [n_configs]); unique pairs = half the edges
# (code that reorders or filters a graph's edges must drop n_pairs: models then use all edges)
CONFIG_ID = keys.CONFIG_ID  # str (batched: list[str]); the configuration's stable id
BATCH = "batch"  # long [n_atoms]; configuration index of each atom (set by PyG batching)


def _neighbours(atoms: ase.Atoms, cutoff: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Half neighbour list (each pair once) with integer cell shifts.

    Returns:
        ``(i, j, S)``: indices [P], [P] and integer shifts [P, 3] such that
        ``r_ij = pos[j] - pos[i] + S @ cell`` has length < ``cutoff``; the reverse pairs
        ``(j, i, -S)`` are not listed.
    """
    pbc = np.asarray(atoms.pbc, dtype=bool)
    positions = np.asarray(atoms.positions, dtype=np.float64)
    if len(atoms) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros((0, 3), dtype=np.int64)
    box = np.asarray(atoms.cell.array, dtype=np.float64)
    if pbc.any():  # a non-periodic direction may have a zero cell vector
        box = np.asarray(atoms.cell.complete(), dtype=np.float64)
    calculator = NeighborList(cutoff=float(cutoff), full_list=False)
    i, j, shifts = calculator.compute(points=positions, box=box, periodic=pbc, quantities="ijS")
    return (
        np.asarray(i, dtype=np.int64),
        np.asarray(j, dtype=np.int64),
        np.asarray(shifts, dtype=np.int64).reshape(-1, 3),
    )


def atoms_to_data(
    atoms: ase.Atoms,
    cutoff: float,
    *,
    target: float | Sequence[float] | np.ndarray | None = None,
) -> Data:
    """Build the periodic neighbour graph of one configuration.

    Args:
        atoms: the configuration; ``atoms.info[keys.CONFIG_ID]`` is copied when present.
        cutoff: neighbour cutoff radius (Angstrom); pairs with distance < cutoff are edges.
        target: total energy (eV) -> ``y`` [1], or several (e.g. one per EIP) -> ``y``
            [1, n_targets]; ``None`` leaves ``y`` unset.

    Returns:
        A ``Data`` with ``z`` [n], ``pos`` [n, 3], ``cell`` [1, 3, 3], ``pbc`` [1, 3],
        ``edge_index`` [2, E], ``cell_shift`` [E, 3], ``n_atoms`` [1], ``config_id`` and
        optionally ``y``. A configuration with no neighbour inside the cutoff has E = 0.
    """
    if cutoff <= 0:
        raise ValueError(f"cutoff must be positive, got {cutoff}")
    pbc = np.asarray(atoms.pbc, dtype=bool)
    if pbc.all() and abs(atoms.cell.volume) < 1e-12:
        raise ValueError(
            f"configuration {atoms.info.get(keys.CONFIG_ID, '?')} is periodic with a "
            "zero-volume cell"
        )
    i_half, j_half, s_half = _neighbours(atoms, cutoff)
    i = np.concatenate([i_half, j_half])  # full list: pairs, then their reverses
    j = np.concatenate([j_half, i_half])
    shifts = np.concatenate([s_half, -s_half])
    dtype = torch.get_default_dtype()
    data = Data()
    data[Z] = torch.as_tensor(atoms.numbers, dtype=torch.long)
    data[POS] = torch.as_tensor(np.asarray(atoms.positions), dtype=dtype)
    data[CELL] = torch.as_tensor(np.asarray(atoms.cell.array), dtype=dtype).reshape(1, 3, 3)
    data[PBC] = torch.as_tensor(pbc).reshape(1, 3)
    data[EDGE_INDEX] = torch.as_tensor(np.stack([j, i]), dtype=torch.long).reshape(2, -1)
    data[CELL_SHIFT] = torch.as_tensor(shifts, dtype=dtype).reshape(-1, 3)
    data[N_ATOMS] = torch.tensor([len(atoms)], dtype=torch.long)
    data[N_PAIRS] = torch.tensor([len(i_half)], dtype=torch.long)
    data[CONFIG_ID] = str(atoms.info.get(keys.CONFIG_ID, ""))
    if target is not None:
        value = torch.as_tensor(np.asarray(target, dtype=np.float64), dtype=dtype)
        data[Y] = value.reshape(1) if value.ndim == 0 else value.reshape(1, -1)
    data.num_nodes = len(atoms)
    return data


def edge_batch(graph: Data | Batch) -> torch.Tensor:
    """Configuration index of every edge, long [n_edges] (zeros for an unbatched graph)."""
    centre = graph[EDGE_INDEX][1]
    batch = getattr(graph, BATCH, None)
    if batch is None:
        return torch.zeros_like(centre)
    return batch[centre]


def edge_vectors(graph: Data | Batch) -> torch.Tensor:
    """Edge vectors ``r_ij = pos[j] - pos[i] + S_ij @ cell``, float [n_edges, 3] (Angstrom).

    Computed from ``pos`` inside the model, so ``torch.autograd.grad(energy, pos)`` gives
    forces (and a cell strain could be added the same way).
    """
    j, i = graph[EDGE_INDEX]
    pos = graph[POS]
    cell = graph[CELL].to(pos.dtype)  # [n_configs, 3, 3]
    shift = graph[CELL_SHIFT].to(pos.dtype)  # [n_edges, 3]
    offset = torch.bmm(shift.unsqueeze(1), cell[edge_batch(graph)]).squeeze(1)  # [E, 3]
    return pos[j] - pos[i] + offset


def edge_pairs(graph: Data | Batch) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Unique pairs of a graph's full edge list (see the module docstring).

    Returns:
        ``(unique, pair_of_edge)``: ids of one edge per pair, long [n_pairs_total], and for
        every edge the position of its pair in ``unique``, long [n_edges]; so
        ``f(unique_values)[pair_of_edge]`` spreads a pair-symmetric quantity to all edges.
        None when the graph does not record ``n_pairs``.
    """
    n_pairs = getattr(graph, N_PAIRS, None)
    if n_pairs is None:
        return None
    n_edges = graph[EDGE_INDEX].shape[1]
    device = n_pairs.device
    per_graph = 2 * n_pairs  # [n_configs]
    edge_start = torch.cumsum(per_graph, 0) - per_graph  # first edge of each graph
    pair_start = torch.cumsum(n_pairs, 0) - n_pairs  # first pair of each graph
    graph_of_edge = torch.repeat_interleave(
        torch.arange(n_pairs.shape[0], device=device), per_graph, output_size=n_edges
    )
    local = torch.arange(n_edges, device=device) - edge_start[graph_of_edge]
    own = n_pairs[graph_of_edge]
    first = local < own
    pair_of_edge = pair_start[graph_of_edge] + torch.where(first, local, local - own)
    unique = torch.nonzero(first).squeeze(1)
    return unique, pair_of_edge


def atom_batch(graph: Data | Batch) -> torch.Tensor:
    """Configuration index of every atom, long [n_atoms] (zeros for an unbatched graph)."""
    batch = getattr(graph, BATCH, None)
    if batch is None:
        return torch.zeros(graph[Z].shape[0], dtype=torch.long, device=graph[Z].device)
    return batch


def n_configs(graph: Data | Batch) -> int:
    """Number of configurations in a graph or batch."""
    return int(graph[N_ATOMS].shape[0])


class GraphDataset(list):
    """The graphs of a dataset, built once (a plain list of ``Data``).

    Args:
        configs: the configurations (``ase.Atoms``).
        cutoff: neighbour cutoff (Angstrom).
        target: ``atoms.info`` key of the target energy (default ``keys.ENERGY_DFT``, eV);
            configurations lacking it get no ``y``. ``None`` sets no target.
        progress: show a progress bar.
    """

    def __init__(
        self,
        configs: Sequence[ase.Atoms],
        cutoff: float,
        *,
        target: str | None = keys.ENERGY_DFT,
        progress: bool = True,
    ) -> None:
        graphs = [
            atoms_to_data(
                atoms,
                cutoff,
                target=None if target is None else atoms.info.get(target),
            )
            for atoms in tqdm(configs, desc="graphs", disable=not progress, leave=False)
        ]
        super().__init__(graphs)
        self.cutoff = float(cutoff)


def make_loader(
    graphs: Sequence[Data],
    batch_size: int = 32,
    *,
    shuffle: bool = False,
    seed: int = 0,
    **kwargs: Any,
) -> DataLoader:
    """A PyG ``DataLoader`` over prebuilt graphs; shuffling uses its own seeded generator."""
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(
        list(graphs), batch_size=batch_size, shuffle=shuffle, generator=generator, **kwargs
    )
