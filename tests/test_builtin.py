"""The built-in si-pyxtal dataset against pyxtal-ff's own Si.json (PyPI sdist)."""

import hashlib
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest

from eiplab import keys
from eiplab.data import load_dataset, provenance

SDIST = Path(__file__).resolve().parent.parent / ".cache" / "pyxtal-ff" / "pyxtal_ff-0.2.3.tar.gz"
MEMBER = "pyxtal_ff-0.2.3/pyxtal_ff/datasets/Si/PyXtal/Si.json"


@pytest.fixture(scope="module")
def full():
    return load_dataset("si-pyxtal", max_energy_per_atom=None)


def test_counts_and_default_cut(full):
    assert len(full) == 6887
    assert full.species == ["Si"]
    assert sorted(set(full.n_atoms())) == [1, 2, 3, 4, 6, 8, 16]
    cut = load_dataset("si-pyxtal")
    assert len(cut) == 5352  # pyxtal-ff's own Si_train.json count (E <= -4 eV/atom)
    assert (cut.energies_dft() / cut.n_atoms() <= -4.0).all()
    assert len(set(full.ids)) == len(full)


def test_provenance_matches_file(full):
    prov = provenance("si-pyxtal")
    assert prov["n_configs"] == len(full)
    assert prov["energy_sum_eV"] == pytest.approx(float(np.sum(full.energies_dft())), abs=1e-6)
    assert "MIT" in prov["licence"]


@pytest.mark.skipif(not SDIST.exists(), reason="pyxtal-ff sdist not fetched (scripts/setup.sh fetches it)")
def test_matches_pyxtal_ff_json(full):
    with tarfile.open(SDIST) as tar:
        raw = tar.extractfile(MEMBER).read()
    assert hashlib.sha256(raw).hexdigest() == provenance("si-pyxtal")["sha256_Si.json"]
    records = json.loads(raw)
    assert len(records) == len(full)
    for i in np.random.default_rng(0).choice(len(records), 300, replace=False):
        rec, atoms = records[i], full[i]
        assert atoms.info[keys.CONFIG_ID] == f"si-pyxtal-{i:05d}"
        assert atoms.info[keys.ENERGY_DFT] == pytest.approx(rec["energy"], abs=1e-9)
        np.testing.assert_allclose(atoms.arrays[keys.FORCES_DFT], rec["force"], atol=1e-9)
        np.testing.assert_allclose(atoms.cell.array, rec["lattice"]["data"], atol=1e-9)
        np.testing.assert_allclose(atoms.get_scaled_positions(wrap=False), rec["coords"]["data"], atol=1e-9)
    e_all = np.array([r["energy"] for r in records])
    np.testing.assert_allclose(full.energies_dft(), e_all, atol=1e-9)
