"""Unlabelled pools around a DFT dataset: EIP-driven MD and perturbation (no DFT needed).

The paper's KIM-Si pairs a small DFT set with a large pool of unlabelled bulk configurations.
For the built-in mlearn sets (Ge, Li, Mo) eiplab generates such a pool with the same kinds of
structures and temperatures as the DFT data (:data:`POOL_RECIPES`), through the KIM API:

- ``AIMD-NVT``: Langevin NVT MD snapshots of the DFT set's MD supercell (the ground-state
  crystal repeated, at the DFT runs' volume per atom) at the DFT runs' temperatures;
- ``Vacancy``: the same cell with one atom removed, MD at the DFT vacancy runs' temperatures;
- ``Elastic``: the ground-state cell under random strains within the DFT set's range, rattled;
- ``Surface``: MD snapshots at 300 K of the DFT set's surface slabs (their geometry only).

The MD is driven by one physics-based EIP of the element (``md_model``). Every draw comes from
the recipe's seed, which no DFT-labelled config shares (they come from VASP runs); each
generated config records it in ``info[keys.SOURCE]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms

from ... import keys
from ...data.configset import ConfigSet
from .common import EIPCalculator, deform, finish, md_snapshots, min_distance, strain_matrix

AIMD, VACANCY, ELASTIC, SURFACE = "AIMD-NVT", "Vacancy", "Elastic", "Surface"
GROUND_STATE = "Ground state crystal"  # the description mlearn gives its ground-state config


@dataclass(frozen=True)
class PoolRecipe:
    """How to grow the pool of one element.

    Attributes:
        element: chemical symbol.
        md_model: KIM ID of the EIP that drives the MD.
        supercell: repetitions of the ground-state cell for the MD cells.
        volumes: volume per atom of the MD cells relative to the ground state (V/V0).
        aimd: (temperature K, snapshots per volume) of the AIMD-like runs.
        vacancy: (temperature K, snapshots) of the vacancy runs (first volume).
        elastic: (largest normal strain, largest shear strain, configs) of the strained cells.
        elastic_supercell: repetitions of the ground-state cell for the strained cells.
        surface_snapshots: MD snapshots (300 K) per surface slab of the DFT set.
        min_dist: shortest allowed interatomic distance, Angstrom.
        seed: the recipe's random seed.
    """

    element: str
    md_model: str
    supercell: tuple[int, int, int]
    volumes: tuple[float, ...]
    aimd: tuple[tuple[float, int], ...]
    vacancy: tuple[tuple[float, int], ...]
    elastic: tuple[float, float, int]
    elastic_supercell: tuple[int, int, int]
    surface_snapshots: int
    min_dist: float
    seed: int

    @property
    def size(self) -> int:
        """Configs the recipe makes for a DFT set with ``n`` surface slabs: see :func:`pool_size`."""
        return (sum(n for _, n in self.aimd) * len(self.volumes) + sum(n for _, n in self.vacancy)
                + self.elastic[2])


# Temperatures and volumes are those of the mlearn AIMD runs (Zuo et al. 2020, read off the data:
# `description` and cell volumes); strains span the mlearn elastic sets' range.
POOL_RECIPES: dict[str, PoolRecipe] = {
    "Ge": PoolRecipe("Ge", "Tersoff_LAMMPS_Tersoff_1989_SiGe__MO_350526375143_003", (1, 1, 1), (1.014,),
                     aimd=((300, 300), (605, 300), (1089, 300), (1816, 300), (2422, 300)),
                     vacancy=((300, 300), (2422, 300)), elastic=(0.035, 0.02, 600), elastic_supercell=(1, 1, 1),
                     surface_snapshots=25, min_dist=1.8, seed=170_032),
    "Li": PoolRecipe("Li", "MEAM_LAMMPS_KimJungLee_2012_LiMg__MO_427397414195_000", (3, 3, 3), (0.9, 1.0, 1.1),
                     aimd=((300, 120), (408, 120), (680, 120), (907, 120)),
                     vacancy=((300, 300), (907, 300)), elastic=(0.01, 0.01, 600), elastic_supercell=(2, 2, 2),
                     surface_snapshots=30, min_dist=1.8, seed=170_003),
    "Mo": PoolRecipe("Mo", "EAM_Dynamo_ZhouJohnsonWadley_2004_Mo__MO_271256517527_005", (1, 1, 1), (0.983,),
                     aimd=((300, 500), (3000, 500), (6000, 500)),
                     vacancy=((300, 300), (6000, 300)), elastic=(0.035, 0.02, 600), elastic_supercell=(1, 1, 1),
                     surface_snapshots=30, min_dist=1.7, seed=170_042),
}


def pool_size(recipe: PoolRecipe, n_surfaces: int) -> int:
    """Number of configs :func:`generate_pool` makes with ``n_surfaces`` surface slabs."""
    return recipe.size + recipe.surface_snapshots * n_surfaces


def _ground_state(dft: ConfigSet) -> Atoms:
    found = [a for a in dft if GROUND_STATE in a.info.get(keys.SOURCE, "")]
    if not found:
        raise ValueError(f"{dft.name}: no config described as {GROUND_STATE!r} to build the pool's cells from")
    base = found[0]
    return Atoms(base.numbers, base.positions, cell=base.cell, pbc=True)


def _scaled(atoms: Atoms, volume_ratio: float) -> Atoms:
    b = atoms.copy()
    b.set_cell(atoms.cell.array * volume_ratio ** (1 / 3), scale_atoms=True)
    return b


def _runs(count: int, per: int = 25) -> list[int]:
    """``count`` snapshots cut into trajectories of at most ``per`` (fresh velocities each)."""
    n = max(1, -(-count // per))
    return [count // n + (1 if k < count % n else 0) for k in range(n)]


def _md(atoms: Atoms, calc, rng, temperature: float, count: int, phase: str, *, vacancy: bool = False,
        md_steps: float = 1.0) -> list[Atoms]:
    hot = temperature >= 2000
    out = []
    for n in _runs(count):
        start = atoms.copy()
        if vacancy:
            del start[int(rng.integers(len(start)))]
        for snap in md_snapshots(start, calc, rng, temperature=temperature, n_snapshots=n,
                                 equilibrate=max(1, round(400 * md_steps)), every=max(1, round(20 * md_steps)),
                                 timestep=1.0 if hot else 2.0):
            snap.info[keys.PHASE] = phase
            snap.info["temperature"] = float(temperature)
            out.append(snap)
    return out


def _strained(base: Atoms, rng, recipe: PoolRecipe) -> list[Atoms]:
    normal, shear, count = recipe.elastic
    out = []
    for _ in range(count):
        for _ in range(50):  # redraw the rare rattle that pushes two atoms too close
            a = base.copy()
            a.rattle(stdev=float(rng.uniform(0.005, 0.05)), rng=rng)
            a = deform(a, strain_matrix(rng, normal, shear))
            a.wrap()
            if min_distance(a) >= recipe.min_dist:
                break
        a.info[keys.PHASE] = ELASTIC
        out.append(a)
    return out


def generate_pool(dft: ConfigSet, recipe: PoolRecipe, *, name: str | None = None, md_steps: float = 1.0,
                  scale: float = 1.0) -> ConfigSet:
    """The unlabelled pool of ``recipe`` around the DFT set ``dft`` (deterministic for the recipe).

    Args:
        dft: the DFT-labelled configs (the ground-state crystal and the surface slabs are used as
            geometric templates; phases ``Surface`` mark the slabs).
        recipe: the element's :class:`PoolRecipe`.
        name: id prefix and ConfigSet name (default ``"<dft.name>-pool"``).
        md_steps: scale of every MD step count (tests use less).
        scale: scale of every snapshot count (tests use less; the built-in pools use 1).

    Returns:
        ConfigSet without DFT energies: ``info[keys.PHASE]`` in AIMD-NVT / Vacancy / Elastic /
        Surface, ``info["temperature"]`` (K) for MD snapshots, ``info[keys.SOURCE]`` naming the
        recipe, MD model and seed.

    Raises:
        ValueError: the DFT set has no ground-state config, or MD brought atoms closer than
            ``recipe.min_dist`` (see :func:`eiplab.dft.generators.common.finish`).
    """
    def n(count: int) -> int:
        return max(1, round(count * scale))

    calc = EIPCalculator(recipe.md_model)
    ground = _ground_state(dft)
    configs: list[Atoms] = []
    rng = np.random.default_rng([recipe.seed, 0])
    for volume in recipe.volumes:
        cell = _scaled(ground * recipe.supercell, volume)
        for temperature, count in recipe.aimd:
            configs += _md(cell, calc, rng, temperature, n(count), AIMD, md_steps=md_steps)
    rng = np.random.default_rng([recipe.seed, 1])
    cell = _scaled(ground * recipe.supercell, recipe.volumes[len(recipe.volumes) // 2])
    for temperature, count in recipe.vacancy:
        configs += _md(cell, calc, rng, temperature, n(count), VACANCY, vacancy=True, md_steps=md_steps)
    rng = np.random.default_rng([recipe.seed, 2])
    configs += _strained(ground * recipe.elastic_supercell, rng, recipe)[: n(recipe.elastic[2])]
    rng = np.random.default_rng([recipe.seed, 3])
    for slab in [a for a in dft if a.info.get(keys.PHASE) == SURFACE]:
        template = Atoms(slab.numbers, slab.positions, cell=slab.cell, pbc=True)
        configs += _md(template, calc, rng, 300.0, n(recipe.surface_snapshots), SURFACE, md_steps=md_steps)
    name = name or f"{dft.name}-pool"
    source = f"eiplab.dft.generators.pool {recipe.element} seed={recipe.seed} md={recipe.md_model}"
    return finish(configs, name, source, recipe.min_dist)
