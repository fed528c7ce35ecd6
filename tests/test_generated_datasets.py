"""The built-in datasets eiplab generated itself (its own GPAW DFT, `eiplab dft-generate`:
agau-gpaw, al-gpaw) against the DFT store each was built from (dft-work/<name>/dft.jsonl, in git),
its recipe and its roles."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from eiplab import keys
from eiplab.data import dataset_splits, load_dataset, provenance
from eiplab.data.builtin import BUILTIN, DATA_LICENCE, builtin_dir
from eiplab.dft.datasets import RECIPES
from eiplab.dft.store import DFTStore

DFT_WORK = Path(__file__).resolve().parents[1] / "dft-work"
#: What each generated dataset's recipe makes: species and cell sizes (atoms).
EXPECTED = {
    "agau-gpaw": (["Ag", "Au"], {2, 4, 6}),
    "al-gpaw": (["Al"], {4, 7, 8}),
}
GENERATED = sorted(name for name, spec in BUILTIN.items() if spec.licence == DATA_LICENCE)


@pytest.fixture(scope="module", params=GENERATED)
def generated(request):
    return request.param, load_dataset(request.param)


def test_every_generated_dataset_is_checked():
    assert "agau-gpaw" in GENERATED and set(GENERATED) <= set(EXPECTED) and set(GENERATED) <= set(RECIPES)


def test_counts_roles_and_provenance(generated):
    name, data = generated
    recipe = RECIPES[name]
    labelled, hidden = data.labelled(), data.dft_hidden()
    assert labelled.sum() == recipe.n_labelled and hidden.sum() == recipe.n_audit
    assert (~labelled).sum() == recipe.n_pool  # the pool: EIP-only configs + the audit configs
    assert np.isfinite(data.energies_dft()[hidden]).all()  # the audit's DFT is known, but hidden
    species, sizes = EXPECTED[name]
    assert data.species == species and set(data.n_atoms()) == sizes
    assert len(set(data.ids)) == len(data) == recipe.n_labelled + recipe.n_pool
    prov = provenance(name)
    npz = builtin_dir() / BUILTIN[name].file
    assert prov["sha256_npz"] == hashlib.sha256(npz.read_bytes()).hexdigest()
    assert prov["dft"]["settings"] == recipe.settings.as_dict() and prov["dft"]["failures"] == {}
    assert prov["roles"] == {"pool": recipe.n_pool - recipe.n_audit, "labelled": recipe.n_labelled,
                             "audit": recipe.n_audit}
    assert "expected_error_meV_per_atom" in prov["dft"] and prov["dft"]["cpu_hours"] > 1
    assert (builtin_dir() / BUILTIN[name].licence).exists() and "MIT" in prov["licence"]
    # every Table 2 EIP labelled every config
    assert prov["eip_models"] and all(set(prov["eip_models"]) <= set(a.info[keys.ENERGY_EIP]) for a in data)
    # an EIP that failed on a config left NaN there, and the provenance counts it
    failed = {m: sum(not np.isfinite(a.info[keys.ENERGY_EIP][m]) for a in data) for m in prov["eip_models"]}
    assert prov.get("eip_failures", {}) == {m: n for m, n in failed.items() if n}


def test_energies_and_forces_are_the_dft_store(generated):
    name, data = generated
    records = {rec.config_id: rec for rec in DFTStore(DFT_WORK / name / "dft.jsonl").load().values()}
    with_dft = [a for a in data if np.isfinite(a.info.get(keys.ENERGY_DFT, np.nan))]
    assert len(with_dft) == len(records) == RECIPES[name].n_labelled + RECIPES[name].n_audit
    for atoms in with_dft:
        rec = records[atoms.info[keys.CONFIG_ID]]
        assert rec.ok and rec.n_atoms == len(atoms)
        assert atoms.info[keys.ENERGY_DFT] == pytest.approx(rec.energy, abs=1e-9)
        np.testing.assert_allclose(atoms.arrays[keys.FORCES_DFT], rec.forces, atol=1e-9)


def test_cv_splits_keep_the_audit_configs_in_the_pool(generated):
    name, data = generated
    assert BUILTIN[name].splits == "cv" and BUILTIN[name].tau == "auto"
    splits = dataset_splits(data)
    ids = np.array(data.ids)
    labelled, hidden = set(ids[data.labelled()]), set(ids[data.dft_hidden()])
    tests = [set(s.index[s == keys.TEST]) for s in splits]
    assert set().union(*tests) == labelled and sum(map(len, tests)) == len(labelled)  # 3 disjoint folds
    for split in splits:
        assert hidden <= set(split.index[split == keys.POOL])
        assert set(split.index[split != keys.POOL]) <= labelled


def test_a_recipe_not_shipped_yet_says_how_to_make_it(monkeypatch, tmp_path):
    from eiplab.data import DataError

    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(RECIPES, "xx-gpaw", RECIPES["agau-gpaw"])  # a recipe with no built-in data
    with pytest.raises(DataError, match=r"xx-gpaw: a DFT dataset eiplab generates .*eiplab dft-generate --dataset xx-gpaw"):
        load_dataset("xx-gpaw")
    with pytest.raises(DataError, match="no such file or folder, and not a built-in dataset"):
        load_dataset("yy-gpaw")
