"""GemNet-T style representation (Gasteiger et al. 2021) with bounded memory.

Directional message passing on edge embeddings ``m_ji`` (edge j -> i) with triplets
k -> j -> i. Per interaction block (shifted softplus ``ssp`` throughout, per paper A.4):

    x_kj  = u_t(d_kj) ssp(W_down (ssp(W_kj m_kj) * W_rbf e(d_kj)))          [S, D_t]
    A_ji  = sum_k Y_l(cos a_kji) x_kj                                         [S, L, D_t]
    t_ji  = W_bil vec( sum_{l,n} W_sbf[l, n, b] j_l(z_ln d_ji / c_t) u_t(d_ji) A_ji[l] )
    m_ji <- residual layers of  (ssp(W_ji m_ji) + ssp(W_up t_ji)) / sqrt 2     (edges)
    h_i  <- h_i + AtomMLP( sum_j m_ji * W_a e(d_ji) )                         (atoms)
    m_ji <- (m_ji + residual(ssp(W_i h_i + W_j h_j + W_m m_ji))) / sqrt 2      (edges)

``e`` is the Bessel radial basis with a polynomial envelope on the edge cutoff ``c``;
``j_l(z_ln d / c_t) Y_l(angle)`` is the 2-D spherical basis on (distance, angle) with the
envelope ``u_t`` on the *triplet* cutoff ``c_t <= c``. As in GemNet's efficient bilinear
layer, the radial part sits on the edge that receives the message (``d_ji``), ``d_kj``
enters through ``x_kj``, and per triplet only ``D_t + L`` numbers are formed (the sum over
k is a batched matrix product on a padded [edges, k_max] layout). Features returned per atom
are ``h`` after the last block = embedding + the atom updates of every block (GemNet's sum
over block outputs). Every term vanishes smoothly when an edge leaves either cutoff.

Memory (the paper's GemNet ran out of memory on 250-atom Al cells at 7 A):
- triplets only among edges shorter than ``triplet_cutoff`` (:mod:`eiplab.graphs.triplets`);
  longer edges still carry messages and update atoms, without triplet input;
- the triplet interaction runs in chunks of ``chunk_size`` triplets aligned on target edges;
- when gradients are recorded on a large graph (``checkpoint=None``: at least
  ``checkpoint_min_edges`` edges; ``True``/``False`` force it), blocks, their steps and the
  triplet chunks are nested ``torch.utils.checkpoint`` regions: the forward pass keeps one
  edge tensor per block, and the backward pass recomputes one block, then one step of it,
  at a time (about 2x the forward compute, ~8x less memory at 7 A).
Simplifications vs GemNet-T: no learned scale factors, no symmetric (reverse-edge) triplet
message, the atom state is the output (no separate output blocks); a second, shorter
triplet cutoff (GemNet-OC uses separate cutoffs per interaction type in the same spirit).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from scipy.optimize import brentq
from scipy.special import spherical_jn
from torch import nn
from torch.utils.checkpoint import checkpoint as torch_checkpoint
from torch_geometric.data import Batch, Data

from eiplab.graphs.build import CELL_SHIFT, EDGE_INDEX, Z, edge_vectors
from eiplab.graphs.triplets import Triplets, build_triplets, triplet_chunks
from eiplab.models.base import Representation, shifted_softplus

INV_SQRT2 = 1.0 / math.sqrt(2.0)


@dataclass
class GemNetConfig:
    """Settings of :class:`GemNet` (lengths in Angstrom)."""

    width: int = 128  # atom and edge embedding width D (paper A.4: 128)
    n_layers: int = 5  # interaction blocks (paper: 5)
    cutoff: float = 5.0  # edge cutoff c; must not exceed the graphs' cutoff
    triplet_cutoff: float | None = 5.0  # c_t; triplets among edges shorter; None: = cutoff
    n_species_max: int = 100  # embedding table size (atomic numbers below it)
    n_radial: int = 6  # radial basis functions (edges and triplets)
    n_spherical: int = 7  # angular orders l = 0 .. n_spherical - 1
    triplet_width: int = 64  # D_t, down-projected width of triplet messages
    n_bilinear: int = 8  # B, basis channels of the bilinear layer
    envelope_exponent: int = 5  # p of the polynomial envelope
    chunk_size: int = 65536  # triplets per chunk
    checkpoint: bool | None = None  # None: only when grad is on and the graph is large
    checkpoint_min_edges: int = 50000  # "large" for checkpoint=None (~3 GiB of activations)

    def __post_init__(self) -> None:
        self.triplet_cutoff = self.cutoff if self.triplet_cutoff is None else self.triplet_cutoff
        self.triplet_cutoff = min(float(self.triplet_cutoff), float(self.cutoff))


# --- bases -------------------------------------------------------------------------------------
def envelope(x: torch.Tensor, p: int) -> torch.Tensor:
    """Polynomial envelope u(x) (GemNet/DimeNet), smooth to 0 at x = 1; 0 beyond. [...]->[...]."""
    a, b, c = -(p + 1) * (p + 2) / 2, p * (p + 2), -p * (p + 1) / 2
    u = 1 + a * x**p + b * x ** (p + 1) + c * x ** (p + 2)
    return torch.where(x < 1, u, torch.zeros_like(u))


def _jn(x: float, order: int) -> float:
    return spherical_jn(order, x)


def spherical_bessel_zeros(n_orders: int, n_zeros: int) -> np.ndarray:
    """First ``n_zeros`` positive zeros of j_l for l < n_orders, [n_orders, n_zeros].

    Zeros of j_l interlace those of j_{l-1}, so each is bracketed by two of the previous.
    """
    zeros = np.zeros((n_orders, n_zeros + n_orders))
    zeros[0] = np.pi * np.arange(1, n_zeros + n_orders + 1)
    for order in range(1, n_orders):
        prev = zeros[order - 1]
        for k in range(n_zeros + n_orders - order):
            zeros[order, k] = brentq(_jn, prev[k], prev[k + 1], args=(order,))
    return zeros[:, :n_zeros]


def spherical_bessel(l_max: int, x: torch.Tensor) -> list[torch.Tensor]:
    """j_0 .. j_{l_max}(x) by upward recurrence (accurate for x >~ l; here x >= z_l1 d / c_t)."""
    sin, cos = torch.sin(x), torch.cos(x)
    out = [sin / x, sin / x**2 - cos / x]
    for order in range(1, l_max):
        out.append((2 * order + 1) / x * out[order] - out[order - 1])
    return out[: l_max + 1]


def legendre_harmonics(cos: torch.Tensor, n_orders: int) -> torch.Tensor:
    """Real spherical harmonics Y_l^0 = sqrt((2l+1)/4pi) P_l(cos): [T] -> [T, n_orders]."""
    p = [torch.ones_like(cos), cos]
    for order in range(1, n_orders - 1):
        p.append(((2 * order + 1) * cos * p[order] - order * p[order - 1]) / (order + 1))
    norms = [math.sqrt((2 * order + 1) / (4 * math.pi)) for order in range(n_orders)]
    return torch.stack([n * q for n, q in zip(norms, p[:n_orders], strict=True)], dim=1)


class RadialBessel(nn.Module):
    """sqrt(2/c) sin(n pi d / c) / d * u(d / c): distances [E] -> [E, n_radial]."""

    def __init__(self, n_radial: int, cutoff: float, p: int):
        super().__init__()
        self.cutoff, self.p = float(cutoff), p
        freq = math.pi * torch.arange(1, n_radial + 1, dtype=torch.float)
        self.register_buffer("freq", freq, persistent=False)

    def forward(self, d: torch.Tensor) -> torch.Tensor:
        x = (d / self.cutoff).unsqueeze(-1)
        norm = math.sqrt(2 / self.cutoff)
        return norm * torch.sin(self.freq.to(d.dtype) * x) / d.unsqueeze(-1) * envelope(x, self.p)


class SphericalRadial(nn.Module):
    """Radial part of the spherical basis, N_ln j_l(z_ln d / c_t) u(d / c_t): [E] -> [E, L, R].

    Evaluated in float64 (upward recurrence) and cast back.
    """

    def __init__(self, n_spherical: int, n_radial: int, cutoff: float, p: int):
        super().__init__()
        self.cutoff, self.p, self.n_spherical = float(cutoff), p, n_spherical
        zeros = spherical_bessel_zeros(n_spherical, n_radial)  # [L, R]
        norm = np.stack(
            [np.sqrt(2.0) / np.abs(spherical_jn(o + 1, zeros[o])) for o in range(n_spherical)]
        )
        self.register_buffer("zeros", torch.as_tensor(zeros), persistent=False)  # float64
        self.register_buffer("norm", torch.as_tensor(norm), persistent=False)

    def forward(self, d: torch.Tensor) -> torch.Tensor:
        x = (d.double() / self.cutoff)[:, None]  # [E, 1]
        per_order = []
        for order in range(self.n_spherical):
            arg = x * self.zeros[order].double()  # [E, R]
            per_order.append(spherical_bessel(order, arg)[order] * self.norm[order].double())
        out = torch.stack(per_order, dim=1) * envelope(x, self.p)[:, :, None]  # [E, L, R]
        return out.to(d.dtype)


class Residual(nn.Module):
    """x + ssp(W2 ssp(W1 x)), scaled by 1/sqrt(2)."""

    def __init__(self, width: int):
        super().__init__()
        self.lin1, self.lin2 = nn.Linear(width, width), nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x + shifted_softplus(self.lin2(shifted_softplus(self.lin1(x))))) * INV_SQRT2


@dataclass
class ChunkPlan:
    """Indices of one chunk of triplets in a padded [n_edges, k_max] layout (no autograd)."""

    e0: int  # first local target edge
    n: int  # target edges e0 : e0 + n
    k_max: int  # most triplets of one target edge in the chunk
    idx_kj: torch.Tensor  # long [t], local short-edge id of k -> j
    idx_ji: torch.Tensor  # long [t], local short-edge id of j -> i
    slot: torch.Tensor  # long [t], (ji - e0) * k_max + rank of the triplet within ji
    pad: torch.Tensor  # long [n * k_max], kj of each slot, or n_short (a zero row) if empty


def plan_chunks(trip: Triplets, chunk_size: int) -> list[ChunkPlan]:
    """Padded index layouts of the chunks of :func:`triplet_chunks`."""
    plans = []
    for e0, e1, t0, t1 in triplet_chunks(trip, chunk_size):
        if t1 == t0:
            continue  # target edges without triplets receive zeros
        idx_kj, idx_ji = trip.idx_kj[t0:t1], trip.idx_ji[t0:t1]
        counts = trip.ptr[e0 + 1 : e1 + 1] - trip.ptr[e0:e1]  # [n]
        k_max = int(counts.max())
        rank = torch.arange(t0, t1, device=idx_ji.device) - trip.ptr[idx_ji]
        slot = (idx_ji - e0) * k_max + rank
        pad = torch.full(((e1 - e0) * k_max,), trip.n_short, dtype=torch.long, device=slot.device)
        pad[slot] = idx_kj
        plans.append(ChunkPlan(e0, e1 - e0, k_max, idx_kj, idx_ji, slot, pad))
    return plans


@dataclass
class Geometry:
    """Per-batch quantities shared by all blocks (E edges, S short edges, T triplets)."""

    source: torch.Tensor  # long [E], j
    target: torch.Tensor  # long [E], i
    n_atoms: int
    rbf: torch.Tensor  # [E, R], edge Bessel basis (edge cutoff)
    triplets: Triplets  # indices local to the short edges
    plans: list[ChunkPlan]  # chunks of triplets
    sph_radial: torch.Tensor  # [S, L, R], spherical radial basis of short edges
    unit: torch.Tensor  # [S, 3], unit vectors of short edges (i -> j)
    envelope_t: torch.Tensor  # [S], u(d / c_t) of short edges
    checkpoint: bool


def _maybe_checkpoint(enabled: bool, fn, *args):
    """fn(*args), as a non-reentrant checkpoint when enabled (nests; double backward works).

    The model has no randomness, so the RNG state is not saved.
    """
    if not enabled:
        return fn(*args)
    return torch_checkpoint(fn, *args, use_reentrant=False, preserve_rng_state=False)


def _gather(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x[index] along dim 0 (index_select: its backward is a fast index_add on CPU)."""
    return x.index_select(0, index)


