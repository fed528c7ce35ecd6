"""eiplab.dft: settings, the resumable store/runner (with a cheap calculator), generators,
and one real GPAW energy."""

from __future__ import annotations

import json
import shutil
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from eiplab import keys
from eiplab.data.hashing import config_hash
from eiplab.data.packed import load_packed
from eiplab.dft import DFTSettings, DFTStore, NonPeriodicError, dft_generate, label_dft
from eiplab.dft.cli_entry import assign_roles
from eiplab.dft.generators import AGAU_MIX, AL_MIX, al_family, generate_agau, generate_al
from eiplab.dft.generators.common import allocate, min_distance


def emt_factory(atoms, settings):
    """A cheap stand-in for GPAW (module level: picklable for the worker processes)."""
    return EMT()


class Boom(RuntimeError):
    pass


def failing_factory(atoms, settings):
    """Fails on 2-atom cells (an SCF failure stand-in), EMT otherwise."""
    if len(atoms) == 2:
        raise Boom("SCF did not converge in 3 iterations")
    return EMT()


def al_cells(n: int) -> list:
    out = []
    for k in range(n):
        a = bulk("Al", "fcc", a=4.05, cubic=True)
        a.rattle(0.05, seed=k)
        a.info[keys.CONFIG_ID] = f"c{k}"
        out.append(a)
    return out


# --- settings ------------------------------------------------------------------------------


def test_settings_round_trip_and_digest():
    s = DFTSettings(cutoff=350, kpt_density=3.0, setups={"Ag": "11"})
    d = json.loads(json.dumps(s.as_dict()))
    assert DFTSettings.from_dict(d) == s
    assert DFTSettings.from_dict(d).digest() == s.digest()
    assert s.replace(cutoff=300).digest() != s.digest()
    assert hash(s) == hash(DFTSettings.from_dict(d))
    with pytest.raises(TypeError, match="unknown keys"):
        DFTSettings.from_dict({**d, "ecut": 1})
    with pytest.raises(ValueError):
        DFTSettings(cutoff=-1)


def test_kpoint_density():
    s = DFTSettings(kpt_density=2.5)
    a = bulk("Al", "fcc", a=4.05, cubic=True)
    assert s.kpts(a) == (4, 4, 4)  # ceil(2 pi / 4.05 * 2.5) = 4
    assert s.kpts(a * (2, 1, 1)) == (2, 4, 4)


# --- store and runner ------------------------------------------------------------------------


def test_runner_progress_shows_the_cpu_hours_spent(tmp_path, capsys):
    label_dft(al_cells(2), DFTSettings(), tmp_path / "dft.jsonl", n_workers=1, progress=True,
              calculator_factory=emt_factory, desc="DFT test")
    err = capsys.readouterr().err
    assert "DFT test" in err and "2/2" in err and "cpu_h=" in err


def test_runner_stores_and_resumes(tmp_path):
    configs = al_cells(5)
    store = tmp_path / "dft.jsonl"
    s = DFTSettings()
    df = label_dft(
        configs[:3], s, store, n_workers=1, progress=False, calculator_factory=emt_factory
    )
    assert df["computed"].all() and (df["status"] == "ok").all()
    ref = {a.info[keys.CONFIG_ID]: a.get_potential_energy() for a in _with_emt(configs)}
    assert np.allclose(df["energy"], [ref[c] for c in df.index])
    # a kill in the middle of a write leaves a partial line: it is dropped
    with open(store, "a") as f:
        f.write('{"config_id": "c3", "struc')
    df = label_dft(configs, s, store, n_workers=1, progress=False, calculator_factory=emt_factory)
    assert df["computed"].tolist() == [False, False, False, True, True]
    assert np.allclose(df["energy"], [ref[c] for c in df.index])
    assert configs[4].info[keys.ENERGY_DFT] == pytest.approx(ref["c4"])
    assert configs[4].arrays[keys.FORCES_DFT].shape == (4, 3)
    recs = DFTStore(store).load()
    assert len(recs) == 5
    rec = next(iter(recs.values()))
    assert rec.settings == s.as_dict() and rec.code["ase"]
    # the key includes the structure and the settings: either change means a new calculation
    configs[0].positions[0, 0] += 0.1
    df = label_dft(configs, s, store, n_workers=1, progress=False, calculator_factory=emt_factory)
    assert df["computed"].tolist() == [True, False, False, False, False]
    df = label_dft(
        configs[:1],
        s.replace(cutoff=400),
        store,
        n_workers=1,
        progress=False,
        calculator_factory=emt_factory,
    )
    assert df["computed"].all()


