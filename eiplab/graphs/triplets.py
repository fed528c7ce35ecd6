"""Triplets (k -> j -> i) of a periodic neighbour graph, built frugally and consumed in chunks.

A triplet is a pair of edges sharing atom j: edge ``kj`` (k -> j) and edge ``ji`` (j -> i),
following the edge convention of :mod:`eiplab.graphs.build` (``edge_index[0]`` = source /
neighbour, ``edge_index[1]`` = target / centre, ``r_ij = pos[j] - pos[i] + S_ij @ cell``).
The reverse edge of ``ji`` (source i, target j, shift ``-S_ji``) is excluded; an edge to
another image of the same atom is kept, so 1-atom periodic cells have triplets.

Two things keep memory bounded on dense periodic graphs (250 Al atoms, 7 A: ~87 neighbours):

* triplets are built only among *short* edges (length < ``triplet_cutoff``, e.g. 4.5 A
  under a 7 A edge cutoff), so the quadratic blow-up is ~(4.5/7)^6 = 7% of the full one;
* the triplets are sorted by target edge, and :func:`triplet_chunks` cuts them into
  contiguous pieces aligned on target edges, so a model can compute and aggregate one piece
  at a time (and checkpoint it) without materialising per-triplet features for all.

Triplet indices are discrete; they are built without autograd inside the model (edge lengths
come from positions, which only the model has), so batching needs no index bookkeeping.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Triplets:
    """Triplets among the short edges of a graph.

    Attributes:
        edge_ids: long [n_short]; global ids of the short edges (ascending). Triplet indices
            below are *local*: positions in this array.
        idx_kj: long [n_triplets]; local id of edge k -> j.
        idx_ji: long [n_triplets]; local id of edge j -> i (non-decreasing).
        ptr: long [n_short + 1]; triplets of local edge e are ``ptr[e]:ptr[e + 1]``.
    """

    edge_ids: torch.Tensor
    idx_kj: torch.Tensor
    idx_ji: torch.Tensor
    ptr: torch.Tensor

    @property
    def n_short(self) -> int:
        return int(self.edge_ids.numel())

    def __len__(self) -> int:
        return int(self.idx_kj.numel())


@torch.no_grad()
def build_triplets(
    edge_index: torch.Tensor,
    cell_shift: torch.Tensor,
    edge_length: torch.Tensor | None = None,
    triplet_cutoff: float | None = None,
) -> Triplets:
    """All triplets (kj, ji) among edges shorter than ``triplet_cutoff``.

    Args:
        edge_index: long [2, n_edges]; row 0 = source j, row 1 = target i.
        cell_shift: [n_edges, 3]; integer image offsets (any dtype holding integers).
        edge_length: float [n_edges], Angstrom; needed when ``triplet_cutoff`` is set.
        triplet_cutoff: Angstrom; only edges with length < cutoff take part. ``None``: all.

    Returns:
        :class:`Triplets`. Memory: a few long arrays of length n_triplets, no features.
    """
    device = edge_index.device
    n_edges = edge_index.shape[1]
    if triplet_cutoff is None:
        edge_ids = torch.arange(n_edges, device=device)
    else:
        if edge_length is None:
            raise ValueError("edge_length is required with a triplet_cutoff")
        edge_ids = torch.nonzero(edge_length < triplet_cutoff).flatten()
    src, dst = edge_index[0, edge_ids], edge_index[1, edge_ids]  # [n_short] each
    shift = torch.round(cell_shift[edge_ids].double()).long()  # [n_short, 3]
    n_short = edge_ids.numel()
    n_nodes = int(edge_index.max()) + 1 if n_edges else 0

    # Edges grouped by their target atom (CSR): incoming[start[a]:start[a+1]] end at atom a.
    incoming = torch.argsort(dst, stable=True)  # [n_short]
    in_count = torch.bincount(dst, minlength=n_nodes)  # [n_nodes]
    start = torch.zeros(n_nodes + 1, dtype=torch.long, device=device)
    start[1:] = torch.cumsum(in_count, 0)

    # Candidate kj edges of target edge ji: every edge ending at j = src[ji].
    per_edge = in_count[src] if n_short else in_count.new_zeros(0)  # [n_short]
    idx_ji = torch.repeat_interleave(torch.arange(n_short, device=device), per_edge)  # [T']
    first = torch.zeros(n_short, dtype=torch.long, device=device)
    first[1:] = torch.cumsum(per_edge, 0)[:-1]
    rank = torch.arange(idx_ji.numel(), device=device) - first[idx_ji]  # position among them
    idx_kj = incoming[start[src[idx_ji]] + rank]  # [T']

    # Drop the reverse edge: k == i and S_kj == -S_ji (same pair, opposite direction).
    reverse = (src[idx_kj] == dst[idx_ji]) & (shift[idx_kj] == -shift[idx_ji]).all(dim=1)
    keep = ~reverse
    idx_kj, idx_ji = idx_kj[keep], idx_ji[keep]
    ptr = torch.zeros(n_short + 1, dtype=torch.long, device=device)
    ptr[1:] = torch.cumsum(torch.bincount(idx_ji, minlength=n_short), 0)
    return Triplets(edge_ids=edge_ids, idx_kj=idx_kj, idx_ji=idx_ji, ptr=ptr)


def triplet_chunks(triplets: Triplets, chunk_size: int) -> list[tuple[int, int, int, int]]:
    """Cut triplets into contiguous pieces aligned on target edges.

    Args:
        triplets: from :func:`build_triplets`.
        chunk_size: wanted triplets per piece; a piece holds at most ``chunk_size`` plus the
            triplets of one target edge (an edge is never split).

    Returns:
        ``[(e0, e1, t0, t1), ...]``: local target edges ``e0:e1`` own exactly the triplets
        ``t0:t1``. The pieces cover all short edges ``0:n_short`` in order (edges without
        triplets included), so per-piece outputs concatenate to ``[n_short, ...]``.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    n_short, n_trip = triplets.n_short, len(triplets)
    if n_short == 0:
        return []
    ptr = triplets.ptr
    marks = torch.arange(chunk_size, max(n_trip, chunk_size), chunk_size, device=ptr.device)
    cuts = torch.searchsorted(ptr, marks, right=False)  # first edge starting at/after a mark
    cuts = torch.unique(torch.cat([cuts.new_tensor([0, n_short]), cuts.clamp(0, n_short)]))
    bounds = cuts.tolist()
    ptr_at = ptr[cuts].tolist()
    return [(bounds[c], bounds[c + 1], ptr_at[c], ptr_at[c + 1]) for c in range(len(bounds) - 1)]
