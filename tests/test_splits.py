"""Paper-protocol splits, split files, and their validation."""

import numpy as np
import pandas as pd
import pytest
from ase.build import bulk

from eiplab import keys
from eiplab.data import (
    ConfigSet,
    DataError,
    check_split,
    paper_splits,
    read_split,
    split_configs,
    write_split,
)


def _dataset(n=200, n_unlabelled=0, n_dup=0):
    configs = []
    for i in range(n):
        a = bulk("Si", "diamond", a=5.43)
        a.rattle(0.05, seed=i if i < n - n_dup else 0)  # the last n_dup repeat config 0
        a.info[keys.CONFIG_ID] = f"c{i:04d}"
        if i >= n_unlabelled:
            a.info[keys.ENERGY_DFT] = -10.8 + 0.01 * i
        configs.append(a)
    return ConfigSet(configs, name="toy")


def test_paper_protocol_sizes_and_fixed_pool():
    configs = _dataset(500)
    splits = paper_splits(configs, seeds=(0, 1, 2), group_duplicates=False)
    assert len(splits) == 3
    pools = [set(s.index[s == keys.POOL]) for s in splits]
    assert pools[0] == pools[1] == pools[2]
    for s in splits:
        counts = s.value_counts()
        assert counts[keys.POOL] == 400
        assert counts[keys.TRAIN] == pytest.approx(60, abs=1)
        assert counts[keys.VAL] == pytest.approx(20, abs=1)
        assert counts[keys.TEST] == pytest.approx(20, abs=1)
    # different seeds give different train sets
    trains = [set(s.index[s == keys.TRAIN]) for s in splits]
    assert trains[0] != trains[1]


def test_deterministic():
    configs = _dataset(100)
    a = paper_splits(configs, seeds=(5,))[0]
    b = paper_splits(configs, seeds=(5,))[0]
    pd.testing.assert_series_equal(a, b)


def test_unlabelled_always_pool():
    configs = _dataset(200, n_unlabelled=50)
    s = paper_splits(configs, seeds=(0,), pool_fraction=0.5)[0]
    unlabelled = [f"c{i:04d}" for i in range(50)]
    assert (s[unlabelled] == keys.POOL).all()
    assert (s == keys.POOL).sum() == 100


def test_duplicates_stay_together():
    configs = _dataset(300, n_dup=20)
    for s in paper_splits(configs, seeds=(0, 1, 2)):
        dup_ids = ["c0000"] + [f"c{i:04d}" for i in range(280, 300)]
        assert s[dup_ids].nunique() == 1


def test_write_read_roundtrip(tmp_path):
    configs = _dataset(100)
    s = paper_splits(configs, seeds=(0,))[0]
    path = write_split(s, tmp_path / "split_0.csv")
    assert path.read_text().splitlines()[0] == "config_id,split"
    back = read_split(path, configs)
    pd.testing.assert_series_equal(back, s, check_names=False)
    parts = split_configs(configs, back)
    assert sum(len(v) for v in parts.values()) == len(configs)


def test_empty_split_is_an_error(tmp_path):
    configs = _dataset(20)
    s = pd.Series(keys.TRAIN, index=pd.Index(configs.ids, name=keys.CONFIG_ID))
    s.iloc[:5] = keys.VAL
    with pytest.raises(DataError, match="'test' split is empty"):
        check_split(s, configs)


def test_user_split_errors_name_the_problem(tmp_path):
    configs = _dataset(20, n_unlabelled=2)
    good = paper_splits(configs, seeds=(0,), pool_fraction=0.3)[0]
    bad = good.copy()
    bad["c0000"] = keys.TRAIN  # unlabelled in train
    p = write_split(bad, tmp_path / "bad.csv")
    with pytest.raises(DataError, match=r"bad.csv.*c0000.*no DFT energy"):
        read_split(p, configs)
    p2 = tmp_path / "names.csv"
    p2.write_text("config_id,split\n" + "\n".join(f"{c},training" for c in configs.ids))
    with pytest.raises(DataError, match="unknown split name"):
        read_split(p2, configs)
    p3 = tmp_path / "missing.csv"
    good.iloc[:-1].to_csv(p3)
    with pytest.raises(DataError, match=r"have no split \(e.g. 'c0019'\)"):
        read_split(p3, configs)
    p4 = tmp_path / "header.csv"
    p4.write_text("id,fold\nc0,train\n")
    with pytest.raises(DataError, match="header"):
        read_split(p4, configs)


def test_too_few_labelled_configs():
    configs = _dataset(10, n_unlabelled=9)
    with pytest.raises(DataError, match="labelled"):
        paper_splits(configs, seeds=(0,))


def test_fractions_validated():
    with pytest.raises(ValueError):
        paper_splits(_dataset(10), fractions=(0.5, 0.5, 0.5))
    assert np.isclose(sum((0.6, 0.2, 0.2)), 1)


def test_cv_splits_test_on_disjoint_folds_with_a_fixed_pool():
    from eiplab.data import cv_splits, dataset_splits

    data = _dataset(n=90, n_unlabelled=30)
    splits = cv_splits(data, seeds=(0, 1, 2))
    unlabelled = set(data.ids[:30])
    tests = [set(s.index[s == keys.TEST]) for s in splits]
    assert all(t.isdisjoint(u) for k, t in enumerate(tests) for u in tests[k + 1:])
    assert set().union(*tests) == set(data.ids[30:])
    for s in splits:
        assert set(s.index[s == keys.POOL]) == unlabelled
        assert (s == keys.VAL).sum() == round(0.2 * ((s == keys.TRAIN).sum() + (s == keys.VAL).sum()))
    assert dataset_splits(data, seeds=(0,), scheme="cv")[0].equals(splits[0])
    with pytest.raises(DataError, match="no unlabelled config"):
        cv_splits(_dataset(n=30))
    with pytest.raises(ValueError, match="unknown split scheme"):
        dataset_splits(data, scheme="kfold")