# --- blocks ------------------------------------------------------------------------------------
class TripletInteraction(nn.Module):
    """Messages from edges k -> j into edges j -> i through the spherical basis.

    Efficient bilinear form (as in GemNet): per triplet only ``D_t + L`` numbers are formed;
    ``A_ji[l] = sum_k Y_l(cos a_kji) x_kj`` is a batched matrix product on a padded layout,
    then the radial basis of ``d_ji`` mixes the orders (``W_sbf``) and ``W_bil`` contracts.
    """

    def __init__(self, cfg: GemNetConfig):
        super().__init__()
        d, dt, b = cfg.width, cfg.triplet_width, cfg.n_bilinear
        self.lin_kj = nn.Linear(d, d)
        self.rbf_kj = nn.Linear(cfg.n_radial, d, bias=False)
        self.down = nn.Linear(d, dt, bias=False)
        self.basis = nn.Parameter(torch.empty(cfg.n_spherical, cfg.n_radial, b))  # W_sbf
        nn.init.normal_(self.basis, std=1.0 / math.sqrt(cfg.n_spherical * cfg.n_radial))
        self.bilinear = nn.Linear(b * dt, dt, bias=False)
        self.up = nn.Linear(dt, d, bias=False)  # no bias: edges without triplets get 0

    def _chunk(self, x_ext, unit, rad_w, plan: ChunkPlan) -> torch.Tensor:
        """Aggregated triplet messages of target edges plan.e0 : e0 + n -> [n, D_t]."""
        cos = -(_gather(unit, plan.idx_kj) * _gather(unit, plan.idx_ji)).sum(-1)  # [t], at j
        ylm = legendre_harmonics(cos.clamp(-1.0, 1.0), rad_w.shape[2])  # [t, L]
        y_pad = ylm.new_zeros(plan.n * plan.k_max, ylm.shape[1]).index_copy(0, plan.slot, ylm)
        x_pad = _gather(x_ext, plan.pad).view(plan.n, plan.k_max, -1)  # [n, K, D_t]
        agg = torch.bmm(y_pad.view(plan.n, plan.k_max, -1).transpose(1, 2), x_pad)  # [n, L, D_t]
        z = torch.bmm(rad_w.narrow(0, plan.e0, plan.n), agg)  # [n, B, D_t]
        return self.bilinear(z.flatten(1))  # [n, D_t]

    def forward(self, m: torch.Tensor, geo: Geometry) -> torch.Tensor:
        n_edges, trip = m.shape[0], geo.triplets
        out = m.new_zeros(n_edges, self.up.out_features)  # [E, D]
        if len(trip) == 0:
            return out
        ids = trip.edge_ids
        x = shifted_softplus(self.lin_kj(_gather(m, ids))) * self.rbf_kj(_gather(geo.rbf, ids))
        x = shifted_softplus(self.down(x)) * geo.envelope_t.unsqueeze(1)  # [S, D_t]
        x_ext = torch.cat([x, x.new_zeros(1, x.shape[1])])  # [S + 1, D_t], last row: padding
        rad_w = torch.einsum("slr,lrb->sbl", geo.sph_radial, self.basis)  # [S, B, L]
        pieces, done = [], 0  # chunks are in edge order; edges between them get zeros
        for plan in geo.plans:
            if plan.e0 > done:
                pieces.append(x.new_zeros(plan.e0 - done, x.shape[1]))
            pieces.append(
                _maybe_checkpoint(geo.checkpoint, self._chunk, x_ext, geo.unit, rad_w, plan)
            )
            done = plan.e0 + plan.n
        pieces.append(x.new_zeros(trip.n_short - done, x.shape[1]))
        t = torch.cat(pieces)  # [S, D_t]
        return out.index_copy(0, ids, shifted_softplus(self.up(t)))


