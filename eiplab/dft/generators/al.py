"""Aluminium configurations in the spirit of ANI-Al: hot fcc solid, liquid, solid-liquid
coexistence, vacancies, strained and sheared cells. Small cells (4-16 atoms), MD with an EAM
model through the KIM API (eiplab's kimpy boundary) and ASE's Langevin thermostat.
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


def _fcc_thermal(rng, count, calc, per, scale) -> list[Atoms]:
    out = []
    for k, n in enumerate(_trajectories(count, per, 2 * len(FCC_TEMPERATURES))):
        t = FCC_TEMPERATURES[k % len(FCC_TEMPERATURES)]
        reps = ((1, 1, 1), (2, 1, 1))[(k // len(FCC_TEMPERATURES)) % 2]
        start = _fcc(A0 * _expansion(t), reps)
        for s in md_snapshots(
            start,
            calc,
            rng,
            temperature=t,
            n_snapshots=n,
            equilibrate=_n(300, scale),
            every=_n(25, scale),
        ):
            s.info[keys.PHASE] = f"fcc {t}K"
            out.append(s)
    return out


def _liquid(rng, count, calc, per, scale) -> list[Atoms]:
    out = []
    for k, n in enumerate(_trajectories(count, per, 3 * len(LIQUID_TEMPERATURES))):
        t = LIQUID_TEMPERATURES[k % len(LIQUID_TEMPERATURES)]
        reps = ((2, 1, 1), (3, 1, 1), (2, 2, 1))[(k // len(LIQUID_TEMPERATURES)) % 3]
        start = _fcc(A0 * 1.035, reps)  # liquid is ~10% less dense than the 300 K solid
        for s in md_snapshots(
            start,
            calc,
            rng,
            temperature=t,
            n_snapshots=n,
            equilibrate=_n(300, scale),
            every=_n(25, scale),
            timestep=1.5,
            melt=(3000.0, _n(600, scale)),
        ):
            s.info[keys.PHASE] = "liquid"
            out.append(s)
    return out


def _coexistence(rng, count, calc, per, scale) -> list[Atoms]:
    out = []
    for k, n in enumerate(_trajectories(count, max(2, per // 4), 2)):
        layers = (4, 3)[k % 2]
        start = _fcc(A0 * _expansion(T_MELT_AL), (1, 1, layers))
        cell = start.cell.array.copy()
        cell[2] *= 1.02  # room for the less dense liquid half
        start.set_cell(cell, scale_atoms=False)
        z = start.positions[:, 2]
        solid = np.flatnonzero(z < cell[2, 2] / 2)
        for s in md_snapshots(
            start,
            calc,
            rng,
            temperature=T_MELT_AL,
            n_snapshots=n,
            equilibrate=_n(20, scale),
            every=_n(15, scale),
            timestep=1.5,
            melt=(2500.0, _n(400, scale)),
            fixed=solid,
        ):
            s.info[keys.PHASE] = "coexistence"
            out.append(s)
    return out


def _vacancy(rng, count, calc, per, scale) -> list[Atoms]:
    out = []
    for k, n in enumerate(_trajectories(count, per, 3 * len(VACANCY_TEMPERATURES))):
        t = VACANCY_TEMPERATURES[k % len(VACANCY_TEMPERATURES)]
        reps = ((2, 1, 1), (3, 1, 1), (2, 2, 1))[(k // len(VACANCY_TEMPERATURES)) % 3]
        start = _fcc(A0 * _expansion(t), reps)
        del start[int(rng.integers(len(start)))]
        for s in md_snapshots(
            start,
            calc,
            rng,
            temperature=t,
            n_snapshots=n,
            equilibrate=_n(200, scale),
            every=_n(25, scale),
        ):
            s.info[keys.PHASE] = "vacancy"
            out.append(s)
    return out


def _deformed(rng, count, phase, normal, shear) -> list[Atoms]:
    out = []
    for k in range(count):
        reps = ((1, 1, 1), (2, 1, 1))[k % 2]
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

    Returns:
        ConfigSet with ``info[keys.PHASE]`` (``"fcc 300K"``, ``"liquid"``, ``"coexistence"``,
        ``"vacancy"``, ``"strained"``, ``"sheared"``) and ``info[keys.SOURCE]``; 4-16 atoms,
        periodic, positions in Angstrom.
    """
    want = allocate(counts, AL_MIX) if isinstance(counts, int) else dict(counts)
    unknown = set(want) - set(AL_MIX)
    if unknown:
        raise ValueError(f"unknown Al phase families {sorted(unknown)}; known: {list(AL_MIX)}")
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
            part = _fcc_thermal(rng, n, calc, max_per_trajectory, md_steps)
        elif family == "liquid":
            part = _liquid(rng, n, calc, max_per_trajectory, md_steps)
        elif family == "coexistence":
            part = _coexistence(rng, n, calc, max_per_trajectory, md_steps)
        elif family == "vacancy":
            part = _vacancy(rng, n, calc, max_per_trajectory, md_steps)
        elif family == "strained":
            part = _deformed(rng, n, "strained", normal=0.08, shear=0.01)
        else:
            part = _deformed(rng, n, "sheared", normal=0.01, shear=0.12)
        configs.extend(part)
    return finish(configs, name, f"eiplab.dft.generators.al seed={seed} md={model_id}", MIN_DIST_AL)
