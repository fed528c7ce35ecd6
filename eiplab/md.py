"""Molecular dynamics with a trained network (or an EIP) through ASE: relax, NVT, NVE, and the
numbers that say whether a run stayed physical.

Every run returns a table (one row per recorded step: time in fs, potential, kinetic and total
energy in eV, temperature in K, the closest pair distance in Angstrom) and keeps the snapshots
for the radial distribution function. Used by notebook 06; the calculators are
:class:`eiplab.NNCalculator` (a trained SchNet, CGCNN or GemNet) and ASE's KIM calculator
(:func:`eip_calculator`) for the comparison with an EIP.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from ase import Atoms, units
from ase.calculators.calculator import Calculator
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary
from ase.md.verlet import VelocityVerlet
from ase.neighborlist import neighbor_list
from ase.optimize import FIRE

#: Columns of an MD table.
TIME, EPOT, EKIN, ETOT, TEMPERATURE, MIN_DISTANCE = "time_fs", "epot_eV", "ekin_eV", "etot_eV", "T_K", "min_distance_A"
#: Closest pair distance (Angstrom) below which a run counts as unphysical (atoms collapsing).
PHYSICAL_MIN_DISTANCE = 1.5


@dataclass
class Trajectory:
    """What :func:`run_md` recorded: ``table`` (one row per recorded step) and ``frames``
    (copies of the recorded configurations, positions in Angstrom)."""

    table: pd.DataFrame
    frames: list[Atoms] = field(default_factory=list)

    @property
    def stayed_physical(self) -> bool:
        """No non-finite energy and no pair closer than ``PHYSICAL_MIN_DISTANCE``."""
        return bool(np.isfinite(self.table[ETOT]).all() and (self.table[MIN_DISTANCE] >= PHYSICAL_MIN_DISTANCE).all())



def eip_calculator(model_id: str) -> Calculator:
    """An ASE calculator (energy and forces) for an EIP: ASE's KIM calculator for an installed KIM
    model (the id resolved to the installed version), the registered factory for a non-KIM EIP."""
    from .eips import resolve, spec_for

    spec = spec_for(model_id)
    if spec.calculator is not None:
        return spec.calculator()
    from ase.calculators.kim import KIM

    return KIM(resolve(model_id))


def min_distance(atoms: Atoms, cutoff: float = 4.0) -> float:
    """Closest distance between two atoms, periodic images included (Angstrom; ``cutoff`` if none closer)."""
    d = neighbor_list("d", atoms, cutoff)
    return float(d.min()) if len(d) else float(cutoff)


def relax(atoms: Atoms, calc: Calculator, fmax: float = 0.05, steps: int = 200) -> tuple[Atoms, int]:
    """Positions relaxed with FIRE until the largest force is below ``fmax`` (eV/Angstrom) or
    ``steps``; returns a relaxed copy and the steps taken (the cell is kept)."""
    relaxed = atoms.copy()
    relaxed.calc = calc
    opt = FIRE(relaxed, logfile=None)
    opt.run(fmax=fmax, steps=steps)
    return relaxed, int(opt.nsteps)


def run_md(atoms: Atoms, calc: Calculator, *, temperature_K: float, steps: int, timestep_fs: float = 1.0,
           ensemble: str = "nvt", friction: float = 0.02, every: int = 1, seed: int = 0,
           progress: bool = False) -> Trajectory:
    """Molecular dynamics from ``atoms`` (a copy is moved) with velocities drawn at
    ``temperature_K`` (Maxwell-Boltzmann, no net momentum).

    Args:
        ensemble: ``"nvt"`` (ASE Langevin, ``friction`` in 1/fs) or ``"nve"`` (velocity Verlet).
        steps: MD steps of ``timestep_fs`` fs; every ``every``-th step is recorded.
        seed: velocities and the Langevin noise.

    Returns:
        The table (time, energies, temperature, closest pair) and the recorded frames.
    """
    if ensemble not in ("nvt", "nve"):
        raise ValueError(f"ensemble must be 'nvt' or 'nve', not {ensemble!r}")
    moving = atoms.copy()
    moving.calc = calc
    rng = np.random.default_rng(seed)
    MaxwellBoltzmannDistribution(moving, temperature_K=temperature_K, rng=rng)
    Stationary(moving)
    dt = timestep_fs * units.fs
    dyn = (Langevin(moving, dt, temperature_K=temperature_K, friction=friction / units.fs, rng=rng, fixcm=False)
           if ensemble == "nvt" else VelocityVerlet(moving, dt))
    rows, frames = [], []

    def record() -> None:
        epot, ekin = moving.get_potential_energy(), moving.get_kinetic_energy()
        rows.append({TIME: dyn.nsteps * timestep_fs, EPOT: epot, EKIN: ekin, ETOT: epot + ekin,
                     TEMPERATURE: moving.get_temperature(), MIN_DISTANCE: min_distance(moving)})
        frames.append(moving.copy())

    dyn.attach(record, interval=every)  # ASE calls it at step 0 as well
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc=f"{ensemble.upper()} {temperature_K:g} K", unit="step")
        dyn.attach(lambda: bar.update(1), interval=1)
    dyn.run(steps)
    if progress:
        bar.close()
    return Trajectory(pd.DataFrame(rows), frames)


def energy_drift(trajectory: Trajectory) -> float:
    """NVE energy conservation: the slope of the total energy per atom over time (eV/atom/ps),
    a least-squares line through the recorded steps."""
    table = trajectory.table
    n_atoms = len(trajectory.frames[0]) if trajectory.frames else 1
    if len(table) < 2:
        return 0.0
    slope = np.polyfit(table[TIME].to_numpy() / 1000.0, table[ETOT].to_numpy() / n_atoms, 1)[0]
    return float(slope)


def radial_distribution(frames: list[Atoms], r_max: float = 5.0, bins: int = 100) -> pd.DataFrame:
    """g(r) averaged over ``frames`` (periodic images included), normalised by the ideal gas of
    the same density: columns ``r_A`` (bin centres, Angstrom) and ``g``."""
    edges = np.linspace(0.0, r_max, bins + 1)
    counts = np.zeros(bins)
    density_sum = 0.0
    for atoms in frames:
        d = neighbor_list("d", atoms, r_max)
        counts += np.histogram(d, bins=edges)[0] / len(atoms)
        density_sum += len(atoms) / atoms.get_volume()
    shell = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    g = counts / (shell * density_sum) if density_sum else counts
    return pd.DataFrame({"r_A": 0.5 * (edges[1:] + edges[:-1]), "g": g})


def summary(trajectory: Trajectory, label: str) -> dict:
    """One row of numbers for a run: mean temperature, energies, closest pair, drift, physical?"""
    t = trajectory.table
    return {"run": label, "time (fs)": float(t[TIME].iloc[-1]), "mean T (K)": float(t[TEMPERATURE].mean()),
            "mean Epot (eV/atom)": float(t[EPOT].mean() / len(trajectory.frames[0])),
            "closest pair (A)": float(t[MIN_DISTANCE].min()),
            "Etot drift (eV/atom/ps)": energy_drift(trajectory), "stayed physical": trajectory.stayed_physical}


#: MD steps per profile when a notebook does not say (quick: a smoke test in CI).
DEFAULT_STEPS = {"quick": 20, "demo": 200, "cpu": 1000, "paper": 5000}


def start_structure(element: str, min_atoms: int = 32, rattle: float = 0.05, seed: int = 0) -> Atoms:
    """The element's ground-state bulk crystal (ASE's reference structure, cubic cell where it
    has one), repeated until it holds at least ``min_atoms`` atoms, its atoms displaced at random
    by ``rattle`` Angstrom (std; so that a relaxation has something to do)."""
    from ase.build import bulk

    try:
        atoms = bulk(element, cubic=True)
    except (ValueError, RuntimeError):  # no cubic cell for this structure (e.g. hcp)
        atoms = bulk(element)
    n = 1
    while len(atoms) * n**3 < min_atoms:
        n += 1
    atoms = atoms.repeat((n, n, n))
    atoms.rattle(rattle, seed=seed)
    return atoms


def trajectory_figure(runs: dict[str, Trajectory], column: str = TEMPERATURE, title: str = ""):
    """One line per run of ``column`` (e.g. temperature, potential energy per run) against time (fs)."""
    import plotly.express as px

    long = pd.concat([t.table.assign(run=label) for label, t in runs.items()], ignore_index=True)
    return px.line(long, x=TIME, y=column, color="run", title=title or f"{column} against time")


def rdf_figure(rdfs: dict[str, pd.DataFrame], title: str = "radial distribution function"):
    """g(r) of several runs on one plot (r in Angstrom)."""
    import plotly.express as px

    long = pd.concat([r.assign(run=label) for label, r in rdfs.items()], ignore_index=True)
    return px.line(long, x="r_A", y="g", color="run", title=title, labels={"r_A": "r (Angstrom)", "g": "g(r)"})
