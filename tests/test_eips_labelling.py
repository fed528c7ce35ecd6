"""Cached, resumable, parallel labelling (label_dataset) and its on-disk cache."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ase import Atoms
from ase.io import read, write

from eiplab import keys
from eiplab.eips import (
    LabelCache,
    SpeciesNotSupportedError,
    config_hash,
    failures_table,
    label_dataset,
    list_installed,
)

SW = "SW_BalamaneHaliciogluTiller_1992_Si__MO_113686039439_004"
T2 = "Tersoff_LAMMPS_Tersoff_1988T2_Si__MO_245095684871_003"

# A slow, counting ASE calculator registered as a non-KIM EIP. It lives in a file of its own so
# that a subprocess and this process register the very same EIP.
SLOW_CALC = '''
import os
import time

from ase.calculators.lj import LennardJones

from eiplab.eips import register_calculator

SLOW_ID = "slow_lj_test"


class SlowLJ(LennardJones):
    """Lennard-Jones that appends one line per evaluation to $EIPLAB_TEST_COUNT and sleeps
    $EIPLAB_TEST_SLEEP s (1 s once $EIPLAB_TEST_SLOW_AFTER evaluations are counted)."""

    def calculate(self, atoms=None, properties=("energy",), system_changes=()):
        count = os.environ["EIPLAB_TEST_COUNT"]
        done = len(open(count).read().splitlines()) if os.path.exists(count) else 0
        slow_after = int(os.environ.get("EIPLAB_TEST_SLOW_AFTER", "-1"))
        time.sleep(1.0 if 0 <= slow_after <= done else float(os.environ.get("EIPLAB_TEST_SLEEP", "0")))
        with open(count, "a") as f:
            f.write("x\\n")
        super().calculate(atoms, ["energy"], system_changes)


def factory():
    return SlowLJ(sigma=2.1, epsilon=0.2, rc=5.0, smooth=True)


register_calculator(SLOW_ID, factory, ["Si"], name="slow LJ (test)")
'''


def si_configs(n: int, seed: int = 0, prefix: str = "c") -> list[Atoms]:
    """Deterministic small periodic Si cells (1-6 atoms) with ids."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        m = int(rng.integers(1, 7))
        length = (m * 20.0) ** (1 / 3)
        a = Atoms(
            "Si" * m,
            scaled_positions=rng.random((m, 3)),
            cell=np.eye(3) * length + rng.normal(0, 0.3, (3, 3)),
            pbc=True,
        )
        a.info[keys.CONFIG_ID] = f"{prefix}{k:03d}"
        out.append(a)
    return out


@pytest.fixture(autouse=True)
def _kim_log_in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the KIM API writes kim.log into the working directory


@pytest.fixture
def slow_calc(tmp_path, monkeypatch):
    """Registers the slow LJ EIP in this process; returns (model id, count file)."""
    (tmp_path / "eips_slow_calc.py").write_text(SLOW_CALC)
    monkeypatch.syspath_prepend(str(tmp_path))
    count = tmp_path / "count.txt"
    monkeypatch.setenv("EIPLAB_TEST_COUNT", str(count))
    monkeypatch.setenv("EIPLAB_TEST_SLEEP", "0")
    import importlib

    import eips_slow_calc

    importlib.reload(eips_slow_calc)
    return eips_slow_calc.SLOW_ID, count


def n_counted(count: Path) -> int:
    return len(count.read_text().splitlines()) if count.exists() else 0


def test_config_hash_ignores_info_and_rounding_noise():
    a = si_configs(1)[0]
    b = a.copy()
    b.info = {keys.CONFIG_ID: "other"}
    b.positions += 1e-9
    assert config_hash(a) == config_hash(b)
    b.positions[0, 0] += 1e-4
    assert config_hash(a) != config_hash(b)
    c = a.copy()
    c.pbc = [True, True, False]
    assert config_hash(a) != config_hash(c)


def test_label_cache_and_rerun_computes_nothing(tmp_path, slow_calc):
    model_id, count = slow_calc
    configs = si_configs(23)
    table = label_dataset(
        configs, [model_id], cache_dir=tmp_path / "cache", chunk_size=5, progress=False
    )
    assert list(table.columns) == [model_id]
    assert list(table.index) == [a.info[keys.CONFIG_ID] for a in configs]
    assert table.index.name == keys.CONFIG_ID
    assert table.attrs["n_evaluated"] == {model_id: 23}
    assert n_counted(count) == 23
    assert len(LabelCache(tmp_path / "cache").chunk_files(model_id)) == 5
    for a, e in zip(configs, table[model_id], strict=True):
        assert a.info[keys.ENERGY_EIP][model_id] == e
    # Rerun: everything from the cache, nothing evaluated; new configs only are evaluated.
    again = label_dataset(
        configs + si_configs(3, seed=9, prefix="new"),
        [model_id],
        cache_dir=tmp_path / "cache",
        progress=False,
    )
    assert n_counted(count) == 23 + 3
    assert again.attrs["n_evaluated"] == {model_id: 3}
    pd.testing.assert_frame_equal(again.iloc[:23], table)


