"""Convert pyxtal-ff 0.2.3's Si dataset into eiplab's built-in ``si-pyxtal``.

Run once by the maintainers (the result ships in eiplab/data/builtin/):

    pip download --no-deps --no-binary :all: pyxtal-ff==0.2.3 -d .cache/pyxtal-ff
    python scripts/convert_pyxtal_si.py .cache/pyxtal-ff/pyxtal_ff-0.2.3.tar.gz

Source: pyxtal_ff/datasets/Si/PyXtal/Si.json in the sdist (MIT licence, copyright Qiang Zhu and
contributors): 6,887 silicon crystals, VASP PBE total energies (eV) and forces (eV/Angstrom),
fractional coordinates. Config ids are ``si-pyxtal-<index in Si.json>``. The phase label is the
coordination class within 2.75 Angstrom (structure only, see eiplab.data.phases).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from eiplab import keys
from eiplab.data import ConfigSet, read_pyxtal_json, save_packed
from eiplab.data.builtin import builtin_dir
from eiplab.data.phases import coordination_class

MEMBER = "pyxtal_ff-0.2.3/pyxtal_ff/datasets/Si/PyXtal/Si.json"
BOND_CUTOFF = 2.75  # Angstrom, between the Si-Si bond (2.35) and second neighbours (3.84)


def extract_json(sdist: Path, dest: Path) -> Path:
    """Extract Si.json and the licence text from the pyxtal-ff sdist."""
    with tarfile.open(sdist) as tar:
        tar.extract(MEMBER, dest, filter="data")
    return dest / MEMBER


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sdist", type=Path, help="pyxtal_ff-0.2.3.tar.gz")
    parser.add_argument("--out", type=Path, default=builtin_dir())
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        src = extract_json(args.sdist, Path(tmp))
        raw = src.read_bytes()
        configs = read_pyxtal_json(src, name="si-pyxtal")
    for a in configs:
        a.info[keys.SOURCE] = "pyxtal-ff-0.2.3/Si.json"
        a.info[keys.PHASE] = coordination_class(a, BOND_CUTOFF)
    configs = ConfigSet(configs, name="si-pyxtal")
    out = args.out / "si-pyxtal.npz"
    save_packed(out, configs)
    e = configs.energies_dft()
    prov = {
        "name": "si-pyxtal",
        "source": "PyPI sdist pyxtal-ff==0.2.3, member " + MEMBER,
        "licence": "MIT (see LICENSE-pyxtal-ff.txt)",
        "dft": "VASP, PBE (as documented by pyxtal-ff); total energies in eV, forces in eV/Angstrom",
        "sha256_Si.json": hashlib.sha256(raw).hexdigest(),
        "sha256_npz": hashlib.sha256(out.read_bytes()).hexdigest(),
        "n_configs": len(configs),
        "n_atoms_total": int(configs.n_atoms().sum()),
        "energy_sum_eV": float(np.sum(e)),
        "n_configs_e_per_atom_le_-4": int(np.sum(e / configs.n_atoms() <= -4.0)),
        "phase_rule": f"coordination class within {BOND_CUTOFF} Angstrom (eiplab.data.phases)",
        "converted_by": "scripts/convert_pyxtal_si.py",
    }
    (args.out / "si-pyxtal.provenance.json").write_text(json.dumps(prov, indent=2) + "\n")
    print(json.dumps(prov, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
