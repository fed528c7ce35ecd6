"""Readers: extxyz, ASE db, ANI-style HDF5 (+ tarball), KIM-Si tree, pyxtal-ff JSON; bad input."""

import json
import tarfile

import h5py
import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write

from eiplab import keys
from eiplab.data import DataError, load_dataset, read_ani_h5, read_kim_si_tree, read_pyxtal_json


def _labelled(n=3, seed=0):
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n):
        a = bulk("Si", "diamond", a=5.43).repeat((1, 1, 1 + i % 2))
        a.rattle(0.05, seed=int(rng.integers(1000)))
        f = rng.normal(size=(len(a), 3))
        a.calc = SinglePointCalculator(a, energy=-5.4 * len(a) + 0.01 * i, forces=f)
        frames.append(a)
    return frames


def test_extxyz_roundtrip(tmp_path):
    frames = _labelled()
    write(tmp_path / "d.xyz", frames, format="extxyz")
    configs = load_dataset(tmp_path / "d.xyz")
    assert len(configs) == 3
    assert configs.ids == ["d-00000", "d-00001", "d-00002"]
    for a, ref in zip(configs, frames, strict=True):
        assert a.info[keys.ENERGY_DFT] == pytest.approx(ref.get_potential_energy())
        np.testing.assert_allclose(a.arrays[keys.FORCES_DFT], ref.get_forces(), atol=1e-7)
        np.testing.assert_allclose(a.positions, ref.positions, atol=1e-7)


def test_ase_db(tmp_path):
    from ase.db import connect

    db = connect(tmp_path / "s.db")
    for a in _labelled(2):
        db.write(a, phase="bulk")
    configs = load_dataset(tmp_path / "s.db")
    assert len(configs) == 2
    assert configs[0].info[keys.PHASE] == "bulk"
    assert np.isfinite(configs.energies_dft()).all()


def test_ani_h5_and_tarball(tmp_path):
    rng = np.random.default_rng(1)
    h5 = tmp_path / "Al-part.h5"
    with h5py.File(h5, "w") as f:
        g = f.create_group("liquid").create_group("s0")
        g["coordinates"] = rng.uniform(0, 8, size=(4, 5, 3))
        g["cell"] = np.tile(np.eye(3) * 8.0, (4, 1, 1))
        g["species"] = np.array([b"Al"] * 5)
        g["energy"] = -3.7 * 5 + rng.normal(size=4)
        g["force"] = rng.normal(size=(4, 5, 3))
    configs = read_ani_h5(h5)
    assert len(configs) == 4
    assert configs[0].info[keys.CONFIG_ID] == "Al-part/liquid/s0/0"
    assert configs[0].pbc.all() and configs[0].get_chemical_symbols() == ["Al"] * 5
    tgz = tmp_path / "Al-data.tgz"
    with tarfile.open(tgz, "w:gz") as tar:
        tar.add(h5, arcname="data/Al-part.h5")
    again = load_dataset(tgz)
    assert again.ids == configs.ids
    np.testing.assert_allclose(again.energies_dft(), configs.energies_dft())


def test_ani_h5_unknown_element(tmp_path):
    h5 = tmp_path / "bad.h5"
    with h5py.File(h5, "w") as f:
        g = f.create_group("x")
        g["coordinates"] = np.zeros((1, 1, 3))
        g["species"] = np.array([b"Xx"])
        g["energy"] = np.zeros(1)
    with pytest.raises(DataError, match=r"bad.h5.*Xx"):
        read_ani_h5(h5)


def test_kim_si_tree_marks_unlabelled(tmp_path):
    for sub, labelled in (("bulk", True), ("bulk", False), ("cluster", True)):
        a = bulk("Si", "diamond", a=5.43)
        if labelled:
            a.info["energy_reference"] = -10.8
        d = tmp_path / "kimsi" / sub
        d.mkdir(parents=True, exist_ok=True)
        write(d / f"c{len(list(d.iterdir()))}.xyz", a, format="extxyz")
    configs = read_kim_si_tree(tmp_path / "kimsi")
    assert sorted(configs.ids) == ["bulk/c0", "bulk/c1", "cluster/c0"]
    labelled = {a.info[keys.CONFIG_ID]: keys.ENERGY_DFT in a.info for a in configs}
    assert labelled == {"bulk/c0": True, "bulk/c1": False, "cluster/c0": True}
    assert {a.info[keys.PHASE] for a in configs} == {"bulk", "cluster"}


def test_pyxtal_json(tmp_path):
    rec = {
        "elements": ["Si", "Si"],
        "coords": {"data": [[0, 0, 0], [0.25, 0.25, 0.25]]},
        "lattice": {"data": (np.eye(3) * 5.43).tolist()},
        "energy": -10.0,
        "force": [[0.1, 0, 0], [-0.1, 0, 0]],
    }
    p = tmp_path / "si.json"
    p.write_text(json.dumps([rec, rec]))
    configs = read_pyxtal_json(p, name="t")
    assert configs.ids == ["t-00000", "t-00001"]
    np.testing.assert_allclose(configs[0].positions[1], [5.43 / 4] * 3)