def test_duplicate_configs_are_evaluated_once(tmp_path, slow_calc):
    model_id, count = slow_calc
    a = si_configs(1)[0]
    b = a.copy()
    b.info[keys.CONFIG_ID] = "copy"
    table = label_dataset([a, b], [model_id], cache_dir=tmp_path, progress=False)
    assert n_counted(count) == 1
    assert table.iloc[0, 0] == table.iloc[1, 0]


def test_corrupt_chunk_is_never_read(tmp_path, slow_calc, caplog):
    model_id, count = slow_calc
    configs = si_configs(10)
    ref = label_dataset(configs, [model_id], cache_dir=tmp_path, chunk_size=5, progress=False)
    cache = LabelCache(tmp_path)
    broken = cache.chunk_files(model_id)[0]
    broken.write_text('{"format": 1, "model_id": "' + model_id + '", "entries": [["abc", 1.0')
    (cache.model_dir(model_id) / ".tmp-chunk-leftover.json").write_text("garbage")
    again = label_dataset(configs, [model_id], cache_dir=tmp_path, chunk_size=5, progress=False)
    assert "ignoring unreadable cache file" in caplog.text
    assert again.attrs["n_evaluated"] == {model_id: 5}
    assert n_counted(count) == 15
    pd.testing.assert_frame_equal(again, ref)


RUNNER = """
import sys
from ase.io import read
import eips_slow_calc
from eiplab.eips import label_dataset
configs = read(sys.argv[1], index=":")
label_dataset(configs, [eips_slow_calc.SLOW_ID], cache_dir=sys.argv[2], chunk_size=4, progress=False)
print("finished")
"""


def test_sigkill_midway_then_resume(tmp_path, slow_calc):
    model_id, count = slow_calc
    data = tmp_path / "configs.extxyz"
    write(data, si_configs(40))
    configs = read(data, index=":")  # bit-identical to what the subprocess reads
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(RUNNER))
    cache = LabelCache(tmp_path / "cache")
    env = dict(
        os.environ,
        EIPLAB_TEST_SLEEP="0.01",
        EIPLAB_TEST_SLOW_AFTER="12",  # 3 chunks of 4 fast, then slow: the kill lands midway
        PYTHONPATH=os.pathsep.join([str(tmp_path), os.getcwd()]),
    )
    proc = subprocess.Popen(
        [sys.executable, str(script), str(data), str(tmp_path / "cache")],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while len(cache.chunk_files(model_id)) < 3:
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "labelling subprocess wrote no chunks"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    out = proc.stdout.read().decode()
    proc.stdout.close()
    proc.stderr.close()
    assert "finished" not in out

    done = cache.chunk_files(model_id)
    assert 3 <= len(done) < 10
    stamps = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in done}
    n_done = sum(len(json.loads(p.read_text())["entries"]) for p in done)
    evaluated_before = n_counted(count)
    assert evaluated_before >= n_done  # plus the chunk in progress when killed

    resumed = label_dataset(
        configs, [model_id], cache_dir=tmp_path / "cache", chunk_size=4, progress=False
    )
    assert resumed.attrs["n_evaluated"] == {model_id: 40 - n_done}
    assert n_counted(count) - evaluated_before == 40 - n_done
    for p in done:  # finished chunks untouched
        assert (p.stat().st_mtime_ns, p.read_bytes()) == stamps[p.name]
    clean = label_dataset(
        configs, [model_id], cache_dir=tmp_path / "clean", chunk_size=4, progress=False
    )
    pd.testing.assert_frame_equal(resumed, clean)


def test_keyboard_interrupt_keeps_finished_chunks(tmp_path, slow_calc, monkeypatch):
    model_id, count = slow_calc
    import eiplab.eips.labelling as labelling

    real = labelling._label_chunk
    calls = {"n": 0}

    def interrupted(spec, items, forces=False):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(spec, items, forces)

    monkeypatch.setattr(labelling, "_label_chunk", interrupted)
    configs = si_configs(20)
    with pytest.raises(KeyboardInterrupt):
        label_dataset(configs, [model_id], cache_dir=tmp_path, chunk_size=5, progress=False)
    assert len(LabelCache(tmp_path).chunk_files(model_id)) == 2
    monkeypatch.setattr(labelling, "_label_chunk", real)
    table = label_dataset(configs, [model_id], cache_dir=tmp_path, chunk_size=5, progress=False)
    assert table.attrs["n_evaluated"] == {model_id: 10}