def _with_emt(configs):
    out = []
    for a in configs:
        b = a.copy()
        b.calc = EMT()
        out.append(b)
    return out


def test_runner_records_failures_and_uses_two_workers(tmp_path):
    configs = al_cells(3)
    dimer = bulk("Al", "fcc", a=4.05) * (2, 1, 1)
    dimer.info[keys.CONFIG_ID] = "dimer"
    configs.append(dimer)
    store = tmp_path / "dft.jsonl"
    df = label_dft(
        configs,
        DFTSettings(),
        store,
        n_workers=2,
        progress=False,
        calculator_factory=failing_factory,
    )
    assert df.loc["dimer", "status"] == "failed" and np.isnan(df.loc["dimer", "energy"])
    assert "Boom: SCF did not converge" in df.attrs["failures"]["dimer"]
    assert keys.ENERGY_DFT not in dimer.info
    assert (df.drop("dimer")["status"] == "ok").all()
    # failures are stored (not silently retried), unless asked
    again = label_dft(
        configs,
        DFTSettings(),
        store,
        n_workers=1,
        progress=False,
        calculator_factory=failing_factory,
    )
    assert not again["computed"].any()
    retried = label_dft(
        configs,
        DFTSettings(),
        store,
        n_workers=1,
        progress=False,
        calculator_factory=emt_factory,
        retry_failed=True,
    )
    assert retried["computed"].tolist() == [False, False, False, True]
    assert retried.loc["dimer", "status"] == "ok"


def test_runner_refuses_non_periodic(tmp_path):
    a = al_cells(1)[0]
    a.pbc = (True, True, False)
    with pytest.raises(NonPeriodicError, match="c0"):
        label_dft([a], DFTSettings(), tmp_path / "s.jsonl", calculator_factory=emt_factory)


# --- generators ----------------------------------------------------------------------------


def test_allocate_is_exact():
    assert sum(allocate(1001, AL_MIX).values()) == 1001
    assert allocate(10, {"a": 1, "b": 1}) == {"a": 5, "b": 5}


def _check_valid(configs, min_dist):
    hashes = [config_hash(a) for a in configs]
    assert len(set(hashes)) == len(hashes), "configs must be distinct"
    for a in configs:
        assert a.pbc.all() and a.cell.volume > 0
        assert min_distance(a) >= min_dist
        assert a.info[keys.SOURCE]
        assert np.isfinite(a.positions).all()


def test_agau_generator_phases_counts_and_validity():
    want = {p: 3 for p in AGAU_MIX}
    cs = generate_agau(want, seed=1)
    assert Counter(a.info[keys.PHASE] for a in cs) == want
    _check_valid(cs, 2.0)
    assert {len(a) for a in cs} <= set(range(2, 7))  # issue 17: cells of 2-6 atoms
    for a in cs:
        syms = set(a.get_chemical_symbols())
        phase = a.info[keys.PHASE]
        if phase in ("fcc", "bcc", "hcp"):
            assert len(syms) == 1
        else:
            assert syms == {"Ag", "Au"}, phase
    # deterministic for a seed, different for another
    again = generate_agau(want, seed=1)
    assert [config_hash(a) for a in again] == [config_hash(a) for a in cs]
    other = generate_agau(want, seed=2)
    assert not {config_hash(a) for a in other} & {config_hash(a) for a in cs}
    total = generate_agau(200, seed=0)
    assert len(total) == 200 and len(set(total.ids)) == 200
    with pytest.raises(ValueError, match="unknown"):
        generate_agau({"diamond": 1})


def test_al_generator_without_md():
    cs = generate_al({"strained": 4, "sheared": 4}, seed=0)
    assert Counter(a.info[keys.PHASE] for a in cs) == {"strained": 4, "sheared": 4}
    _check_valid(cs, 1.9)


def test_al_generator_max_atoms_and_the_al_gpaw_recipe():
    from eiplab.dft.datasets import AL_GPAW_MAX_ATOMS, AL_GPAW_MIX, RECIPES
    from eiplab.dft.generators.al import AL_CELLS, _cells_within

    assert all(_cells_within(f, 16) == cells for f, cells in AL_CELLS.items())  # the default keeps every cell
    small = generate_al({"strained": 6, "sheared": 6}, seed=0, max_atoms=4)
    assert {len(a) for a in small} == {4}
    assert {len(a) for a in generate_al({"strained": 6}, seed=0)} == {4, 8}
    with pytest.raises(ValueError, match="max_atoms=3"):
        generate_al({"sheared": 1}, seed=0, max_atoms=3)
    with pytest.raises(ValueError, match="'coexistence'.*max_atoms=8"):  # needs 12+ atoms: named before any MD
        generate_al({"coexistence": 1}, seed=0, max_atoms=8)
    # issue 17's al-gpaw: 4-8 atoms, no coexistence, the cheapest settings within ~10 meV/atom
    assert AL_GPAW_MAX_ATOMS == 8 and "coexistence" not in AL_GPAW_MIX
    recipe = RECIPES["al-gpaw"]
    assert (recipe.settings.cutoff, recipe.settings.kpt_density) == (250.0, 4.0)
    assert (recipe.n_labelled, recipe.n_audit, recipe.n_pool) == (500, 200, 5000)
    assert "expected_error_meV_per_atom" in recipe.notes


