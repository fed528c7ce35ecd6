"""GemNet representation and triplet construction (tiny widths: fast, seeded, no timing)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk
from torch_geometric.data import Batch

from eiplab.graphs.build import CELL, CELL_SHIFT, EDGE_INDEX, POS, atoms_to_data, edge_vectors
from eiplab.graphs.triplets import build_triplets, triplet_chunks
from eiplab.models.gemnet import (
    GemNet,
    GemNetConfig,
    legendre_harmonics,
    spherical_bessel,
    spherical_bessel_zeros,
)

CUTOFF, TRIPLET_CUTOFF = 4.0, 3.2


def _graph(atoms: Atoms, cutoff: float = CUTOFF, dtype=torch.float64):
    data = atoms_to_data(atoms, cutoff)
    for key in (POS, CELL, CELL_SHIFT):
        data[key] = data[key].to(dtype)
    return data


def _batch(*configs: Atoms, cutoff: float = CUTOFF) -> Batch:
    return Batch.from_data_list([_graph(a, cutoff) for a in configs])


def _model(seed: int = 0, **options) -> GemNet:
    torch.manual_seed(seed)
    settings = dict(width=16, n_layers=2, cutoff=CUTOFF, triplet_cutoff=TRIPLET_CUTOFF)
    settings.update(options)
    return GemNet(**settings).double().eval()


def _one_atom_cell() -> Atoms:
    return bulk("Al", "fcc", a=3.6)  # 1 atom, 12 images at 2.55 A, 6 at 3.6 A


def _rattled_cell(seed: int = 3) -> Atoms:
    atoms = bulk("Si", "diamond", a=5.43)  # 2 atoms
    atoms.rattle(0.1, seed=seed)
    return atoms


def _dimer() -> Atoms:
    return Atoms("Al2", positions=[[0, 0, 0], [0.3, 0.2, 2.4]])


def _trimer() -> Atoms:
    return Atoms("AlSiAl", positions=[[0, 0, 0], [2.3, 0.1, 0.2], [0.9, 2.1, -0.3]])


def _brute_force(graph, triplet_cutoff):
    """Every pair (kj, ji) with target(kj) == source(ji), both short, k's image not on i."""
    vec = edge_vectors(graph)
    dist = vec.norm(dim=1)
    src, dst = graph[EDGE_INDEX]
    found = set()
    for a, b in itertools.product(range(src.numel()), repeat=2):
        if dst[a] != src[b] or dist[a] >= triplet_cutoff or dist[b] >= triplet_cutoff:
            continue
        if (vec[a] + vec[b]).norm() < 1e-8:  # k -> j -> i returns to i: the reverse edge
            continue
        found.add((a, b))
    return found


def _as_global_pairs(trip):
    kj = trip.edge_ids[trip.idx_kj].tolist()
    ji = trip.edge_ids[trip.idx_ji].tolist()
    return list(zip(kj, ji, strict=True))