@pytest.mark.kim
def test_kim_labels_nan_failures_and_parallel(tmp_path, monkeypatch):
    pytest.importorskip("kimpy", exc_type=ImportError)
    if SW not in list_installed() or T2 not in list_installed():
        pytest.skip("KIM models not installed")
    monkeypatch.chdir(tmp_path)
    configs = si_configs(30)
    overlap = Atoms("Si2", positions=[[0, 0, 0], [0, 0, 0]], cell=[5, 5, 5], pbc=True)
    overlap.info[keys.CONFIG_ID] = "overlap"
    configs.append(overlap)
    serial = label_dataset(
        configs, [SW, T2], cache_dir=tmp_path / "a", chunk_size=7, progress=False
    )
    assert np.isnan(serial.loc["overlap", SW])
    assert np.isfinite(serial.drop(index="overlap")).all().all()
    assert "non-finite" in serial.attrs["failures"][SW]["overlap"]
    rows = failures_table(serial)
    assert list(rows.columns) == [keys.CONFIG_ID, "EIP", "model_id", "reason"]
    assert ("overlap", SW) in set(zip(rows[keys.CONFIG_ID], rows["model_id"], strict=True))
    assert set(rows["EIP"]) == {"SW (BalamaneHaliciogluTiller)"}  # the short name every table shows
    # Reasons are kept in the cache: a rerun that computes nothing still reports them.
    again = label_dataset(configs, [SW, T2], cache_dir=tmp_path / "a", progress=False)
    assert again.attrs["n_evaluated"] == {SW: 0, T2: 0}
    assert again.attrs["failures"] == serial.attrs["failures"]
    parallel = label_dataset(
        configs, [SW, T2], cache_dir=tmp_path / "b", n_jobs=2, chunk_size=7, progress=False
    )
    pd.testing.assert_frame_equal(parallel, serial)


@pytest.mark.kim
def test_species_mismatch_refused_up_front(tmp_path, monkeypatch):
    pytest.importorskip("kimpy", exc_type=ImportError)
    if SW not in list_installed():
        pytest.skip("KIM model not installed")
    monkeypatch.chdir(tmp_path)
    configs = si_configs(5)
    alloy = Atoms("SiAl", positions=[[0, 0, 0], [2.4, 0, 0]], cell=[6, 6, 6], pbc=True)
    alloy.info[keys.CONFIG_ID] = "si-al"
    with pytest.raises(SpeciesNotSupportedError, match=r"SW_Balamane.*\['Al'\].*si-al"):
        label_dataset(configs + [alloy], [SW], cache_dir=tmp_path / "c", progress=False)
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").rglob("chunk-*"))


