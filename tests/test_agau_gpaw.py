"""The built-in agau-gpaw dataset (eiplab's own GPAW DFT, `eiplab dft-generate`) against the DFT
store it was built from (dft-work/agau-gpaw/dft.jsonl, in git), its recipe and its roles."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from eiplab import keys
from eiplab.data import dataset_splits, load_dataset, provenance
from eiplab.data.builtin import BUILTIN, builtin_dir
from eiplab.dft.datasets import RECIPES
from eiplab.dft.store import DFTStore

WORK = Path(__file__).resolve().parents[1] / "dft-work" / "agau-gpaw"


@pytest.fixture(scope="module")
def agau():
    return load_dataset("agau-gpaw")


def test_counts_roles_and_provenance(agau):
    recipe = RECIPES["agau-gpaw"]
    labelled, hidden = agau.labelled(), agau.dft_hidden()
    assert labelled.sum() == recipe.n_labelled and hidden.sum() == recipe.n_audit
    assert (~labelled).sum() == recipe.n_pool  # the pool: 4,800 EIP-only configs + the 200 audit configs
    assert np.isfinite(agau.energies_dft()[hidden]).all()  # the audit's DFT is known, but hidden
    assert agau.species == ["Ag", "Au"] and set(agau.n_atoms()) == {2, 4, 6}
    assert len(set(agau.ids)) == len(agau) == recipe.n_labelled + recipe.n_pool
    prov = provenance("agau-gpaw")
    npz = builtin_dir() / BUILTIN["agau-gpaw"].file
    assert prov["sha256_npz"] == hashlib.sha256(npz.read_bytes()).hexdigest()
    assert prov["dft"]["settings"] == recipe.settings.as_dict() and prov["dft"]["failures"] == {}
    assert prov["roles"] == {"pool": recipe.n_pool - recipe.n_audit, "labelled": recipe.n_labelled,
                             "audit": recipe.n_audit}
    assert "expected_error_meV_per_atom" in prov["dft"] and prov["dft"]["cpu_hours"] > 1
    assert (builtin_dir() / BUILTIN["agau-gpaw"].licence).exists() and "MIT" in prov["licence"]
    # every Table 2 EIP labelled every config
    assert prov["eip_models"] and all(set(prov["eip_models"]) <= set(a.info[keys.ENERGY_EIP]) for a in agau)


def test_energies_and_forces_are_the_dft_store(agau):
    records = {rec.config_id: rec for rec in DFTStore(WORK / "dft.jsonl").load().values()}
    with_dft = [a for a in agau if np.isfinite(a.info.get(keys.ENERGY_DFT, np.nan))]
    assert len(with_dft) == len(records) == RECIPES["agau-gpaw"].n_labelled + RECIPES["agau-gpaw"].n_audit
    for atoms in with_dft:
        rec = records[atoms.info[keys.CONFIG_ID]]
        assert rec.ok and rec.n_atoms == len(atoms)
        assert atoms.info[keys.ENERGY_DFT] == pytest.approx(rec.energy, abs=1e-9)
        np.testing.assert_allclose(atoms.arrays[keys.FORCES_DFT], rec.forces, atol=1e-9)


def test_cv_splits_keep_the_audit_configs_in_the_pool(agau):
    assert BUILTIN["agau-gpaw"].splits == "cv" and BUILTIN["agau-gpaw"].tau == "auto"
    splits = dataset_splits(agau)
    ids = np.array(agau.ids)
    labelled, hidden = set(ids[agau.labelled()]), set(ids[agau.dft_hidden()])
    tests = [set(s.index[s == keys.TEST]) for s in splits]
    assert set().union(*tests) == labelled and sum(map(len, tests)) == len(labelled)  # 3 disjoint folds
    for split in splits:
        assert hidden <= set(split.index[split == keys.POOL])
        assert set(split.index[split != keys.POOL]) <= labelled
