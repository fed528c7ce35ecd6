"""The small convergence study behind the built-in datasets' DFT settings.

For each system a few representative cells are computed on a cutoff scan (at a fixed k-point
density) and a k-point scan (at a fixed cutoff). The quantities checked are energy
*differences* per atom (strain, disorder, alloy formation), since datasets are used through
differences and per-species offsets, not absolute totals. The chosen setting is the cheapest
one whose differences all lie within ``tolerance`` (default 5 meV/atom) of the finest one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from ase import Atoms
from ase.build import bulk

from .. import keys
from .gpaw_calc import make_calculator
from .runner import CalculatorFactory, label_dft
from .settings import DFTSettings


@dataclass(frozen=True)
class Study:
    """One system's convergence study.

    Attributes:
        system: ``"Al"`` or ``"AgAu"`` (a label).
        cells: named representative cells.
        differences: named energy differences per atom, each ``{cell name: coefficient}``
            applied to total energies (eV); coefficients include the 1/N per-atom factors.
    """

    system: str
    cells: Mapping[str, Atoms]
    differences: Mapping[str, Mapping[str, float]]


def al_study() -> Study:
    """Al: 4-atom fcc; the same strained (+4% x, -3% z, 5% shear); a rattled 4-atom cell."""
    fcc = bulk("Al", "fcc", a=4.04, cubic=True)
    strained = fcc.copy()
    strained.set_cell(
        fcc.cell.array @ np.array([[1.04, 0.05, 0], [0.05, 1.0, 0], [0, 0, 0.97]]).T,
        scale_atoms=True,
    )
    rattled = fcc.copy()
    rattled.rattle(0.15, seed=3)
    return Study(
        "Al",
        {"fcc": fcc, "strained": strained, "rattled": rattled},
        {
            "strained - fcc": {"strained": 0.25, "fcc": -0.25},
            "rattled - fcc": {"rattled": 0.25, "fcc": -0.25},
        },
    )


def agau_study() -> Study:
    """AgAu: 1-atom fcc Ag and Au, L1_2 Ag3Au (formation energy), B2 AgAu (vs fcc)."""
    ag = bulk("Ag", "fcc", a=4.15)
    au = bulk("Au", "fcc", a=4.16)
    l12 = bulk("Ag", "fcc", a=4.15, cubic=True)
    l12.symbols[0] = "Au"
    b2 = bulk("Ag", "bcc", a=3.30, cubic=True)
    b2.symbols[1] = "Au"
    return Study(
        "AgAu",
        {"Ag": ag, "Au": au, "Ag3Au L1_2": l12, "AgAu B2": b2},
        {
            "E_f(Ag3Au L1_2)": {"Ag3Au L1_2": 0.25, "Ag": -0.75, "Au": -0.25},
            "E_f(AgAu B2)": {"AgAu B2": 0.5, "Ag": -0.5, "Au": -0.5},
        },
    )


def run_study(
    studies: Sequence[Study],
    store: str | os.PathLike,
    *,
    base: DFTSettings | None = None,
    cutoffs: Sequence[float] = (250, 300, 350, 400, 500),
    kpt_densities: Sequence[float] = (1.5, 2.0, 2.5, 3.0, 3.5),
    scan_kpt_density: float = 2.5,
    scan_cutoff: float = 350.0,
    tolerance: float = 0.005,
    n_workers: int = 2,
    progress: bool = True,
    calculator_factory: CalculatorFactory = make_calculator,
) -> tuple[pd.DataFrame, dict[str, DFTSettings]]:
    """Run the cutoff and k-point scans (resumable through ``store``) and choose settings.

    Args:
        studies: systems to study (e.g. ``[al_study(), agau_study()]``).
        store: DFT store file (:class:`DFTStore`); rerunning reuses what it holds.
        base: settings that are not scanned (xc, smearing, SCF tolerances, setups);
            default :class:`DFTSettings()`.
        cutoffs: plane-wave cutoffs of the cutoff scan, eV (the largest is the reference).
        kpt_densities: k-point densities of the k scan, points per 1/Angstrom (the largest is
            the reference).
        scan_kpt_density: k-point density held during the cutoff scan.
        scan_cutoff: cutoff held during the k-point scan, eV.
        tolerance: allowed deviation from the reference of every difference, eV/atom.
        n_workers: worker processes.
        progress: progress bar.
        calculator_factory: calculator factory (GPAW by default).

    Returns:
        ``(table, chosen)``: ``table.attrs["converged_within_scan"][(system, scan)]`` is
        False when only the finest setting passes (the scan shows no convergence: extend it);
        one row per (system, scan, setting, difference) with ``value``
        (eV/atom), ``error_meV`` (|value - reference|, meV/atom), ``cpu_seconds`` (all cells
        of the system at that setting) and ``converged``; ``chosen[system]`` = ``base`` with
        the smallest converged cutoff and k-point density.
    """
    base = base or DFTSettings()
    points: list[tuple[str, float, float]] = [("cutoff", c, scan_kpt_density) for c in cutoffs]
    points += [("kpts", scan_cutoff, k) for k in kpt_densities]
    unique: dict[tuple[str, str, float, float], Atoms] = {}
    for st in studies:
        for _, cut, kd in points:  # a setting in both scans is computed once
            for name, cell in st.cells.items():
                a = cell.copy()
                a.info[keys.CONFIG_ID] = f"{st.system}:{name}:{cut:g}:{kd:g}"
                unique[(st.system, name, float(cut), float(kd))] = a
    where = list(unique)
    df = label_dft(
        list(unique.values()),
        [base.replace(cutoff=cut, kpt_density=kd) for _, _, cut, kd in where],
        store,
        n_workers=n_workers,
        progress=progress,
        calculator_factory=calculator_factory,
        desc="convergence",
    )
    energy = {w: float(e) for w, e in zip(where, df["energy"], strict=True)}
    cpu = {w: float(c) for w, c in zip(where, df["cpu_seconds"], strict=True)}

    rows = []
    chosen: dict[str, DFTSettings] = {}
    within: dict[tuple[str, str], bool] = {}
    for st in studies:
        best: dict[str, float] = {}
        for scan in ("cutoff", "kpts"):
            pts = [p for p in points if p[0] == scan]
            if not pts:  # scan skipped: keep the base value
                best[scan] = base.cutoff if scan == "cutoff" else base.kpt_density
                continue
            # reference: the finest setting of the scan
            ref = max(pts, key=lambda p: p[1] if scan == "cutoff" else p[2])
            ok_at: list[tuple[float, bool]] = []
            for _, cut, kd in pts:
                all_ok = True
                for dname, coeffs in st.differences.items():
                    val = sum(
                        c * energy[(st.system, n, float(cut), float(kd))] for n, c in coeffs.items()
                    )
                    rv = sum(
                        c * energy[(st.system, n, float(ref[1]), float(ref[2]))]
                        for n, c in coeffs.items()
                    )
                    err = abs(val - rv)
                    ok = bool(np.isfinite(err) and err <= tolerance)
                    all_ok &= ok
                    rows.append(
                        {
                            "system": st.system,
                            "scan": scan,
                            "cutoff_eV": cut,
                            "kpt_density": kd,
                            "kpts_largest_cell": "x".join(
                                map(
                                    str,
                                    base.replace(cutoff=cut, kpt_density=kd).kpts(
                                        max(st.cells.values(), key=len)
                                    ),
                                )
                            ),
                            "difference": dname,
                            "value_eV_per_atom": val,
                            "error_meV_per_atom": 1000 * err,
                            "converged": ok,
                            "cpu_seconds": sum(
                                cpu[(st.system, n, float(cut), float(kd))] for n in st.cells
                            ),
                        }
                    )
                ok_at.append((cut if scan == "cutoff" else kd, all_ok))
            # the smallest value from which on every finer setting is converged too
            good = [v for i, (v, _) in enumerate(ok_at) if all(o for _, o in ok_at[i:])]
            best[scan] = min(good)
            # only the reference itself passes: the scan does not show convergence
            within[(st.system, scan)] = len(good) > 1
        chosen[st.system] = base.replace(
            cutoff=float(best["cutoff"]), kpt_density=float(best["kpts"])
        )
    table = pd.DataFrame(rows)
    table.attrs["converged_within_scan"] = within
    return table, chosen


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m eiplab.dft.convergence OUT_DIR``: run both studies, write ``table.csv`` and
    ``chosen.json`` into OUT_DIR (the DFT store ``store.jsonl`` there makes it resumable)."""
    import argparse
    import json

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("out", help="output folder")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--smearing", type=float, default=0.1, help="Fermi-Dirac width, eV")
    p.add_argument("--cutoffs", type=float, nargs="*", default=[250, 300, 350, 400, 500])
    p.add_argument("--kpt-densities", type=float, nargs="*", default=[1.5, 2.0, 2.5, 3.0, 3.5])
    p.add_argument("--scan-cutoff", type=float, default=350.0)
    p.add_argument("--scan-kpt-density", type=float, default=2.5)
    p.add_argument("--name", default="table", help="stem of the output files")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base = DFTSettings(smearing=args.smearing, cutoff=args.scan_cutoff)
    table, chosen = run_study(
        [al_study(), agau_study()],
        out / "store.jsonl",
        base=base,
        cutoffs=args.cutoffs,
        kpt_densities=args.kpt_densities,
        scan_cutoff=args.scan_cutoff,
        scan_kpt_density=args.scan_kpt_density,
        n_workers=args.workers,
    )
    table.insert(2, "smearing_eV", args.smearing)
    table.to_csv(out / f"{args.name}.csv", index=False, float_format="%.6g")
    (out / f"{args.name}.chosen.json").write_text(
        json.dumps({k: v.as_dict() for k, v in chosen.items()}, indent=2) + "\n"
    )
    with pd.option_context("display.width", 200, "display.max_rows", 200):
        print(table.to_string(index=False))
    within = table.attrs["converged_within_scan"]
    for system, s in chosen.items():
        print(f"{system}: cutoff {s.cutoff:g} eV, k-point density {s.kpt_density:g} /A")
        for (sys_, scan), ok in within.items():
            if sys_ == system and not ok:
                print(f"  WARNING: the {scan} scan does not converge within its range")


if __name__ == "__main__":
    main()