def test_parallel_equals_serial(tmp_path, slow_calc):
    model_id, count = slow_calc
    configs = si_configs(30)
    configs[4].pbc = [True, False, True]
    serial = label_dataset(
        configs, [model_id], cache_dir=tmp_path / "s", chunk_size=4, progress=False
    )
    parallel = label_dataset(
        configs, [model_id], cache_dir=tmp_path / "p", n_jobs=2, chunk_size=4, progress=False
    )
    pd.testing.assert_frame_equal(parallel, serial)
    assert parallel.attrs["n_evaluated"] == {model_id: 30}
    assert n_counted(count) == 60
    from eiplab.eips.labelling import CHUNKS_PER_WORKER

    size = max(4, -(-30 // (CHUNKS_PER_WORKER * 2)))  # chunks grow to a share of each worker's work
    assert len(LabelCache(tmp_path / "p").chunk_files(model_id)) == -(-30 // size)


def test_duplicate_config_ids_refused(tmp_path, slow_calc):
    model_id, _ = slow_calc
    configs = si_configs(2)
    configs[1].info[keys.CONFIG_ID] = configs[0].info[keys.CONFIG_ID]
    with pytest.raises(ValueError, match="not unique"):
        label_dataset(configs, [model_id], cache_dir=tmp_path, progress=False)


def test_forces_are_labelled_cached_and_match_the_model(tmp_path):
    """label_dataset(forces=True) caches each EIP's forces; they equal ASE-KIM's forces."""
    from ase.calculators.kim import KIM

    from eiplab.eips import eip_forces

    configs = si_configs(6, seed=3)
    table = label_dataset(configs, [SW], cache_dir=tmp_path / "c", chunk_size=4, progress=False, forces=True)
    assert table.attrs["n_evaluated"][SW] == 6
    calc = KIM(SW)
    for atoms in configs:
        probe = atoms.copy()
        probe.calc = calc
        np.testing.assert_allclose(eip_forces(atoms, SW), probe.get_forces(), atol=1e-8)
    again = [a.copy() for a in configs]
    for a in again:
        a.info = {keys.CONFIG_ID: a.info[keys.CONFIG_ID]}
    table2 = label_dataset(again, [SW], cache_dir=tmp_path / "c", progress=False, forces=True)
    assert table2.attrs["n_evaluated"][SW] == 0  # energies and forces from the cache
    for a, b in zip(configs, again, strict=True):
        np.testing.assert_array_equal(eip_forces(a, SW), eip_forces(b, SW))
    with pytest.raises(KeyError, match="forces=True"):
        eip_forces(si_configs(1)[0], SW)


def test_format_1_cache_is_migrated_and_a_newer_format_refused(tmp_path):
    """An energy-only (format 1) chunk is reused for energies; asking for forces evaluates those
    configs once more (and only those); a chunk of an unknown newer format is a clear error."""
    from eiplab.eips.cache import CacheFormatError

    configs = si_configs(5, seed=4)
    ref = label_dataset(configs, [SW], cache_dir=tmp_path / "ref", progress=False)
    cache = LabelCache(tmp_path / "old")
    folder = cache.model_dir(SW)
    folder.mkdir(parents=True)
    entries = [[config_hash(a), float(e), None] for a, e in zip(configs[:3], ref[SW], strict=False)]
    (folder / "chunk-old.json").write_text(json.dumps({"format": 1, "model_id": SW, "entries": entries}))
    energies = label_dataset(configs, [SW], cache_dir=tmp_path / "old", progress=False)
    assert energies.attrs["n_evaluated"][SW] == 2  # the three format-1 entries reused
    pd.testing.assert_frame_equal(energies, ref, check_exact=False, rtol=1e-12)
    with_forces = label_dataset(configs, [SW], cache_dir=tmp_path / "old", progress=False, forces=True)
    assert with_forces.attrs["n_evaluated"][SW] == 5  # forces were never computed for any
    assert label_dataset(configs, [SW], cache_dir=tmp_path / "old", progress=False,
                         forces=True).attrs["n_evaluated"][SW] == 0
    (folder / "chunk-new.json").write_text(json.dumps({"format": 99, "model_id": SW, "entries": []}))
    with pytest.raises(CacheFormatError, match="format 99.*update eiplab"):
        label_dataset(configs, [SW], cache_dir=tmp_path / "old", progress=False)


class _NaNForceLJ:
    """An LJ whose forces are NaN on cells of 3 or more atoms (energies fine)."""

    def __new__(cls):
        from ase.calculators.lj import LennardJones

        class Broken(LennardJones):
            def calculate(self, atoms=None, properties=("energy",), system_changes=()):
                super().calculate(atoms, properties, system_changes)
                if len(self.atoms) >= 3:
                    self.results["forces"] = np.full((len(self.atoms), 3), np.nan)

        return Broken(sigma=2.1, epsilon=0.2, rc=5.0, smooth=True)


def test_failed_forces_are_reported_and_not_retried(tmp_path):
    """A finite energy with non-finite forces is a named force failure (a warning and
    ``attrs["force_failures"]``), kept in the cache: later calls evaluate nothing again, even
    with an older energy-only chunk of the same configs in the cache."""
    from eiplab.eips import register_calculator

    model_id = "nan_force_lj_test"
    register_calculator(model_id, _NaNForceLJ, ["Si"], name="LJ with NaN forces (test)")
    configs = si_configs(8, seed=5)
    label_dataset(configs, [model_id], cache_dir=tmp_path, progress=False)  # energy-only chunk first
    table = label_dataset(configs, [model_id], cache_dir=tmp_path, progress=False, forces=True)
    big = {a.info[keys.CONFIG_ID] for a in configs if len(a) >= 3}
    assert big and set(table.attrs["force_failures"][model_id]) == big
    assert all("non-finite forces" in r for r in table.attrs["force_failures"][model_id].values())
    assert np.isfinite(table[model_id]).all()  # the energies stay
    again = label_dataset(configs, [model_id], cache_dir=tmp_path, progress=False, forces=True)
    assert again.attrs["n_evaluated"][model_id] == 0
    assert again.attrs["force_failures"] == table.attrs["force_failures"]
