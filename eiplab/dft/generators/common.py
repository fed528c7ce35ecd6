"""Shared pieces of the configuration generators: counts, strain, MD with an EIP, checks."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator, all_changes
from ase.constraints import FixAtoms, FixCom
from ase.geometry import get_distances
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary

from ... import keys
from ...data.configset import ConfigSet
from ...data.hashing import config_hash


class EIPCalculator(Calculator):
    """An ASE calculator around an eiplab EIP model (KIM through kimpy, or a registered one).

    Args:
        model_id: KIM ID or registered EIP id (see :func:`eiplab.eips.load_model`).
    """

    implemented_properties = ["energy", "free_energy", "forces"]

    def __init__(self, model_id: str) -> None:
        super().__init__()
        from ...eips.evaluate import load_model

        self.model = load_model(model_id)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        e, f = self.model.energy_and_forces(self.atoms)
        self.results = {"energy": e, "free_energy": e, "forces": f}


def allocate(n: int, mix: Mapping[str, float]) -> dict[str, int]:
    """Split ``n`` configs over phases in proportion to ``mix`` (largest remainder, exact sum)."""
    w = np.array([max(float(v), 0.0) for v in mix.values()])
    if w.sum() <= 0:
        raise ValueError(f"phase mix has no positive weight: {dict(mix)}")
    raw = n * w / w.sum()
    out = np.floor(raw).astype(int)
    for k in np.argsort(-(raw - out), kind="stable")[: n - out.sum()]:
        out[k] += 1
    return {name: int(c) for name, c in zip(mix, out, strict=True)}


def strain_matrix(rng: np.random.Generator, normal: float, shear: float) -> np.ndarray:
    """A random symmetric deformation 1 + eps: diagonal eps ~ U(-normal, normal), off-diagonal
    ~ U(-shear, shear) (dimensionless strains)."""
    eps = np.diag(rng.uniform(-normal, normal, 3))
    off = rng.uniform(-shear, shear, 3)
    eps[0, 1] = eps[1, 0] = off[0]
    eps[0, 2] = eps[2, 0] = off[1]
    eps[1, 2] = eps[2, 1] = off[2]
    return np.eye(3) + eps


def deform(atoms: Atoms, f: np.ndarray) -> Atoms:
    """A copy with cell and positions transformed by the deformation ``f`` [3, 3]."""
    b = atoms.copy()
    b.set_cell(atoms.cell.array @ f.T, scale_atoms=True)
    return b


def min_distance(atoms: Atoms) -> float:
    """Shortest interatomic distance including periodic images, Angstrom (inf for 1 atom
    in a large cell)."""
    n = len(atoms)
    best = np.inf
    if n > 1:
        _, d = get_distances(atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
        d = d + np.diag(np.full(n, np.inf))
        best = float(d.min())
    # an atom and its own images: the shortest lattice vector
    if atoms.pbc.all():
        cell = atoms.cell.array
        grid = np.array(
            [
                (i, j, k)
                for i in (-1, 0, 1)
                for j in (-1, 0, 1)
                for k in (-1, 0, 1)
                if (i, j, k) != (0, 0, 0)
            ]
        )
        best = min(best, float(np.linalg.norm(grid @ cell, axis=1).min()))
    return best


def _langevin(atoms: Atoms, timestep: float, temperature: float, friction: float, rng) -> Langevin:
    """ASE Langevin dynamics; timestep in fs, temperature in K, friction in 1/fs."""
    return Langevin(atoms, timestep * units.fs, temperature_K=temperature, friction=friction / units.fs,
                    fixcm=False, rng=rng)


def md_snapshots(
    atoms: Atoms,
    calc: Calculator,
    rng: np.random.Generator,
    *,
    temperature: float,
    n_snapshots: int,
    equilibrate: int,
    every: int,
    timestep: float = 2.0,
    friction: float = 0.02,
    melt: tuple[float, int] | None = None,
    fixed: np.ndarray | None = None,
) -> Iterator[Atoms]:
    """Langevin MD snapshots (NVT) of ``atoms`` with an EIP.

    Args:
        atoms: start structure (not modified).
        calc: forces (e.g. :class:`EIPCalculator`).
        rng: random generator (velocities and the Langevin noise are seeded from it).
        temperature: K.
        n_snapshots: snapshots to yield.
        equilibrate: steps before the first snapshot.
        every: steps between snapshots.
        timestep: fs.
        friction: Langevin friction, 1/fs.
        melt: ``(T_K, steps)`` of a hot run first (liquid / coexistence preparation).
        fixed: atom indices held fixed during the ``melt`` run only (coexistence: the
            crystalline part stays).
    """
    a = atoms.copy()
    a.calc = calc
    if melt is not None:
        t_hot, steps = melt
        MaxwellBoltzmannDistribution(a, temperature_K=t_hot, rng=rng)
        a.set_constraint(FixAtoms(indices=fixed) if fixed is not None else FixCom())
        _langevin(a, timestep, t_hot, friction, rng).run(steps)
    else:
        MaxwellBoltzmannDistribution(a, temperature_K=temperature, rng=rng)
    a.set_constraint(FixCom())
    Stationary(a)
    dyn = _langevin(a, timestep, temperature, friction, rng)
    dyn.run(equilibrate)
    for _ in range(n_snapshots):
        dyn.run(every)
        snap = Atoms(a.numbers, a.get_positions(wrap=True), cell=a.cell.copy(), pbc=True)
        yield snap


def finish(configs: list[Atoms], name: str, source: str, min_dist: float) -> ConfigSet:
    """Check and label generated configs: ids ``{name}-{k:05d}``, source, distinct hashes,
    no atoms closer than ``min_dist`` Angstrom.

    Raises:
        ValueError: two configs are the same structure, or atoms are too close.
    """
    seen: dict[str, int] = {}
    for k, a in enumerate(configs):
        a.info[keys.CONFIG_ID] = f"{name}-{k:05d}"
        a.info[keys.SOURCE] = source
        h = config_hash(a)
        if h in seen:
            raise ValueError(f"generator {name}: configs {seen[h]} and {k} are identical")
        seen[h] = k
        d = min_distance(a)
        if d < min_dist:
            raise ValueError(
                f"generator {name}: config {k} ({a.info[keys.PHASE]}) has atoms {d:.2f} A apart "
                f"(< {min_dist} A)"
            )
    return ConfigSet(configs, name=name)
