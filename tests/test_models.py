"""The contract every registered model passes (nequip/sklearn style), plus registry and heads."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk

from eiplab.graphs import make_loader
from eiplab.graphs.build import N_PAIRS, POS
from eiplab.graphs.soap import SoapSettings, n_soap_features
from eiplab.models import (
    REGISTRY,
    GraphHead,
    ModelConfig,
    available_models,
    build_model,
    load_model,
    replace_head,
    save_model,
)
from eiplab.models.registry import representation_class
from eiplab.training import model_inputs
from eiplab.training.evaluate import predicted_forces

CUTOFF = 4.0
SI = 14
MODELS = list(REGISTRY)  # every registered model must pass: one that fails to import fails here


def _is_soap(name: str) -> bool:
    return getattr(representation_class(name), "input_features", None) == "soap"


def _config(name: str) -> ModelConfig:
    config = ModelConfig(name, width=16, n_layers=2, cutoff=CUTOFF, n_gaussians=12)
    if _is_soap(name):
        soap = SoapSettings(r_cut=CUTOFF, n_max=3, l_max=2, species=(SI,))
        config = config.replace(soap=soap.to_dict(), n_features=n_soap_features(soap))
    return config


@pytest.fixture(scope="module", autouse=True)
def _soap_cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("EIPLAB_CACHE", str(tmp_path_factory.mktemp("cache")))
    yield
    mp.undo()


def _model(name: str, seed: int = 0):
    torch.manual_seed(seed)
    model = build_model(_config(name))
    model.set_baseline({SI: -5.4})
    return model.eval()


def _graphs(model, configs):
    return model_inputs(list(configs), model.config, target=None)


def _energy(model, configs) -> torch.Tensor:
    batch = next(iter(make_loader(_graphs(model, configs), len(configs))))
    with torch.no_grad():
        return model(batch)[:, 0]


def _primitive() -> Atoms:
    atoms = bulk("Si", "diamond", a=5.43)
    atoms.rattle(0.08, seed=4)
    return atoms


def _cluster() -> Atoms:
    rng = np.random.default_rng(2)
    return Atoms("Si4", positions=rng.uniform(0, 3.0, size=(4, 3)))


def _structures() -> list[Atoms]:
    return [
        _primitive(),
        _cluster(),
        bulk("Si", "fcc", a=3.0),  # 1-atom periodic cell, many images
        Atoms(  # 3-atom triclinic periodic cell
            "Si3",
            scaled_positions=[[0, 0, 0], [0.3, 0.4, 0.1], [0.6, 0.2, 0.7]],
            cell=[[3.6, 0.0, 0.0], [0.9, 3.4, 0.0], [0.4, 0.7, 3.8]],
            pbc=True,
        ),
        Atoms("Si2", positions=[[0, 0, 0], [0.2, 0.1, 2.3]]),  # dimer
        Atoms("Si3", positions=[[0, 0, 0], [2.3, 0, 0], [0.5, 2.1, 0.3]]),  # trimer
        Atoms("Si", positions=[[0, 0, 0]]),  # isolated atom
    ]


def _rotation(seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


@pytest.mark.parametrize("name", MODELS)
class TestContract:
    def test_shapes_and_finite(self, name):
        model = _model(name)
        configs = _structures()
        batch = next(iter(make_loader(_graphs(model, configs), len(configs))))
        with torch.no_grad():
            out = model(batch)
            atom = model.atom_features(batch)
            rep = model.representation(batch)
        width = model.representation_module.width
        assert out.shape == (len(configs), 1)
        assert atom.shape == (sum(len(a) for a in configs), width)
        assert rep.shape == (len(configs), width)
        assert torch.isfinite(out).all() and torch.isfinite(rep).all()

    @pytest.mark.parametrize("which", ["periodic", "cluster"])
    def test_permutation_invariance(self, name, which):
        model = _model(name)
        atoms = _primitive().repeat((1, 1, 2)) if which == "periodic" else _cluster()
        order = np.random.default_rng(0).permutation(len(atoms))
        e = _energy(model, [atoms, atoms[order]])
        assert torch.allclose(e[0], e[1], rtol=1e-5, atol=1e-5)

    @pytest.mark.parametrize("which", ["periodic", "cluster"])
    def test_translation_invariance(self, name, which):
        model = _model(name)
        atoms = _primitive() if which == "periodic" else _cluster()
        moved = atoms.copy()
        moved.positions += np.array([0.7, -1.3, 2.1])
        e = _energy(model, [atoms, moved])
        assert torch.allclose(e[0], e[1], rtol=1e-5, atol=1e-5)

    @pytest.mark.parametrize("which", ["periodic", "cluster"])
    def test_rotation_invariance(self, name, which):
        model = _model(name)
        atoms = _primitive() if which == "periodic" else _cluster()
        rotation = _rotation(3)
        turned = atoms.copy()
        turned.positions = atoms.positions @ rotation.T
        turned.cell = atoms.cell.array @ rotation.T
        e = _energy(model, [atoms, turned])
        assert torch.allclose(e[0], e[1], rtol=1e-5, atol=1e-4)

    def test_supercell_additivity(self, name):
        model = _model(name)
        atoms = _primitive()
        e = _energy(model, [atoms, atoms.repeat((2, 1, 1)), atoms.repeat((1, 2, 2))])
        assert abs(float(e[1] / e[0]) - 2.0) < 2e-4
        assert abs(float(e[2] / e[0]) - 4.0) < 4e-4

    def test_batched_equals_unbatched(self, name):
        model = _model(name)
        configs = _structures()
        together = _energy(model, configs)
        apart = torch.cat([_energy(model, [a]) for a in configs])
        assert torch.allclose(together, apart, rtol=1e-5, atol=1e-5)

    def test_isolated_atom(self, name):
        model = _model(name)
        alone = Atoms("Si", positions=[[1.0, 2.0, 3.0]])
        in_box = Atoms("Si", positions=[[1.0, 2.0, 3.0]], cell=np.eye(3) * 3 * CUTOFF, pbc=True)
        graph = _graphs(model, [alone])[0]
        assert graph.edge_index.shape[1] == 0
        batch = next(iter(make_loader([graph], 1)))
        with torch.no_grad():
            head = model.head(model.atom_features(batch), batch)[0, 0]
        e = _energy(model, [alone, in_box])
        assert torch.isfinite(e).all()
        assert torch.allclose(e[0], head + model.baseline[SI], atol=1e-5)
        assert torch.allclose(e[0], e[1], atol=1e-5)

    def test_forces_match_finite_differences(self, name):
        if _is_soap(name):
            pytest.skip("SOAPNet reads precomputed SOAP features: no position gradient")
        model = _model(name).double()
        atoms = _cluster()
        graph = _graphs(model, [atoms])[0]
        graph.pos = graph.pos.double()
        graph.cell = graph.cell.double()
        graph.cell_shift = graph.cell_shift.double()
        graph[POS].requires_grad_(True)
        energy = model(graph)[0, 0]
        (grad,) = torch.autograd.grad(energy, graph[POS])
        step = 1e-5
        for atom, axis in [(0, 0), (1, 2), (3, 1)]:
            shifted = []
            for sign in (1, -1):
                pos = graph[POS].detach().clone()
                pos[atom, axis] += sign * step
                g = graph.clone()
                g[POS] = pos
                with torch.no_grad():
                    shifted.append(float(model(g)[0, 0]))
            numeric = (shifted[0] - shifted[1]) / (2 * step)
            assert abs(numeric - float(grad[atom, axis])) < 1e-5 + 1e-4 * abs(numeric)

    def test_save_load_round_trip(self, name, tmp_path):
        model = _model(name, seed=1)
        configs = _structures()
        before = _energy(model, configs)
        path = save_model(tmp_path / "m.pt", model)
        loaded = load_model(path).eval()
        assert loaded.config == model.config
        assert torch.equal(_energy(loaded, configs), before)


@pytest.mark.parametrize("name", MODELS)
def test_pair_shortcut_changes_nothing(name):
    """Graphs without n_pairs (edges in any order) give the same energies and forces."""
    model = _model(name)
    graphs = _graphs(model, _structures())
    plain = []
    for graph in graphs:
        graph = graph.clone()
        del graph[N_PAIRS]
        order = torch.randperm(
            graph.edge_index.shape[1], generator=torch.Generator().manual_seed(0)
        )
        graph.edge_index = graph.edge_index[:, order]
        graph.cell_shift = graph.cell_shift[order]
        plain.append(graph)
    with_forces = not _is_soap(name)  # SOAPNet's inputs are precomputed: no autograd forces
    results = []
    for batch_graphs in (graphs, plain):
        batch = next(iter(make_loader(batch_graphs, len(batch_graphs))))
        batch[POS].requires_grad_(with_forces)
        energies = model(batch)
        forces = predicted_forces(energies, batch) if with_forces else None
        results.append((energies.detach(), forces))
    (a, forces_a), (b, forces_b) = results
    assert torch.allclose(a, b, rtol=1e-5, atol=1e-5)
    if with_forces:
        assert forces_a.abs().max() > 1e-3  # forces that could differ
        assert torch.allclose(forces_a, forces_b, rtol=1e-4, atol=1e-5)


def test_registry_lists_the_four_models():
    assert {"schnet", "cgcnn", "soapnet", "gemnet"} <= set(REGISTRY)
    assert available_models() == list(REGISTRY)  # every registered model imports
    with pytest.raises(KeyError, match="unknown model"):
        build_model(ModelConfig("nope"))


def test_heads_are_swappable():
    model = _model("schnet")
    configs = _structures()
    replace_head(model, n_out=3)
    assert model.config.n_out == 3 and float(model.baseline.abs().sum()) == 0.0
    batch = next(iter(make_loader(_graphs(model, configs), len(configs))))
    assert model(batch).shape == (len(configs), 3)
    classifier = build_model(_config("schnet").replace(n_out=5, head="graph"))
    assert isinstance(classifier.head, GraphHead)
    logits = classifier(batch)
    assert logits.shape == (len(configs), 5) and torch.isfinite(logits).all()


def test_paper_sizes_build():
    for name in ("schnet", "cgcnn"):
        model = build_model(ModelConfig(name))
        assert model.representation_module.width == 128
    soap = SoapSettings(species=(SI,))
    soapnet = build_model(ModelConfig("soapnet", n_features=n_soap_features(soap)))
    linear = [m for m in soapnet.representation_module.net if isinstance(m, torch.nn.Linear)]
    assert len(linear) == 5 and linear[-1].out_features == 128


def test_gaussian_expansion_returns_no_subnormal_numbers():
    """Gaussians far from their centre underflow into float32's subnormal range, which x86 CPUs
    compute ~50-100x slower (benchmarks/bench_schnet_cpu.py); the expansion returns exact zeros
    there (below e x the smallest normal number) and the plain formula everywhere else."""
    from eiplab.models.layers import GaussianExpansion

    expansion = GaussianExpansion(128, 0.0, 5.0)
    distances = torch.linspace(0.3, 5.0, 4001, dtype=torch.float32)
    values = expansion(distances)
    tiny = torch.finfo(torch.float32).tiny
    diff = distances[:, None] - expansion.centres
    plain = torch.exp(expansion.coefficient * diff * diff)
    assert ((plain > 0) & (plain < tiny)).any()  # the plain formula does make subnormals here
    assert not ((values > 0) & (values < tiny)).any()
    kept = plain >= math.e * tiny * 1.001
    assert torch.equal(values[kept], plain[kept])
    assert torch.all(values[~kept & (plain < math.e * tiny * 0.999)] == 0)
    assert float((values - plain).abs().max()) < 1e-37
