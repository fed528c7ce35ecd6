"""Silver-gold configurations: Ag, Au and AgAu alloys of varied composition on fcc, bcc and hcp
lattices, ordered (L1_0, L1_2, B2, hcp B_h) and random arrangements, strained and thermally
rattled. Small cells (2-6 atoms, issue 17) so that DFT stays affordable.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from ase import Atoms
from ase.build import bulk

from ... import keys
from ...data.configset import ConfigSet
from .common import allocate, deform, finish, min_distance, strain_matrix

#: Default share of each phase label.
AGAU_MIX: dict[str, float] = {
    "fcc": 0.14,  # pure Ag or Au
    "bcc": 0.06,
    "hcp": 0.06,
    "ordered L1_0": 0.08,  # AgAu
    "ordered L1_2": 0.10,  # Ag3Au, AgAu3
    "ordered B2": 0.06,  # AgAu (CsCl)
    "ordered B_h": 0.04,  # AgAu on hcp, alternating basal planes
    "random fcc": 0.30,
    "random bcc": 0.08,
    "random hcp": 0.08,
}
#: PBE-like fcc lattice constants, Angstrom (experiment: Ag 4.09, Au 4.08; PBE ~4.15-4.16).
A_FCC = {"Ag": 4.15, "Au": 4.16}
MIN_DIST_AGAU = 2.1  # Angstrom; nearest neighbours are ~2.9 in fcc
MIN_ATOMS, MAX_ATOMS = 2, 6  # atoms per cell
#: Random fcc/bcc/hcp alloy cells: (lattice, cubic conventional?, repetitions) -> 2-6 atoms.
_RANDOM_CELLS = {
    "fcc": [
        ("fcc", True, (1, 1, 1)),  # 4
        ("fcc", False, (2, 1, 1)),  # 2
        ("fcc", False, (2, 2, 1)),  # 4
        ("fcc", False, (3, 2, 1)),  # 6
    ],
    "bcc": [
        ("bcc", True, (1, 1, 1)),  # 2
        ("bcc", True, (2, 1, 1)),  # 4
        ("bcc", False, (2, 2, 1)),  # 4
        ("bcc", True, (3, 1, 1)),  # 6
    ],
    "hcp": [
        ("hcp", False, (1, 1, 1)),  # 2
        ("hcp", False, (2, 1, 1)),  # 4
        ("hcp", False, (1, 1, 2)),  # 4
        ("hcp", False, (3, 1, 1)),  # 6
    ],
}


def _a_fcc(x_au: float) -> float:
    """Vegard's law fcc lattice constant for Au fraction ``x_au``, Angstrom."""
    return (1 - x_au) * A_FCC["Ag"] + x_au * A_FCC["Au"]


def _lattice(kind: str, x_au: float, cubic: bool) -> Atoms:
    """A one-species (Ag) cell of ``kind`` at the volume per atom of fcc with Au fraction x."""
    a = _a_fcc(x_au)
    v = a**3 / 4  # volume per atom, A^3
    if kind == "fcc":
        return bulk("Ag", "fcc", a=a, cubic=cubic)
    if kind == "bcc":
        return bulk("Ag", "bcc", a=(2 * v) ** (1 / 3), cubic=cubic)
    ah = (v * 2 / (np.sqrt(3) / 2 * np.sqrt(8 / 3))) ** (1 / 3)  # ideal c/a
    return bulk("Ag", "hcp", a=ah, c=ah * np.sqrt(8 / 3))


def _perturb(a: Atoms, rng: np.random.Generator) -> Atoms:
    """Volume +-4%, strain (normal +-3%, shear +-3%), thermal rattle sigma in [0, 0.12] A."""
    for _ in range(50):  # redraw the rare rattle that pushes two atoms too close
        f = strain_matrix(rng, 0.03, 0.03) * float(rng.uniform(0.96, 1.04))
        b = deform(a, f)
        if len(b) > 1:
            b.rattle(stdev=float(rng.uniform(0.0, 0.12)), rng=rng)
        b.wrap()
        if min_distance(b) >= MIN_DIST_AGAU:
            return b
    raise RuntimeError(
        f"could not perturb {a.get_chemical_formula()} without atoms < {MIN_DIST_AGAU} A apart"
    )