@pytest.mark.kim
def test_al_generator_md_phases(tmp_path, monkeypatch):
    pytest.importorskip("kimpy", exc_type=ImportError)
    from eiplab.dft.generators import AL_MD_MODEL
    from eiplab.eips import list_installed

    if AL_MD_MODEL not in list_installed():
        pytest.skip(f"KIM model {AL_MD_MODEL} not installed")
    monkeypatch.chdir(tmp_path)  # kim.log
    want = {"fcc": 5, "liquid": 1, "coexistence": 1, "vacancy": 2, "strained": 1, "sheared": 1}
    cs = generate_al(want, seed=0, md_steps=0.05)
    got = Counter(al_family(a.info[keys.PHASE]) for a in cs)
    assert got == want
    temps = {a.info[keys.PHASE] for a in cs if al_family(a.info[keys.PHASE]) == "fcc"}
    assert temps == {"fcc 100K", "fcc 300K", "fcc 500K", "fcc 700K", "fcc 900K"}
    _check_valid(cs, 1.9)
    assert {len(a) for a in cs} <= set(range(4, 17))
    assert all(len(a) % 4 == 3 for a in cs if a.info[keys.PHASE] == "vacancy")


# --- the resumable dataset command -------------------------------------------------------------


def test_dft_generate_small_with_fake_dft(tmp_path):
    out = tmp_path / "agau"
    kw = dict(
        n_labelled=6,
        n_pool=10,
        n_audit=3,
        n_workers=1,
        label_eips=False,
        progress=False,
        calculator_factory=emt_factory,
    )
    res = dft_generate("agau-gpaw", out, **kw)
    assert res["finished"] and res["n_dft"] == 9
    data = load_packed(res["dataset"], "agau-gpaw")
    assert len(data) == 16
    assert np.isfinite(data.energies_dft()).sum() == 9
    prov = json.loads((out / "agau-gpaw.provenance.json").read_text())
    assert prov["roles"] == {"pool": 7, "labelled": 6, "audit": 3}
    assert (
        prov["dft"]["settings"] == DFTSettings(cutoff=250, kpt_density=3.5, smearing=0.2).as_dict()
    )
    assert "reports/dft-convergence" in prov["dft"]["error_basis"]  # the expected DFT error, with its basis
    # a rerun computes nothing new; another plan in the same folder is refused
    res2 = dft_generate("agau-gpaw", out, **kw)
    assert res2["n_dft"] == 9
    assert len(DFTStore(out / "dft.jsonl").load()) == 9
    with pytest.raises(ValueError, match="different plan"):
        dft_generate("agau-gpaw", out, **{**kw, "n_audit": 4})
    # --plan reads how far the folder is without touching it, even a half-written last line
    from eiplab.dft.cli_entry import dft_progress

    with open(out / "dft.jsonl", "a") as f:
        f.write('{"config_id": "half a li')
    size = (out / "dft.jsonl").stat().st_size
    table, summary = dft_progress(out)
    assert (out / "dft.jsonl").stat().st_size == size
    assert table.loc["all", "done"] == 9 and table.loc["labelled", "done"] == 6 and table.loc["all", "failed"] == 0
    assert table.loc["all", "cpu_hours_left"] == 0 and "9 of 9 DFT configs done" in summary
    partial = tmp_path / "partial"
    shutil.copytree(out, partial)
    lines = (partial / "dft.jsonl").read_text().splitlines(keepends=True)
    (partial / "dft.jsonl").write_text("".join(lines[:5]))
    assert dft_progress(partial)[0].loc["all", "done"] == 5
    (partial / "dft.jsonl").write_text("")
    table, summary = dft_progress(partial, "agau-gpaw")
    assert table.loc["all", "done"] == 0 and "CPU-hours left unknown" in summary
    with pytest.raises(ValueError, match="holds 'agau-gpaw', not 'al-gpaw'"):
        dft_progress(partial, "al-gpaw")
    with pytest.raises(FileNotFoundError, match="no dft-generate run started"):
        dft_progress(tmp_path / "nothing")
    # a second run on a folder another run is working in is refused, naming the folder
    from filelock import FileLock

    from eiplab.cli import main
    from eiplab.dft.cli_entry import WORK_LOCK, FolderInUseError

    with FileLock(str(out / WORK_LOCK)):
        with pytest.raises(FolderInUseError, match="being generated by another"):
            dft_generate("agau-gpaw", out, **kw)
        assert main(["dft-generate", "--dataset", "agau-gpaw", "--out", str(out)]) == 2  # refused, no traceback
    assert dft_generate("agau-gpaw", out, **kw)["finished"]  # and runs once the other has stopped


