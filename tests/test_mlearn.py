"""The built-in mlearn sets (Ge, Li, Mo): DFT configs against the mlearn JSON, the generated
pools, the KIM-Si style splits, the authors' split files, the EIPs found for an element and the
refusal of models fitted on these data."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from eiplab import keys
from eiplab.data import DataError, cv_splits, dataset_splits, load_dataset, provenance, read_split
from eiplab.data.builtin import BUILTIN

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "mlearn"  # the project's read-only data
COUNTS = {"Ge": (228, 25), "Li": (241, 29), "Mo": (194, 23)}  # mlearn training.json, test.json


@pytest.fixture(scope="module", params=sorted(COUNTS))
def element(request):
    return request.param


@pytest.fixture(scope="module")
def dataset(element):
    return load_dataset(f"{element.lower()}-mlearn")


def test_counts_pool_and_provenance(element, dataset):
    n_train, n_test = COUNTS[element]
    labelled = np.isfinite(dataset.energies_dft())
    assert labelled.sum() == n_train + n_test
    assert (~labelled).sum() >= 3000  # the unlabelled pool
    assert dataset.species == [element] and len(set(dataset.ids)) == len(dataset)
    pool = [a for a, known in zip(dataset, labelled, strict=True) if not known]
    assert {a.info[keys.PHASE] for a in pool} == {"AIMD-NVT", "Vacancy", "Elastic", "Surface"}
    assert all("seed=" in a.info[keys.SOURCE] and "md=" in a.info[keys.SOURCE] for a in pool)
    prov = provenance(dataset.name)
    assert prov["n_training"] == n_train and prov["n_test"] == n_test and prov["n_pool"] == len(pool)
    assert prov["energy_sum_eV"] == pytest.approx(float(np.nansum(dataset.energies_dft())), abs=1e-6)
    assert "BSD" in prov["licence"] and "SNAP_ZuoChenLi_2019" in prov["leakage"]
    assert (Path(__file__).resolve().parents[1] / "eiplab/data/builtin/LICENSE-mlearn.txt").exists()


@pytest.mark.skipif(not SHARED.exists(), reason="the mlearn JSON (../shared/data/mlearn) is not on this machine")
def test_dft_configs_match_the_mlearn_json(element, dataset):
    by_id = dataset.by_id()
    for stem in ("training", "test"):
        raw = (SHARED / element / f"{stem}.json").read_bytes()
        assert hashlib.sha256(raw).hexdigest() == provenance(dataset.name)[f"sha256_{stem}.json"]
        records = json.loads(raw)
        assert len(records) == COUNTS[element][stem == "test"]
        for k, record in enumerate(records):
            atoms = by_id[f"{dataset.name}-{stem}-{k:04d}"]
            assert atoms.info[keys.ENERGY_DFT] == pytest.approx(record["outputs"]["energy"], abs=1e-9)
            np.testing.assert_allclose(atoms.arrays[keys.FORCES_DFT], record["outputs"]["forces"], atol=1e-9)
            np.testing.assert_allclose(atoms.positions, [s["xyz"] for s in record["structure"]["sites"]], atol=1e-9)
            np.testing.assert_allclose(atoms.cell.array, record["structure"]["lattice"]["matrix"], atol=1e-9)
            assert atoms.info[keys.PHASE] == record["group"]


def test_cv_splits_follow_the_kim_si_protocol(element, dataset):
    splits = dataset_splits(dataset)  # the dataset's own scheme: cv
    assert BUILTIN[dataset.name].splits == "cv" and len(splits) == 3
    labelled = set(np.array(dataset.ids)[np.isfinite(dataset.energies_dft())])
    tests = [set(s.index[s == keys.TEST]) for s in splits]
    assert set().union(*tests) == labelled and sum(map(len, tests)) == len(labelled)  # disjoint folds
    for split in splits:
        assert set(split.index[split == keys.POOL]) == set(dataset.ids) - labelled  # the fixed pool
        n_train, n_val = (split == keys.TRAIN).sum(), (split == keys.VAL).sum()
        assert n_val == pytest.approx(0.2 * (n_train + n_val), abs=1)
    assert [s.equals(t) for s, t in zip(splits, cv_splits(dataset), strict=True)] == [True] * 3


def test_authors_split_files_are_read(tmp_path):
    dataset = load_dataset("mo-mlearn")
    split = cv_splits(dataset, seeds=(0,))[0]
    marks = {keys.POOL: "pretrain", keys.TRAIN: "train", keys.VAL: "val", keys.TEST: "test"}
    rows = pd.DataFrame({"configs": [f"/data/mlearn/{cid}.xyz" for cid in split.index],
                         "mark": [marks[v] for v in split]})
    rows.to_csv(tmp_path / "split.csv", index=False)
    read = read_split(tmp_path / "split.csv", dataset)
    assert read.sort_index().equals(split.rename("split").sort_index())
    rows.loc[0, "mark"] = "holdout"
    rows.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DataError, match=r"unknown mark\(s\) \['holdout'\]"):
        read_split(tmp_path / "bad.csv", dataset)
    rows.loc[0, ["configs", "mark"]] = ["/data/other/x-0001.xyz", "train"]
    rows.to_csv(tmp_path / "other.csv", index=False)
    with pytest.raises(DataError, match="matches no config id of dataset 'mo-mlearn'"):
        read_split(tmp_path / "other.csv", dataset)


def test_pool_generator_is_deterministic_and_physical(tmp_path, monkeypatch):
    pytest.importorskip("kimpy")
    from eiplab.data import ConfigSet, config_hash
    from eiplab.dft.generators.common import min_distance
    from eiplab.dft.generators.pool import POOL_RECIPES, generate_pool

    monkeypatch.chdir(tmp_path)  # kim.log
    mo = load_dataset("mo-mlearn")
    dft = ConfigSet([a for a in mo if keys.ENERGY_DFT in a.info], name="mo-mlearn")
    first = generate_pool(dft, POOL_RECIPES["Mo"], md_steps=0.05, scale=0.01)
    again = generate_pool(dft, POOL_RECIPES["Mo"], md_steps=0.05, scale=0.01)
    assert [config_hash(a) for a in first] == [config_hash(a) for a in again]
    assert all(min_distance(a) >= POOL_RECIPES["Mo"].min_dist for a in first)
    dft_hashes = {config_hash(a) for a in dft}
    assert not any(config_hash(a) in dft_hashes for a in first)