def _pure(rng, count, kind) -> list[Atoms]:
    out = []
    for k in range(count):
        el = ("Ag", "Au")[k % 2]
        cubic = bool(k // 2 % 2) and kind != "hcp"
        a = _lattice(kind, float(el == "Au"), cubic)
        if len(a) < MIN_ATOMS:  # a 1-atom primitive cell: two of them
            a = a * (2, 1, 1)
        a.symbols[:] = el
        a = _perturb(a, rng)
        a.info[keys.PHASE] = kind
        out.append(a)
    return out


def _ordered(rng, count, phase) -> list[Atoms]:
    out = []
    for k in range(count):
        if phase == "ordered L1_0":  # fcc, alternating (001) planes: tetragonal 2-atom cell
            a = _lattice("fcc", 0.5, True)  # 4 atoms, z = 0, a/2
            a.symbols[a.positions[:, 2] > 0.1] = "Au"
            if k % 2:  # the 2-atom primitive tetragonal cell
                c = a.cell.lengths()[0]
                a = Atoms(
                    "AgAu",
                    scaled_positions=[(0, 0, 0), (0.5, 0.5, 0.5)],
                    cell=[c / np.sqrt(2), c / np.sqrt(2), c],
                    pbc=True,
                )
        elif phase == "ordered L1_2":  # cubic 4-atom cell: corner one species, faces the other
            minority = ("Au", "Ag")[k % 2]
            a = _lattice("fcc", 0.25 if minority == "Au" else 0.75, True)
            a.symbols[:] = "Ag" if minority == "Au" else "Au"
            a.symbols[0] = minority  # the corner atom (0, 0, 0)
        elif phase == "ordered B2":
            a = _lattice("bcc", 0.5, True)
            a.symbols[1] = "Au"
        else:  # B_h: hcp with the two basal planes of the 2-atom cell on different species
            a = _lattice("hcp", 0.5, False)
            a.symbols[1] = "Au"
            if k % 2:
                a = a * (1, 1, 2)
                a.symbols[:] = ["Ag", "Au", "Ag", "Au"]
        if rng.uniform() < 0.5:  # swap species: the same arrangement, other ordering
            a.symbols[:] = ["Au" if s == "Ag" else "Ag" for s in a.get_chemical_symbols()]
        a = _perturb(a, rng)
        a.info[keys.PHASE] = phase
        out.append(a)
    return out


def _random(rng, count, kind) -> list[Atoms]:
    out = []
    cells = _RANDOM_CELLS[kind]
    for k in range(count):
        lat, cubic, reps = cells[k % len(cells)]
        base = _lattice(lat, 0.5, cubic) * reps
        n = len(base)
        n_au = int(rng.integers(1, n)) if n > 1 else 0  # both species present
        x = n_au / n
        a = _lattice(lat, x, cubic) * reps
        symbols = np.array(["Ag"] * n, dtype=object)
        symbols[rng.choice(n, size=n_au, replace=False)] = "Au"
        a.symbols[:] = list(symbols)
        a = _perturb(a, rng)
        a.info[keys.PHASE] = f"random {kind}"
        out.append(a)
    return out


def generate_agau(
    counts: int | Mapping[str, int],
    seed: int = 0,
    *,
    name: str = "agau",
) -> ConfigSet:
    """Ag, Au and AgAu configurations (2-6 atoms), deterministic for a seed.

    Args:
        counts: total number (split by :data:`AGAU_MIX`) or configs per phase label (keys of
            :data:`AGAU_MIX`).
        seed: random seed; each phase label draws from its own stream.
        name: id prefix (``{name}-{k:05d}``) and ConfigSet name.

    Returns:
        ConfigSet with ``info[keys.PHASE]`` one of the :data:`AGAU_MIX` keys and
        ``info[keys.SOURCE]``; all cells periodic, positions in Angstrom.
    """
    want = allocate(counts, AGAU_MIX) if isinstance(counts, int) else dict(counts)
    unknown = set(want) - set(AGAU_MIX)
    if unknown:
        raise ValueError(f"unknown AgAu phases {sorted(unknown)}; known: {list(AGAU_MIX)}")
    configs: list[Atoms] = []
    for i, phase in enumerate(AGAU_MIX):
        n = int(want.get(phase, 0))
        if n <= 0:
            continue
        rng = np.random.default_rng([seed, 100 + i])
        if phase in ("fcc", "bcc", "hcp"):
            configs.extend(_pure(rng, n, phase))
        elif phase.startswith("ordered"):
            configs.extend(_ordered(rng, n, phase))
        else:
            configs.extend(_random(rng, n, phase.split()[1]))
    return finish(configs, name, f"eiplab.dft.generators.agau seed={seed}", MIN_DIST_AGAU)