def test_audit_configs_are_hidden_shipped_and_kept_in_the_pool(tmp_path):
    from eiplab.data import check_split, cv_splits, paper_splits
    from eiplab.data.errors import DataError
    from eiplab.dft import ship_dataset

    out = tmp_path / "agau"
    with pytest.raises(FileNotFoundError, match="not a dft-generate folder"):
        ship_dataset(out, tmp_path / "builtin")
    res = dft_generate("agau-gpaw", out, n_labelled=12, n_pool=20, n_audit=4, n_workers=1, label_eips=False,
                       progress=False, calculator_factory=emt_factory)
    roles = pd.read_csv(out / "agau-gpaw.roles.csv", index_col=0)["role"]
    audit = set(roles.index[roles == "audit"])
    data = load_packed(res["dataset"], "agau-gpaw")
    assert {a.info[keys.CONFIG_ID] for a in data if a.info.get(keys.DFT_HIDDEN)} == audit
    assert data.labelled().sum() == 12 and np.isfinite(data.energies_dft()).sum() == 16
    for split in cv_splits(data) + paper_splits(data, pool_fraction=0.5):  # both schemes keep the audit in the pool
        assert (split[sorted(audit)] == keys.POOL).all()
    split = cv_splits(data)[0].copy()
    split[sorted(audit)[0]] = keys.TRAIN
    with pytest.raises(DataError, match="reserved for the classifier audit"):
        check_split(split, data)
    written = ship_dataset(out, tmp_path / "builtin")
    shipped = load_packed(written["dataset"], "agau-gpaw")
    assert shipped.ids == data.ids and (shipped.labelled() == data.labelled()).all()
    prov = json.loads(written["provenance"].read_text())
    assert prov["plan"]["n_audit"] == 4 and len(prov["sha256_npz"]) == 64 and "MIT" in prov["licence"]
    assert (tmp_path / "builtin" / "LICENSE-eiplab-data.txt").exists()  # the licence it names, next to it
    with pytest.raises(ValueError, match="trial plan"):  # never into the package's own data
        ship_dataset(out)
    roles_csv = (out / "agau-gpaw.roles.csv").read_text()
    audit_id = sorted(audit)[0]
    (out / "agau-gpaw.roles.csv").write_text(roles_csv.replace(f"{audit_id},audit", f"{audit_id},pool"))
    with pytest.raises(ValueError, match="disagrees with its role"):
        ship_dataset(out, tmp_path / "builtin")
    (out / "agau-gpaw.roles.csv").write_text("config_id,role\n")  # a roles file that disagrees is refused
    with pytest.raises(ValueError, match="different configs"):
        ship_dataset(out, tmp_path / "builtin")
    (out / "agau-gpaw.roles.csv").write_text(roles_csv)
    with open(out / "agau-gpaw.npz", "ab") as f:  # a dataset changed after it was made
        f.write(b"x")
    with pytest.raises(ValueError, match="does not match the sha256"):
        ship_dataset(out, tmp_path / "builtin")
    (out / "agau-gpaw.npz").unlink()
    with pytest.raises(FileNotFoundError, match="not finished"):
        ship_dataset(out, tmp_path / "builtin")


def test_roles_are_seeded():
    ids = [f"x{k}" for k in range(50)]
    r = assign_roles(ids, 10, 5, seed=0)
    assert (r == "labelled").sum() == 10 and (r == "audit").sum() == 5
    assert r.equals(assign_roles(ids, 10, 5, seed=0))
    assert not r.equals(assign_roles(ids, 10, 5, seed=1))


# --- one real GPAW energy ------------------------------------------------------------------

#: 1-atom fcc Al (a = 4.05 A, primitive cell), PBE, PW 200 eV, k-point density 1.0 (3x3x3,
#: Gamma-centred), Fermi-Dirac 0.1 eV; computed with GPAW 26.7.0 + gpaw-data 1.2.1.
GPAW_REF_SETTINGS = DFTSettings(cutoff=200.0, kpt_density=1.0, smearing=0.1)
GPAW_REF_ENERGY = -3.16434452461347  # eV