class InteractionBlock(nn.Module):
    """Triplet interaction, edge residuals, atom update and edge update from atoms."""

    def __init__(self, cfg: GemNetConfig):
        super().__init__()
        d = cfg.width
        self.triplet = TripletInteraction(cfg)
        self.lin_ji = nn.Linear(d, d)
        self.before_skip = Residual(d)
        self.after_skip = nn.Sequential(Residual(d), Residual(d))
        self.atom_rbf = nn.Linear(cfg.n_radial, d, bias=False)
        self.atom_in = nn.Linear(d, d)
        self.atom_res = nn.Sequential(Residual(d), Residual(d))
        # W_cat [h_i, h_j, m] = W_i h_i + W_j h_j + W_m m: the h parts are applied per atom
        self.cat_i, self.cat_j = nn.Linear(d, d, bias=False), nn.Linear(d, d, bias=False)
        self.cat_m = nn.Linear(d, d)
        self.concat_res = Residual(d)

    def _edges(self, m: torch.Tensor, geo: Geometry) -> torch.Tensor:
        x = (shifted_softplus(self.lin_ji(m)) + self.triplet(m, geo)) * INV_SQRT2  # [E, D]
        return (m + self.before_skip(x)) * INV_SQRT2

    def _atoms(self, h: torch.Tensor, m: torch.Tensor, geo: Geometry) -> torch.Tensor:
        """rbf-weighted sum of incoming edge messages (0 at the edge cutoff), then an MLP."""
        a = h.new_zeros(geo.n_atoms, m.shape[1])
        a = a.index_add(0, geo.target, m * self.atom_rbf(geo.rbf))  # [n_atoms, D]
        return h + self.atom_res(shifted_softplus(self.atom_in(a)))

    def _concat(self, h: torch.Tensor, m: torch.Tensor, geo: Geometry) -> torch.Tensor:
        cat = _gather(self.cat_i(h), geo.target) + _gather(self.cat_j(h), geo.source)
        return (m + self.concat_res(shifted_softplus(cat + self.cat_m(m)))) * INV_SQRT2

    def forward(self, h: torch.Tensor, m: torch.Tensor, geo: Geometry):
        """h [n_atoms, D], m [E, D] -> updated (h, m).

        With checkpointing, each step below is a nested checkpoint: when the block is
        recomputed in the backward pass it stores only the steps' inputs, and then one step's
        internals at a time.
        """
        ckpt = geo.checkpoint
        m = _maybe_checkpoint(ckpt, self._edges, m, geo)
        for layer in self.after_skip:
            m = _maybe_checkpoint(ckpt, layer, m)
        h = _maybe_checkpoint(ckpt, self._atoms, h, m, geo)
        m = _maybe_checkpoint(ckpt, self._concat, h, m, geo)
        return h, m


