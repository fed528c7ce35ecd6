"""Neighbour graphs against ASE's neighbor_list, edge vectors, batching and SOAP features."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk
from ase.neighborlist import neighbor_list

from eiplab import keys
from eiplab.graphs import (
    GraphDataset,
    atoms_to_data,
    build_graphs,
    edge_vectors,
    make_loader,
)
from eiplab.graphs.build import CELL_SHIFT, EDGE_INDEX, N_ATOMS, POS, X, Y, edge_pairs


def _rattled(atoms: Atoms, seed: int = 0, amount: float = 0.05) -> Atoms:
    atoms = atoms.copy()
    atoms.rattle(amount, seed=seed)
    return atoms


def _configs() -> dict[str, Atoms]:
    triclinic = Atoms(
        "Si3",
        scaled_positions=[[0, 0, 0], [0.3, 0.4, 0.1], [0.6, 0.2, 0.7]],
        cell=[[3.1, 0.0, 0.0], [0.9, 2.8, 0.0], [0.4, 0.7, 3.3]],
        pbc=True,
    )
    slab = _rattled(bulk("Al", "fcc", a=4.05, cubic=True).repeat((2, 2, 1)), seed=3)
    slab.pbc = [True, True, False]
    return {
        "diamond-2": _rattled(bulk("Si", "diamond", a=5.43), seed=1),
        "fcc-1-small-cell": bulk("Si", "fcc", a=2.9),
        "sc-1-tiny-cell": Atoms("Si", positions=[[0.1, 0.2, 0.3]], cell=np.eye(3) * 2.1, pbc=True),
        "triclinic-3": triclinic,
        "dimer": Atoms("Si2", positions=[[0, 0, 0], [0.3, 0.1, 2.3]]),
        "isolated": Atoms("Si", positions=[[1.0, 2.0, 3.0]]),
        "isolated-big-box": Atoms(
            "Si", positions=[[1.0, 2.0, 3.0]], cell=np.eye(3) * 12.0, pbc=True
        ),
        "mixed-pbc-slab": slab,
        "mixed-pbc-zero-vector": Atoms(
            "Si", positions=[[0, 0, 0]], cell=[2.4, 0.0, 2.4], pbc=[True, False, True]
        ),
    }


CONFIGS = _configs()


def _sorted_rows(a: np.ndarray) -> np.ndarray:
    return a[np.lexsort(a.T[::-1])]


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("cutoff", [3.0, 5.0])
def test_neighbours_match_ase(name: str, cutoff: float) -> None:
    atoms = CONFIGS[name]
    data = atoms_to_data(atoms, cutoff)
    i_ase, j_ase, s_ase = neighbor_list("ijS", atoms, cutoff)
    j, i = data[EDGE_INDEX].numpy()
    shifts = data[CELL_SHIFT].numpy().astype(np.int64)
    counts = np.bincount(i, minlength=len(atoms))
    assert np.array_equal(counts, np.bincount(i_ase, minlength=len(atoms)))
    ours = _sorted_rows(np.column_stack([i, j, shifts]))
    theirs = _sorted_rows(np.column_stack([i_ase, j_ase, s_ase]))
    assert np.array_equal(ours, theirs)


def test_small_periodic_cell_has_many_images() -> None:
    data = atoms_to_data(CONFIGS["sc-1-tiny-cell"], 5.0)
    # simple cubic, a = 2.1 A: every lattice point within 5 A (no cap on neighbours)
    n = np.arange(-3, 4)
    grid = np.stack(np.meshgrid(n, n, n), -1).reshape(-1, 3) * 2.1
    expected = int(
        np.sum((np.linalg.norm(grid, axis=1) < 5.0) & (np.linalg.norm(grid, axis=1) > 0))
    )
    assert data[EDGE_INDEX].shape[1] == expected > 32


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_edge_vectors_match_ase(name: str) -> None:
    atoms = CONFIGS[name]
    data = atoms_to_data(atoms, 5.0)
    vectors = edge_vectors(data).double().numpy()
    i_ase, j_ase, d_ase = neighbor_list("ijD", atoms, 5.0)
    j, i = data[EDGE_INDEX].numpy()
    ours = _sorted_rows(np.column_stack([i, j, np.round(vectors, 4)]))
    theirs = _sorted_rows(np.column_stack([i_ase, j_ase, np.round(d_ase, 4)]))
    assert ours.shape == theirs.shape
    assert np.allclose(ours, theirs, atol=2e-4)
    assert np.all(np.linalg.norm(vectors, axis=1) < 5.0 + 1e-5)


def test_isolated_atom_has_no_edges() -> None:
    data = atoms_to_data(CONFIGS["isolated"], 5.0, target=-0.5)
    assert data[EDGE_INDEX].shape == (2, 0)
    assert data[CELL_SHIFT].shape == (0, 3)
    assert edge_vectors(data).shape == (0, 3)
    assert data[Y].shape == (1,)
    assert int(data[N_ATOMS]) == 1


def test_fields_targets_and_ids() -> None:
    atoms = CONFIGS["diamond-2"].copy()
    atoms.info[keys.CONFIG_ID] = "si-7"
    data = atoms_to_data(atoms, 4.0, target=[1.0, 2.0, 3.0])
    assert data.z.dtype == torch.long and data.z.tolist() == [14, 14]
    assert data.pos.shape == (2, 3) and data.cell.shape == (1, 3, 3)
    assert data.edge_index.dtype == torch.long
    assert data[Y].shape == (1, 3)
    assert data.config_id == "si-7"
    assert getattr(atoms_to_data(atoms, 4.0), Y, None) is None
    with pytest.raises(ValueError):
        atoms_to_data(atoms, 0.0)


def test_batched_edge_vectors_and_autograd() -> None:
    graphs = [atoms_to_data(CONFIGS[n], 4.0) for n in ("diamond-2", "triclinic-3", "dimer")]
    batch = next(iter(make_loader(graphs, 3)))
    batched = edge_vectors(batch)
    single = torch.cat([edge_vectors(g) for g in graphs])
    assert torch.allclose(batched, single, atol=1e-6)
    batch[POS].requires_grad_(True)
    (edge_vectors(batch).norm(dim=1) ** 2).sum().backward()
    assert batch[POS].grad is not None and torch.isfinite(batch[POS].grad).all()


def test_graph_dataset_and_loader() -> None:
    configs = []
    for k, name in enumerate(("diamond-2", "dimer", "triclinic-3", "isolated")):
        atoms = CONFIGS[name].copy()
        atoms.info[keys.CONFIG_ID] = name
        atoms.info[keys.ENERGY_DFT] = -1.0 * (k + 1)
        configs.append(atoms)
    graphs = GraphDataset(configs, 4.0, progress=False)
    assert len(graphs) == 4 and graphs.cutoff == 4.0
    assert [float(g[Y]) for g in graphs] == [-1.0, -2.0, -3.0, -4.0]
    order = [
        [cid for b in make_loader(graphs, 2, shuffle=True, seed=5) for cid in b.config_id]
        for _ in range(2)
    ]
    assert order[0] == order[1] and sorted(order[0]) == sorted(
        c.info[keys.CONFIG_ID] for c in configs
    )
    batch = next(iter(make_loader(graphs, 4)))
    assert batch[N_ATOMS].tolist() == [2, 2, 3, 1]
    assert batch[Y].shape == (4,)


def test_soap_features_cached_and_attached(tmp_path) -> None:
    from eiplab.graphs.soap import SoapSettings, attach_soap, n_soap_features, soap_features

    configs = [CONFIGS[n] for n in ("diamond-2", "dimer", "isolated", "mixed-pbc-zero-vector")]
    settings = SoapSettings(r_cut=4.0, n_max=3, l_max=2)
    first = soap_features(configs, settings, cache=tmp_path, progress=False)
    assert len(list(tmp_path.glob("*.npz"))) == 1
    again = soap_features(configs, settings, cache=tmp_path, progress=False)
    n_features = n_soap_features(settings.with_species(configs))
    for atoms, a, b in zip(configs, first, again, strict=True):
        assert a.shape == (len(atoms), n_features)
        assert np.array_equal(a, b) and np.isfinite(a).all()
    # periodic images matter: a supercell's atoms see what the primitive cell's atoms see
    supercell = soap_features([configs[0].repeat((2, 1, 1))], settings, cache=False, progress=False)
    assert np.allclose(supercell[0][:2], first[0], atol=1e-5)
    graphs = [atoms_to_data(a, 4.0) for a in configs]
    attach_soap(graphs, first)
    assert graphs[0][X].shape == (2, n_features)
    with pytest.raises(ValueError, match="species"):
        soap_features([Atoms("Al")], SoapSettings(species=(14,)), cache=False, progress=False)


def test_build_graphs_with_soap(tmp_path, monkeypatch) -> None:
    from eiplab.graphs.soap import SoapSettings

    monkeypatch.setenv("EIPLAB_CACHE", str(tmp_path))
    configs = [CONFIGS["diamond-2"], CONFIGS["dimer"]]
    soap = SoapSettings(r_cut=4.0, n_max=2, l_max=1, species=(14,)).to_dict()
    graphs = build_graphs(configs, 4.0, soap=soap, target=None, progress=False)
    assert [g[X].shape[0] for g in graphs] == [2, 2]
    assert SoapSettings.from_dict(soap).species == (14,)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_edges_are_pairs_then_reverses(name: str) -> None:
    graphs = [atoms_to_data(CONFIGS[name], 5.0), atoms_to_data(CONFIGS["diamond-2"], 3.0)]
    batch = next(iter(make_loader(graphs, 2)))
    unique, pair_of_edge = edge_pairs(batch)
    j, i = batch[EDGE_INDEX]
    shift = batch[CELL_SHIFT]
    assert unique.numel() * 2 == j.numel() == pair_of_edge.numel()
    first = unique[pair_of_edge]  # the pair's own edge, for every edge
    same = first == torch.arange(j.numel())
    # an edge is its pair's edge, or the reverse of it (i, j swapped, shift negated)
    assert torch.all(same | ((j == i[first]) & (i == j[first])))
    assert torch.equal(shift[~same], -shift[first][~same])
    vectors = edge_vectors(batch)
    assert torch.allclose(vectors.norm(dim=1), vectors[first].norm(dim=1), atol=1e-5)


def _soap_in_daemon(queue) -> None:  # runs in a daemon child process (as in a local Dask worker)
    import warnings

    from eiplab.graphs.soap import PARALLEL_MIN, SoapSettings, soap_features

    configs = [_rattled(bulk("Si", "diamond", a=5.43), seed=k) for k in range(PARALLEL_MIN)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        features = soap_features(configs, SoapSettings(r_cut=4.0, n_max=2, l_max=1), cache=False,
                                 n_jobs=2, progress=False)
    queue.put(([str(w.message) for w in caught], len(features)))


def test_soap_in_a_daemon_worker_asks_for_one_job_without_warnings() -> None:
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_soap_in_daemon, args=(queue,), daemon=True)
    child.start()
    messages, n = queue.get(timeout=300)
    child.join()
    from eiplab.graphs.soap import PARALLEL_MIN

    assert n == PARALLEL_MIN
    assert not [m for m in messages if "n_jobs=1" in m], messages  # joblib: "setting n_jobs=1"
