"""eiplab.calculator.NNCalculator: energies, forces and stress of a trained network through ASE."""

import numpy as np
import pytest
from ase import Atoms, units
from ase.build import bulk
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
from ase.md.verlet import VelocityVerlet

from eiplab.calculator import NNCalculator
from eiplab.models import ModelConfig, build_model, save_model

SI = 14
GRAPH_NETWORKS = ["schnet", "cgcnn", "gemnet"]


def _saved(name, tmp_path, **options):
    model = build_model(ModelConfig(name, width=16, n_layers=2, cutoff=4.0, n_gaussians=16, **options))
    model.set_baseline({SI: -4.5})
    return save_model(tmp_path / f"{name}.pt", model)


def _cell():
    atoms = bulk("Si", "diamond", a=5.43, cubic=True)
    atoms.rattle(0.05, seed=1)
    atoms.positions[0] = [0.02, 5.41, 0.01]  # next to the cell's faces: forces cross the boundary
    atoms.wrap()
    return atoms


def _fd_forces(atoms, calc, pairs, h=1e-2):
    out = []
    for atom, axis in pairs:
        e = []
        for sign in (1, -1):
            shifted = atoms.copy()
            shifted.positions[atom, axis] += sign * h
            shifted.calc = calc
            e.append(shifted.get_potential_energy())
        out.append(-(e[0] - e[1]) / (2 * h))
    return np.array(out)


@pytest.mark.parametrize("name", GRAPH_NETWORKS)
def test_forces_and_stress_match_finite_differences(name, tmp_path):
    calc = NNCalculator.from_run(_saved(name, tmp_path), device="cpu")
    atoms = _cell()
    atoms.calc = calc
    forces = atoms.get_forces()
    pairs = [(0, 0), (0, 1), (3, 2), (5, 0)]
    numeric = _fd_forces(atoms, calc, pairs)
    analytic = np.array([forces[a, x] for a, x in pairs])
    assert np.allclose(analytic, numeric, atol=5e-3, rtol=2e-2), (analytic, numeric)
    stress = atoms.get_stress()  # Voigt, eV/A^3
    h, e = 1e-3, []
    for sign in (1, -1):
        strained = atoms.copy()
        strained.set_cell(atoms.cell * np.diag([1 + sign * h, 1, 1]), scale_atoms=True)
        strained.calc = calc
        e.append(strained.get_potential_energy())
    assert stress[0] == pytest.approx((e[0] - e[1]) / (2 * h) / atoms.get_volume(), abs=5e-4, rel=5e-2)


@pytest.mark.parametrize("name", GRAPH_NETWORKS)
def test_forces_are_rotation_equivariant_and_a_lone_atom_feels_none(name, tmp_path):
    calc = NNCalculator.from_run(_saved(name, tmp_path), device="cpu")
    cluster = Atoms("Si4", positions=[[0, 0, 0], [2.3, 0.1, 0], [0.2, 2.2, 0.3], [1.1, 1.0, 2.0]])
    cluster.calc = calc
    f = cluster.get_forces()
    a, b = np.radians(37), np.radians(21)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    turn = rx @ rz
    rot = cluster.copy()
    rot.positions = cluster.positions @ turn.T
    rot.calc = calc
    assert np.allclose(rot.get_forces(), f @ turn.T, atol=1e-4)
    assert np.allclose(f.sum(axis=0), 0, atol=1e-4), "no net force on an isolated cluster"
    lone = Atoms("Si", positions=[[0, 0, 0]])
    lone.calc = calc
    assert np.allclose(lone.get_forces(), 0)


def test_unknown_species_and_soapnet_forces_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("EIPLAB_CACHE", str(tmp_path / "cache"))  # SOAP features are cached there
    calc = NNCalculator.from_run(_saved("schnet", tmp_path), device="cpu")
    ge = bulk("Ge", "diamond", a=5.66)
    ge.calc = calc
    with pytest.raises(ValueError, match="not trained on Ge"):
        ge.get_potential_energy()
    from eiplab.graphs.soap import SoapSettings, n_soap_features

    settings = SoapSettings(r_cut=4.0, n_max=3, l_max=2, species=(SI,))
    soap = build_model(ModelConfig("soapnet", width=16, n_layers=2, cutoff=4.0, soap=settings.to_dict(),
                                   n_features=n_soap_features(settings)))
    soap.set_baseline({SI: -4.5})
    calc = NNCalculator(soap, device="cpu")
    atoms = _cell()
    atoms.calc = calc
    assert np.isfinite(atoms.get_potential_energy())
    with pytest.raises(NotImplementedError, match="energies only"):
        atoms.get_forces()
    with pytest.raises(FileNotFoundError, match="model_best.pt"):
        NNCalculator.from_run(tmp_path / "no-run")


def test_short_md_with_the_calculator_stays_finite(tmp_path):
    atoms = _cell().repeat((1, 1, 1))
    atoms.calc = NNCalculator.from_run(_saved("schnet", tmp_path), device="cpu")
    MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(0))
    VelocityVerlet(atoms, timestep=0.5 * units.fs).run(5)
    assert np.isfinite(atoms.get_potential_energy()) and np.isfinite(atoms.get_forces()).all()


@pytest.mark.parametrize("name", GRAPH_NETWORKS)
def test_supercell_forces_equal_the_primitive_cells_and_a_dimer_pulls_along_its_axis(name, tmp_path):
    calc = NNCalculator.from_run(_saved(name, tmp_path), device="cpu")
    cell = _cell()
    cell.calc = calc
    forces = cell.get_forces()
    big = cell.repeat((2, 1, 1))
    big.calc = calc
    assert np.allclose(big.get_forces()[: len(cell)], forces, atol=1e-4)
    assert np.allclose(big.get_forces()[len(cell):], forces, atol=1e-4)
    assert big.get_potential_energy() == pytest.approx(2 * cell.get_potential_energy(), rel=1e-5)
    dimer = Atoms("Si2", positions=[[0, 0, 0], [1.3, 1.1, 0.7]])
    dimer.calc = calc
    f = dimer.get_forces()
    axis = dimer.positions[1] - dimer.positions[0]
    assert np.allclose(f[0], -f[1], atol=1e-5)
    assert np.allclose(np.cross(f[0], axis), 0, atol=1e-5), "a pair force acts along the bond"