class GemNet(Representation):
    """GemNet-T style representation: batch -> atom features [n_atoms, width].

    Args:
        width: atom and edge embedding width (paper: 128).
        n_layers: interaction blocks (paper: 5).
        cutoff: edge cutoff (Angstrom); must not exceed the graphs' cutoff (longer edges are
            dropped).
        n_species_max: embedding table size.
        **options: other :class:`GemNetConfig` fields (``triplet_cutoff``, ``n_radial``,
            ``n_spherical``, ``triplet_width``, ``n_bilinear``, ``chunk_size``,
            ``checkpoint``...).
    """

    def __init__(
        self,
        width: int = 128,
        n_layers: int = 5,
        cutoff: float = 5.0,
        n_species_max: int = 100,
        **options,
    ):
        super().__init__()
        cfg = self.config = GemNetConfig(
            width=width, n_layers=n_layers, cutoff=cutoff, n_species_max=n_species_max, **options
        )
        self.width, self.cutoff = cfg.width, float(cfg.cutoff)
        self.embedding = nn.Embedding(cfg.n_species_max, cfg.width)
        self.rbf = RadialBessel(cfg.n_radial, cfg.cutoff, cfg.envelope_exponent)
        self.sph_radial = SphericalRadial(
            cfg.n_spherical, cfg.n_radial, cfg.triplet_cutoff, cfg.envelope_exponent
        )
        # edge embedding W [h_i, h_j, e_rbf] + b, with the atom parts applied per atom
        self.embed_i = nn.Linear(cfg.width, cfg.width, bias=False)
        self.embed_j = nn.Linear(cfg.width, cfg.width, bias=False)
        self.embed_rbf = nn.Linear(cfg.n_radial, cfg.width)
        self.blocks = nn.ModuleList(InteractionBlock(cfg) for _ in range(cfg.n_layers))

    @classmethod
    def from_config(cls, config: GemNetConfig) -> GemNet:
        """Build from a :class:`GemNetConfig`."""
        return cls(**asdict(config))

    def geometry(self, batch: Data | Batch) -> Geometry:
        """Edges inside the cutoff, their bases, triplets and chunk plans."""
        cfg = self.config
        vec = edge_vectors(batch)  # [E0, 3], from positions (autograd forces)
        dist = vec.norm(dim=-1)  # [E0]
        keep = torch.nonzero(dist.detach() < cfg.cutoff).flatten()  # [E]
        vec, dist = _gather(vec, keep), _gather(dist, keep)
        edge_index, shift = batch[EDGE_INDEX][:, keep], batch[CELL_SHIFT][keep]
        trip = build_triplets(edge_index, shift, dist.detach(), cfg.triplet_cutoff)
        d_short = _gather(dist, trip.edge_ids)  # [S]
        use_ckpt = torch.is_grad_enabled() and (
            cfg.checkpoint
            if cfg.checkpoint is not None
            else keep.numel() >= cfg.checkpoint_min_edges
        )
        sph = _maybe_checkpoint(use_ckpt and d_short.numel() > 0, self.sph_radial, d_short)
        geo = Geometry(
            source=edge_index[0],
            target=edge_index[1],
            n_atoms=int(batch[Z].shape[0]),
            rbf=self.rbf(dist),
            triplets=trip,
            plans=plan_chunks(trip, cfg.chunk_size),
            sph_radial=sph,
            unit=_gather(vec, trip.edge_ids) / d_short.unsqueeze(1),
            envelope_t=envelope(d_short / cfg.triplet_cutoff, cfg.envelope_exponent),
            checkpoint=bool(use_ckpt),
        )
        return geo

    def forward(self, batch: Data | Batch) -> torch.Tensor:
        """Per-atom features, float [n_atoms, width]."""
        z = batch[Z]
        if z.numel() and int(z.max()) >= self.config.n_species_max:
            raise ValueError(
                f"GemNet supports atomic numbers below n_species_max="
                f"{self.config.n_species_max}; the batch has {int(z.max())}"
            )
        geo = self.geometry(batch)
        h = self.embedding(z)  # [n_atoms, D]
        edge_in = _gather(self.embed_i(h), geo.target) + _gather(self.embed_j(h), geo.source)
        m = shifted_softplus(edge_in + self.embed_rbf(geo.rbf))  # [E, D]
        for block in self.blocks:
            h, m = _maybe_checkpoint(geo.checkpoint, block, h, m, geo)
        return h
