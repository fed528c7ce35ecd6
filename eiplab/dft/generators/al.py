"""Aluminium configurations in the spirit of ANI-Al: hot fcc solid, liquid, solid-liquid
coexistence, vacancies, strained and sheared cells. Small cells (4-16 atoms, or fewer with
``max_atoms``), MD with an EAM model through the KIM API (eiplab's kimpy boundary) and ASE's
Langevin thermostat.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from ase import Atoms
from ase.build import bulk

from ... import keys
from ...data.configset import ConfigSet
from .common import (
    EIPCalculator,
    allocate,
    deform,
    finish,
    md_snapshots,
    min_distance,
    strain_matrix,
)

#: EAM used for the MD (Ercolessi-Adams 1994: fitted to ab initio forces incl. liquid; T_m ~ 940 K).
AL_MD_MODEL = "EAM_Dynamo_ErcolessiAdams_1994_Al__MO_123629422045_005"
#: Default share of each phase family.
AL_MIX: dict[str, float] = {
    "fcc": 0.35,
    "liquid": 0.15,
    "coexistence": 0.10,
    "vacancy": 0.15,
    "strained": 0.15,
    "sheared": 0.10,
}
#: Lattice constant of the starting fcc cells, Angstrom (PBE ~4.04, experiment 4.05).
A0 = 4.05
FCC_TEMPERATURES = (100, 300, 500, 700, 900)  # K
LIQUID_TEMPERATURES = (1000, 1300, 1600)  # K
VACANCY_TEMPERATURES = (300, 600, 900)  # K
T_MELT_AL = 933  # K, coexistence runs
MIN_DIST_AL = 1.9  # Angstrom; Al-Al nearest neighbours are 2.86 in fcc


def al_family(phase: str) -> str:
    """Phase family of an Al phase label (``"fcc 300K"`` -> ``"fcc"``)."""
    return phase.split()[0]


def _fcc(a: float, reps: tuple[int, int, int]) -> Atoms:
    return bulk("Al", "fcc", a=a, cubic=True) * reps


def _expansion(t: float) -> float:
    """Linear thermal expansion factor of Al relative to 300 K (alpha ~ 2.5e-5 / K)."""
    return 1.0 + 2.5e-5 * (t - 300.0)


def _n(steps: int, scale: float) -> int:
    """MD step count scaled by ``scale`` (at least 1)."""
    return max(1, round(steps * scale))


def _trajectories(count: int, per: int, min_runs: int) -> list[int]:
    """Snapshots per trajectory: ``count`` split into at least ``min_runs`` runs (so every
    temperature and cell size appears) of at most ``per`` snapshots each."""
    n = min(count, max(min_runs, -(-count // per)))
    return [count // n + (1 if k < count % n else 0) for k in range(n)]


#: Cells of each phase family: fcc repetitions of the 4-atom cubic cell (coexistence: layers of
#: it along z); trajectories cycle through them.
AL_CELLS: dict[str, tuple] = {
    "fcc": ((1, 1, 1), (2, 1, 1)),
    "liquid": ((2, 1, 1), (3, 1, 1), (2, 2, 1)),
    "coexistence": (4, 3),
    "vacancy": ((2, 1, 1), (3, 1, 1), (2, 2, 1)),
    "strained": ((1, 1, 1), (2, 1, 1)),
    "sheared": ((1, 1, 1), (2, 1, 1)),
}


def al_cell_atoms(family: str, cell) -> int:
    """Atoms in a config of ``family`` made from ``cell`` (an entry of :data:`AL_CELLS`)."""
    if family == "coexistence":
        return 4 * cell
    return 4 * cell[0] * cell[1] * cell[2] - (1 if family == "vacancy" else 0)


def _cells_within(family: str, max_atoms: int) -> tuple:
    """The cells of a phase family whose configs have at most ``max_atoms`` atoms."""
    cells = AL_CELLS[family]
    kept = tuple(c for c in cells if al_cell_atoms(family, c) <= max_atoms)
    if not kept:
        smallest = min(al_cell_atoms(family, c) for c in cells)
        raise ValueError(
            f"no Al {family!r} cell has at most max_atoms={max_atoms} atoms (the smallest has "
            f"{smallest}); raise max_atoms or leave {family!r} out of the counts"
        )
    return kept


def _md_family(
    rng,
    count: int,
    calc,
    per: int,
    scale: float,
    *,
    temperatures: tuple[float, ...],
    cells: tuple,
    start,
    phase,
    equilibrate: int,
    every: int = 25,
    melt: tuple[float, int] | None = None,
    **md,
) -> list[Atoms]:
    """MD snapshots of one phase family: trajectories cycle through ``temperatures`` (K), then
    ``cells``; ``start(t, cell, rng)`` returns the starting Atoms and extra ``md_snapshots``
    arguments; ``phase(t)`` is the label. Step counts are scaled by ``scale``."""
    out = []
    for k, n in enumerate(_trajectories(count, per, len(cells) * len(temperatures))):
        t = temperatures[k % len(temperatures)]
        atoms, extra = start(t, cells[(k // len(temperatures)) % len(cells)], rng)
        if melt is not None:
            extra = {**extra, "melt": (melt[0], _n(melt[1], scale))}
        for s in md_snapshots(atoms, calc, rng, temperature=t, n_snapshots=n, equilibrate=_n(equilibrate, scale),
                              every=_n(every, scale), **md, **extra):
            s.info[keys.PHASE] = phase(t)
            out.append(s)
    return out


def _fcc_thermal(rng, count, calc, per, scale, cells) -> list[Atoms]:
    return _md_family(rng, count, calc, per, scale, temperatures=FCC_TEMPERATURES, cells=cells,
                      start=lambda t, reps, _: (_fcc(A0 * _expansion(t), reps), {}),
                      phase=lambda t: f"fcc {t}K", equilibrate=300)


def _liquid(rng, count, calc, per, scale, cells) -> list[Atoms]:
    # liquid is ~10% less dense than the 300 K solid: start from a 3.5% longer lattice
    return _md_family(rng, count, calc, per, scale, temperatures=LIQUID_TEMPERATURES, cells=cells,
                      start=lambda t, reps, _: (_fcc(A0 * 1.035, reps), {}),
                      phase=lambda t: "liquid", equilibrate=300, timestep=1.5, melt=(3000.0, 600))


def _half_molten(t: float, layers: int, _rng) -> tuple[Atoms, dict]:
    """fcc column with room for the less dense liquid; the lower half is held fixed."""
    atoms = _fcc(A0 * _expansion(t), (1, 1, layers))
    cell = atoms.cell.array.copy()
    cell[2] *= 1.02
    atoms.set_cell(cell, scale_atoms=False)
    solid = np.flatnonzero(atoms.positions[:, 2] < cell[2, 2] / 2)
    return atoms, {"fixed": solid}


def _coexistence(rng, count, calc, per, scale, cells) -> list[Atoms]:
    return _md_family(rng, count, calc, max(2, per // 4), scale, temperatures=(T_MELT_AL,), cells=cells,
                      start=_half_molten, phase=lambda t: "coexistence", equilibrate=20, every=15,
                      timestep=1.5, melt=(2500.0, 400))


def _with_vacancy(t: float, reps: tuple[int, int, int], rng) -> tuple[Atoms, dict]:
    atoms = _fcc(A0 * _expansion(t), reps)
    del atoms[int(rng.integers(len(atoms)))]
    return atoms, {}


def _vacancy(rng, count, calc, per, scale, cells) -> list[Atoms]:
    return _md_family(rng, count, calc, per, scale, temperatures=VACANCY_TEMPERATURES,
                      cells=cells, start=_with_vacancy,
                      phase=lambda t: "vacancy", equilibrate=200)


def _deformed(rng, count, phase, normal, shear, cells) -> list[Atoms]:
    out = []
    for k in range(count):
        reps = cells[k % len(cells)]
        for _ in range(50):  # redraw the rare rattle that pushes two atoms too close
            a = _fcc(A0, reps)
            a.rattle(stdev=float(rng.uniform(0.02, 0.1)), rng=rng)
            a = deform(a, strain_matrix(rng, normal, shear))
            a.wrap()
            if min_distance(a) >= MIN_DIST_AL:
                break
        a.info[keys.PHASE] = phase
        out.append(a)
    return out


def generate_al(
    counts: int | Mapping[str, int],
    seed: int = 0,
    *,
    model_id: str = AL_MD_MODEL,
    name: str = "al",
    max_per_trajectory: int = 20,
    md_steps: float = 1.0,
    max_atoms: int = 16,
) -> ConfigSet:
    """Aluminium configurations, deterministic for a seed.

    Args:
        counts: total number (split by :data:`AL_MIX`) or configs per phase family
            (keys of :data:`AL_MIX`: fcc, liquid, coexistence, vacancy, strained, sheared).
        seed: random seed; each family draws from its own stream, so a family's configs do
            not depend on the other families' counts.
        model_id: EAM (KIM ID) used for the MD.
        name: id prefix (``{name}-{k:05d}``) and ConfigSet name.
        max_per_trajectory: MD snapshots taken from one trajectory (25 steps of 2 fs apart).
        md_steps: scale of every MD step count (1 = the dataset's; tests use less).
        max_atoms: largest cell (atoms) any family may use; a family with no cell that small
            is an error (al-gpaw: 8, i.e. 4- and 8-atom cells and 7-atom vacancy cells).

    Returns:
        ConfigSet with ``info[keys.PHASE]`` (``"fcc 300K"``, ``"liquid"``, ``"coexistence"``,
        ``"vacancy"``, ``"strained"``, ``"sheared"``) and ``info[keys.SOURCE]``; 4-16 atoms
        (at most ``max_atoms``), periodic, positions in Angstrom.
    """
    want = allocate(counts, AL_MIX) if isinstance(counts, int) else dict(counts)
    unknown = set(want) - set(AL_MIX)
    if unknown:
        raise ValueError(f"unknown Al phase families {sorted(unknown)}; known: {list(AL_MIX)}")
    cells = {f: _cells_within(f, max_atoms) for f in AL_MIX if want.get(f, 0) > 0}  # checked before any MD
    calc = (
        EIPCalculator(model_id)
        if any(want.get(f, 0) for f in ("fcc", "liquid", "coexistence", "vacancy"))
        else None
    )
    configs: list[Atoms] = []
    for i, family in enumerate(AL_MIX):
        n = int(want.get(family, 0))
        if n <= 0:
            continue
        rng = np.random.default_rng([seed, i])
        if family == "fcc":
            part = _fcc_thermal(rng, n, calc, max_per_trajectory, md_steps, cells["fcc"])
        elif family == "liquid":
            part = _liquid(rng, n, calc, max_per_trajectory, md_steps, cells["liquid"])
        elif family == "coexistence":
            part = _coexistence(rng, n, calc, max_per_trajectory, md_steps, cells["coexistence"])
        elif family == "vacancy":
            part = _vacancy(rng, n, calc, max_per_trajectory, md_steps, cells["vacancy"])
        elif family == "strained":
            part = _deformed(rng, n, "strained", normal=0.08, shear=0.01, cells=cells["strained"])
        else:
            part = _deformed(rng, n, "sheared", normal=0.01, shear=0.12, cells=cells["sheared"])
        configs.extend(part)
    return finish(configs, name, f"eiplab.dft.generators.al seed={seed} md={model_id}", MIN_DIST_AL)