@pytest.mark.parametrize(
    "content, match",
    [
        ("2\nnot an extxyz comment\nSi 0 0\n", r"bad.xyz.*cannot parse"),
        ("", r"bad.xyz"),
    ],
)
def test_malformed_extxyz_names_file(tmp_path, content, match):
    p = tmp_path / "bad.xyz"
    p.write_text(content)
    with pytest.raises(DataError, match=match):
        load_dataset(p)


def test_malformed_pyxtal_record_names_config(tmp_path):
    p = tmp_path / "si.json"
    p.write_text(json.dumps([{"elements": ["Si"], "coords": {"data": [[0, 0, 0]]}}]))
    with pytest.raises(DataError, match=r"record 0 \(si-00000\)"):
        read_pyxtal_json(p, name="si")


def test_non_finite_energy_names_config(tmp_path):
    a = bulk("Si")
    a.info["energy"] = float("nan")
    write(tmp_path / "n.xyz", a, format="extxyz")
    with pytest.raises(DataError, match=r"n-00000.*non-finite"):
        load_dataset(tmp_path / "n.xyz", energy_key="energy")


def test_unknown_path_and_format(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_dataset(tmp_path / "missing.xyz")
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(DataError, match="unknown dataset format"):
        load_dataset(tmp_path / "x.csv")


def test_duplicate_ids_refused(tmp_path):
    from eiplab.data import ConfigSet

    a = bulk("Si")
    a.info[keys.CONFIG_ID] = "same"
    b = a.copy()
    with pytest.raises(DataError, match="'same'"):
        ConfigSet([a, b], name="dup")


def test_extxyz_with_forces_but_no_energy_is_unlabelled(tmp_path):
    a = bulk("Si", "diamond", a=5.43)
    a.calc = SinglePointCalculator(a, forces=np.ones((2, 3)))
    write(tmp_path / "f.xyz", a, format="extxyz")
    (cfg,) = load_dataset(tmp_path / "f.xyz")
    assert keys.ENERGY_DFT not in cfg.info
    np.testing.assert_allclose(cfg.arrays[keys.FORCES_DFT], 1.0)


def test_packed_keeps_forces_only_where_a_config_has_them(tmp_path):
    from eiplab.data import ConfigSet, save_packed
    from eiplab.data.packed import load_packed

    configs = []
    for k, a in enumerate(_labelled(n=4)):
        atoms = a.copy()
        atoms.info[keys.CONFIG_ID] = f"c{k}"
        if k % 2 == 0:  # labelled with forces; odd ones: an unlabelled pool config
            atoms.info[keys.ENERGY_DFT] = a.get_potential_energy()
            atoms.arrays[keys.FORCES_DFT] = a.get_forces()
        configs.append(atoms)
    save_packed(tmp_path / "mixed.npz", ConfigSet(configs, name="mixed"))
    back = load_packed(tmp_path / "mixed.npz", "mixed")
    for k, (a, b) in enumerate(zip(configs, back, strict=True)):
        assert (keys.FORCES_DFT in b.arrays) == (k % 2 == 0)
        if k % 2 == 0:
            np.testing.assert_allclose(b.arrays[keys.FORCES_DFT], a.arrays[keys.FORCES_DFT])


def test_mlearn_json_is_read_and_malformed_records_are_named(tmp_path):
    from eiplab.data import read_mlearn_json

    atoms = bulk("Mo", "bcc", a=3.16, cubic=True)
    record = {"structure": {"lattice": {"matrix": atoms.cell.array.tolist()},
                            "sites": [{"species": [{"element": "Mo", "occu": 1}], "xyz": p.tolist()} for p in atoms.positions]},
              "outputs": {"energy": -21.7, "forces": np.zeros((2, 3)).tolist()},
              "group": "Elastic", "description": "Ground state crystal"}
    (tmp_path / "training.json").write_text(json.dumps([record]))
    configs = load_dataset(tmp_path / "training.json")  # recognised as mlearn, not pyxtal-ff
    assert configs[0].info[keys.ENERGY_DFT] == -21.7 and configs[0].info[keys.PHASE] == "Elastic"
    assert configs[0].info[keys.CONFIG_ID] == "training-training-0000"
    assert "Ground state crystal" in configs[0].info[keys.SOURCE]
    record["outputs"]["forces"] = [[0.0, 0.0, 0.0]]
    (tmp_path / "bad.json").write_text(json.dumps([record]))
    with pytest.raises(DataError, match=r"record 0 \(.*\) has forces of shape \(1, 3\), expected \(2, 3\)"):
        read_mlearn_json(tmp_path / "bad.json")