def test_gpaw_reproduces_stored_energy(tmp_path):
    pytest.importorskip("gpaw")
    a = bulk("Al", "fcc", a=4.05)
    a.info[keys.CONFIG_ID] = "al1"
    df = label_dft([a], GPAW_REF_SETTINGS, tmp_path / "dft.jsonl", n_workers=1, progress=False)
    assert df.loc["al1", "status"] == "ok", df.loc["al1", "reason"]
    assert df.loc["al1", "energy"] == pytest.approx(GPAW_REF_ENERGY, abs=2e-4)
    rec = next(iter(DFTStore(tmp_path / "dft.jsonl").load().values()))
    assert rec.kpts == [3, 3, 3] and rec.code["gpaw"]


def test_packed_keeps_eip_energies(tmp_path):
    from eiplab.data.configset import ConfigSet
    from eiplab.data.packed import save_packed

    configs = al_cells(3)
    configs[0].info[keys.ENERGY_EIP] = {"m1": -1.0, "m2": -2.0}
    configs[1].info[keys.ENERGY_EIP] = {"m1": float("nan")}
    save_packed(tmp_path / "x.npz", ConfigSet(configs))
    back = load_packed(tmp_path / "x.npz", "x")
    assert back[0].info[keys.ENERGY_EIP] == {"m1": -1.0, "m2": -2.0}
    assert np.isnan(back[1].info[keys.ENERGY_EIP]["m1"]) and np.isnan(
        back[2].info[keys.ENERGY_EIP]["m2"]
    )


def test_convergence_study_logic(tmp_path):
    from eiplab.dft.convergence import agau_study, al_study, run_study

    # EMT ignores cutoff and k-points: every setting equals the reference
    table, chosen = run_study(
        [al_study(), agau_study()],
        tmp_path / "s.jsonl",
        cutoffs=(250, 300),
        kpt_densities=(1.0, 1.5),
        n_workers=1,
        progress=False,
        calculator_factory=emt_factory,
    )
    assert table["converged"].all() and (table["error_meV_per_atom"] == 0).all()
    assert set(table["difference"]) == {
        "strained - fcc",
        "rattled - fcc",
        "E_f(Ag3Au L1_2)",
        "E_f(AgAu B2)",
    }
    assert chosen["Al"].cutoff == 250 and chosen["AgAu"].kpt_density == 1.0
    assert all(table.attrs["converged_within_scan"].values())


@pytest.mark.kim
def test_dft_generate_labels_table2_eips(tmp_path, monkeypatch):
    pytest.importorskip("kimpy", exc_type=ImportError)
    from eiplab.eips import list_installed, models_for

    ids = [s.model_id for s in models_for("AgAu")]
    if not set(ids) <= set(list_installed()):
        pytest.skip("AgAu KIM models not installed")
    monkeypatch.chdir(tmp_path)  # kim.log
    res = dft_generate(
        "agau-gpaw",
        tmp_path / "out",
        n_labelled=3,
        n_pool=5,
        n_audit=1,
        n_workers=1,
        progress=False,
        calculator_factory=emt_factory,
    )
    data = load_packed(res["dataset"], "agau-gpaw")
    for a in data:
        assert set(a.info[keys.ENERGY_EIP]) == set(ids)
        assert all(np.isfinite(e) for e in a.info[keys.ENERGY_EIP].values())
    prov = json.loads((tmp_path / "out" / "agau-gpaw.provenance.json").read_text())
    assert prov["eip_models"] == ids and prov["eip_failures"] == {}


def test_an_experiment_refuses_a_split_that_trains_on_hidden_dft(tmp_path):
    from eiplab.data import cv_splits
    from eiplab.data.errors import DataError
    from eiplab.strategies.experiment import prepare_experiment

    res = dft_generate("agau-gpaw", tmp_path / "agau", n_labelled=12, n_pool=20, n_audit=4, n_workers=1,
                       label_eips=False, progress=False, calculator_factory=emt_factory)
    data = load_packed(res["dataset"], "agau-gpaw")
    split = cv_splits(data)[0].copy()
    hidden = next(a.info[keys.CONFIG_ID] for a in data if a.info.get(keys.DFT_HIDDEN))
    split[hidden] = keys.TRAIN  # a hand-made split
    energies = pd.DataFrame({"eip": np.zeros(len(data))}, index=pd.Index(data.ids, name=keys.CONFIG_ID))
    with pytest.raises(DataError, match="reserved for the classifier audit"):
        prepare_experiment(data, split, ["eip"], energies=energies, progress=False)