CONFIGS = {
    "one-atom-cell": _one_atom_cell,
    "two-atom-cell": _rattled_cell,
    "dimer": _dimer,
    "trimer": _trimer,
    "one-atom-small-cell": lambda: Atoms("Si", cell=np.diag([2.2, 2.5, 2.9]), pbc=True),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("triplet_cutoff", [None, TRIPLET_CUTOFF])
def test_triplets_match_brute_force(name, triplet_cutoff):
    graph = _graph(CONFIGS[name]())
    dist = edge_vectors(graph).norm(dim=1)
    trip = build_triplets(graph[EDGE_INDEX], graph[CELL_SHIFT], dist, triplet_cutoff)
    pairs = _as_global_pairs(trip)
    assert len(pairs) == len(set(pairs))  # no duplicates
    assert set(pairs) == _brute_force(graph, triplet_cutoff or float("inf"))
    assert torch.all(trip.idx_ji[1:] >= trip.idx_ji[:-1])  # sorted by target edge
    assert trip.ptr[-1] == len(trip)


def test_reverse_edge_excluded_and_known_counts():
    dimer = _graph(_dimer())
    trip = build_triplets(dimer[EDGE_INDEX], dimer[CELL_SHIFT])
    assert dimer[EDGE_INDEX].shape[1] == 2 and len(trip) == 0  # only the reverse edge

    trimer = _graph(_trimer())  # triangle: 6 edges, one triplet into each
    trip = build_triplets(trimer[EDGE_INDEX], trimer[CELL_SHIFT])
    assert len(trip) == 6
    src, dst = trimer[EDGE_INDEX]
    kj, ji = trip.edge_ids[trip.idx_kj], trip.edge_ids[trip.idx_ji]
    assert torch.all(src[kj] != dst[ji])  # k != i in a cluster

    # 1-atom cell: every edge is i -> image of i; all other edges into i make triplets,
    # including those to the same atom index, but not the reverse (opposite shift) edge
    cell = _graph(_one_atom_cell())
    n_edges = cell[EDGE_INDEX].shape[1]
    trip = build_triplets(cell[EDGE_INDEX], cell[CELL_SHIFT])
    assert n_edges == 18 and len(trip) == n_edges * (n_edges - 1)
    shifts = cell[CELL_SHIFT]
    assert not torch.any(
        (shifts[trip.idx_kj] == -shifts[trip.idx_ji]).all(dim=1)
    )  # the reverse edge never pairs with its own edge


def test_triplet_cutoff_limits_count():
    graph = _graph(_rattled_cell(), cutoff=5.0)
    dist = edge_vectors(graph).norm(dim=1)
    full = build_triplets(graph[EDGE_INDEX], graph[CELL_SHIFT], dist, None)
    short = build_triplets(graph[EDGE_INDEX], graph[CELL_SHIFT], dist, 3.0)
    n_short = int((dist < 3.0).sum())
    assert short.n_short == n_short < dist.numel()
    assert 0 < len(short) < len(full) / 4
    assert torch.all(dist[short.edge_ids] < 3.0)
    # and the model builds its triplets with its own triplet cutoff
    batch = Batch.from_data_list([graph])
    with torch.no_grad():
        in_model = _model(cutoff=5.0, triplet_cutoff=3.0).geometry(batch).triplets
        all_in_model = _model(cutoff=5.0, triplet_cutoff=None).geometry(batch).triplets
    assert len(in_model) == len(short) and len(all_in_model) == len(full)


def test_chunks_cover_edges_and_respect_size():
    graph = _graph(_one_atom_cell(), cutoff=5.0)
    trip = build_triplets(graph[EDGE_INDEX], graph[CELL_SHIFT])
    per_edge = int((trip.ptr[1:] - trip.ptr[:-1]).max())
    chunks = triplet_chunks(trip, chunk_size=50)
    assert chunks[0][0] == 0 and chunks[-1][1] == trip.n_short
    assert chunks[0][2] == 0 and chunks[-1][3] == len(trip)
    for (e0, e1, t0, t1), nxt in zip(chunks, chunks[1:] + [None], strict=True):
        assert t1 - t0 <= 50 + per_edge
        assert torch.all((trip.idx_ji[t0:t1] >= e0) & (trip.idx_ji[t0:t1] < e1))
        if nxt is not None:
            assert nxt[0] == e1 and nxt[2] == t1


def test_basis_functions_match_scipy():
    from scipy.special import eval_legendre, spherical_jn

    zeros = spherical_bessel_zeros(7, 6)
    assert np.allclose([spherical_jn(o, zeros[o]) for o in range(7)], 0, atol=1e-10)
    assert np.all(np.diff(zeros, axis=1) > 0) and zeros[1, 0] == pytest.approx(4.493409458)
    x = torch.linspace(1.0, 30.0, 200, dtype=torch.float64)
    values = spherical_bessel(6, x)
    for order in range(7):
        np.testing.assert_allclose(values[order], spherical_jn(order, x.numpy()), atol=1e-10)
    cos = torch.linspace(-1, 1, 50, dtype=torch.float64)
    ylm = legendre_harmonics(cos, 7)
    for order in range(7):
        norm = np.sqrt((2 * order + 1) / (4 * np.pi))
        np.testing.assert_allclose(ylm[:, order], norm * eval_legendre(order, cos.numpy()))


def test_output_shapes_and_config():
    batch = _batch(_rattled_cell(), _dimer(), _one_atom_cell())
    model = _model()
    assert model(batch).shape == (2 + 2 + 1, 16)
    assert model.representation(batch).shape == (3, 16)
    same = GemNet.from_config(model.config).double()
    assert isinstance(same.config, GemNetConfig) and same.config == model.config
    assert GemNet(cutoff=4.0, triplet_cutoff=6.0).config.triplet_cutoff == 4.0  # clipped


def test_registry_builds_gemnet():
    from eiplab.models import ModelConfig, build_model

    config = ModelConfig(
        "gemnet",
        width=16,
        n_layers=2,
        cutoff=CUTOFF,
        n_out=1,
        options={"triplet_cutoff": TRIPLET_CUTOFF},
    )
    model = build_model(config).double()
    assert model(_batch(_trimer(), _rattled_cell())).shape == (2, 1)


def test_batched_equals_unbatched():
    configs = [_rattled_cell(), _trimer(), _one_atom_cell()]
    model = _model()
    together = model.representation(_batch(*configs))
    apart = torch.cat([model.representation(_batch(a)) for a in configs])
    torch.testing.assert_close(together, apart)


def test_permutation_translation_rotation_invariance():
    atoms = bulk("Al", "fcc", a=4.05, cubic=True)  # 4 atoms
    atoms.rattle(0.08, seed=5)
    model = _model()
    ref = model(_batch(atoms))

    perm = np.array([2, 0, 3, 1])
    permuted = model(_batch(atoms[perm]))
    torch.testing.assert_close(permuted, ref[perm])

    moved = atoms.copy()
    moved.positions += np.array([0.37, -1.2, 2.9])  # not wrapped: shifts stay consistent
    torch.testing.assert_close(model(_batch(moved)), ref)

    rotated = atoms.copy()
    rotated.rotate(37, (1, 2, 3), rotate_cell=True)
    torch.testing.assert_close(model(_batch(rotated)), ref)

    cluster = _trimer()
    ref_c = model(_batch(cluster))
    cluster.rotate(-71, (0.2, 1, -0.5))
    torch.testing.assert_close(model(_batch(cluster)), ref_c)


def test_supercell_additivity():
    atoms = _rattled_cell()
    model = _model()
    primitive = model.representation(_batch(atoms))
    double = model.representation(_batch(atoms.repeat((2, 1, 1))))
    torch.testing.assert_close(double, 2 * primitive)


def test_tiny_structures():
    """Isolated atom, 1-, 2-, 3-atom cells and clusters (fairchem #426)."""
    isolated = Atoms("Si", positions=[[0, 0, 0]])
    two_cell = Atoms("Al2", positions=[[0, 0, 0], [1.3, 1.3, 0.2]], cell=np.eye(3) * 2.7, pbc=True)
    three_cell = Atoms(
        "Si3",
        scaled_positions=[[0, 0, 0], [0.33, 0.3, 0.1], [0.6, 0.7, 0.5]],
        cell=np.diag([3.1, 2.9, 3.3]),
        pbc=True,
    )
    configs = [isolated, _one_atom_cell(), two_cell, three_cell, _dimer(), _trimer()]
    model = _model()
    batch = _batch(*configs)
    assert int(_batch(isolated)[EDGE_INDEX].shape[1]) == 0
    out = model.representation(batch)
    assert out.shape == (len(configs), 16) and torch.isfinite(out).all()
    alone = model.representation(_batch(isolated))
    torch.testing.assert_close(alone, out[:1])  # no edges: independent of the rest
    si, al = (
        model.representation(_batch(isolated)),
        model.representation(_batch(Atoms("Al", positions=[[0, 0, 0]]))),
    )
    assert not torch.allclose(si, al)  # the species still matters without neighbours


@pytest.mark.parametrize("checkpoint", [False, True])
def test_finite_difference_forces(checkpoint):
    atoms = Atoms(
        "Si3",
        scaled_positions=[[0, 0, 0], [0.3, 0.25, 0.1], [0.55, 0.7, 0.45]],
        cell=np.diag([3.6, 3.4, 3.8]),
        pbc=True,
    )
    model = _model(checkpoint=checkpoint, chunk_size=16)
    weights = torch.linspace(-1, 1, 16, dtype=torch.float64)

    def energy(batch):
        return (model.representation(batch) @ weights).sum()

    batch = _batch(atoms)
    batch[POS].requires_grad_(True)
    forces = -torch.autograd.grad(energy(batch), batch[POS])[0]
    assert forces.abs().max() > 1e-3
    step = 1e-5
    fd = torch.zeros_like(forces)
    with torch.no_grad():
        for a, k in itertools.product(range(len(atoms)), range(3)):
            plus, minus = _batch(atoms), _batch(atoms)
            plus[POS][a, k] += step
            minus[POS][a, k] -= step
            fd[a, k] = -(energy(plus) - energy(minus)) / (2 * step)
    torch.testing.assert_close(forces, fd, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(
        forces.sum(0), torch.zeros(3, dtype=torch.float64), atol=1e-9, rtol=0
    )


def test_chunking_and_checkpointing_do_not_change_results():
    batch = _batch(_rattled_cell(), _one_atom_cell())
    reference = _model(chunk_size=1 << 20, checkpoint=False)
    chunked = _model(chunk_size=7, checkpoint=True)
    chunked.load_state_dict(reference.state_dict())
    outputs, grads = [], []
    for model in (reference, chunked):
        out = model.representation(batch)
        model.zero_grad()
        out.square().sum().backward()
        outputs.append(out.detach())
        grads.append(
            torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
        )
    torch.testing.assert_close(outputs[0], outputs[1])
    torch.testing.assert_close(grads[0], grads[1])


def test_force_training_double_backward_with_checkpointing():
    """Gradients of a force loss (create_graph) are the same with and without checkpoints."""
    batch = _batch(_rattled_cell(), _one_atom_cell())
    reference = _model(chunk_size=1 << 20, checkpoint=False)
    chunked = _model(chunk_size=7, checkpoint=True)
    chunked.load_state_dict(reference.state_dict())
    grads = []
    for model in (reference, chunked):
        graph = batch.clone()
        graph[POS].requires_grad_(True)
        energy = model.representation(graph).sum()
        forces = torch.autograd.grad(energy, graph[POS], create_graph=True)[0]
        model.zero_grad()
        forces.square().sum().backward()
        grads.append(
            torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
        )
    assert grads[0].abs().max() > 0
    torch.testing.assert_close(grads[0], grads[1])


def test_unknown_species_is_an_error():
    model = _model(n_species_max=20)
    with pytest.raises(ValueError, match="n_species_max"):
        model(_batch(Atoms("Cu", positions=[[0, 0, 0]])))


def test_smooth_across_triplet_and_edge_cutoffs():
    """An edge crossing the triplet (or edge) cutoff changes the features continuously."""
    model = _model()

    def features(distance):
        atoms = Atoms(
            "Si3", positions=[[0, 0, 0], [2.2, 0, 0], [2.2 + distance * 0.6, distance * 0.8, 0]]
        )
        return model.representation(_batch(atoms))

    for crossing in (TRIPLET_CUTOFF, CUTOFF):
        below, above = features(crossing - 1e-6), features(crossing + 1e-6)
        assert (below - above).abs().max() < 1e-5
