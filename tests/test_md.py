"""eiplab.md: MD through ASE with an EIP or a trained network, and the numbers that judge a run."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from eiplab import md

T2 = "Tersoff_LAMMPS_Tersoff_1988T2_Si__MO_245095684871_003"


@pytest.fixture
def si64():
    return bulk("Si", "diamond", a=5.43, cubic=True).repeat((2, 2, 2))


@pytest.mark.kim
def test_nve_conserves_energy_and_nvt_heats_towards_the_target(si64):
    calc = md.eip_calculator(T2)
    nve = md.run_md(si64, calc, temperature_K=300, steps=60, timestep_fs=1.0, ensemble="nve")
    table = nve.table
    assert len(table) == 61 and nve.stayed_physical
    spread = (table[md.ETOT].max() - table[md.ETOT].min()) / len(si64)
    assert spread < 2e-3, f"total energy spread {spread} eV/atom in NVE"
    assert abs(md.energy_drift(nve)) < 0.05  # eV/atom/ps
    nvt = md.run_md(si64, calc, temperature_K=1200, steps=150, ensemble="nvt", friction=0.05, every=5)
    assert nvt.table[md.TEMPERATURE].iloc[-10:].mean() > 2 * nve.table[md.TEMPERATURE].mean()
    rows = md.summary(nvt, "T2 1200 K")
    assert rows["stayed physical"] and rows["time (fs)"] == 150


@pytest.mark.kim
def test_relax_lowers_the_energy_of_a_rattled_cell(si64):
    rattled = si64.copy()
    rattled.rattle(0.1, seed=3)
    calc = md.eip_calculator(T2)
    rattled.calc = calc
    before = rattled.get_potential_energy()
    relaxed, steps = md.relax(rattled, calc, fmax=0.05, steps=300)
    assert relaxed.get_potential_energy() < before and steps > 0
    assert np.abs(relaxed.get_forces()).max() < 0.05 + 1e-9 or steps == 300


def test_rdf_peaks_at_the_nearest_neighbour_distance_and_collapse_is_flagged(si64):
    rdf = md.radial_distribution([si64], r_max=4.0, bins=80)
    first = rdf.loc[rdf["g"] > 0, "r_A"].iloc[0]  # the nearest-neighbour shell
    assert abs(first - 5.43 * np.sqrt(3) / 4) < 0.05
    assert rdf.loc[rdf["r_A"] < 2.2, "g"].eq(0).all()
    assert md.min_distance(si64) == pytest.approx(5.43 * np.sqrt(3) / 4, abs=1e-6)
    squeezed = Atoms("Si2", positions=[[0, 0, 0], [0.8, 0, 0]], cell=[6, 6, 6], pbc=True)
    traj = md.Trajectory(md.pd.DataFrame({md.ETOT: [1.0], md.MIN_DISTANCE: [md.min_distance(squeezed)]}), [squeezed])
    assert not traj.stayed_physical
    with pytest.raises(ValueError, match="ensemble"):
        md.run_md(si64, None, temperature_K=300, steps=1, ensemble="npt")


def test_start_structure_is_a_rattled_bulk_crystal_big_enough():
    atoms = md.start_structure("Si", min_atoms=32, seed=1)
    assert len(atoms) == 64 and atoms.pbc.all()
    assert 2.0 < md.min_distance(atoms) < 2.35 + 0.3
    again = md.start_structure("Si", min_atoms=32, seed=1)
    assert np.allclose(atoms.positions, again.positions)
    assert len(md.start_structure("Mo", min_atoms=16)) >= 16
