"""KIMModel (kimpy driven directly, vesin neighbour lists) against ASE's KIM calculator."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from eiplab import keys
from eiplab.data.random_cells import random_cell as make_random_cell
from eiplab.eips import (
    KIMError,
    KIMModel,
    ModelNotFoundError,
    SpeciesNotSupportedError,
    evaluate,
    evaluate_detailed,
    list_installed,
)

kimpy = pytest.importorskip("kimpy", exc_type=ImportError)

SW = "SW_BalamaneHaliciogluTiller_1992_Si__MO_113686039439_004"
T2 = "Tersoff_LAMMPS_Tersoff_1988T2_Si__MO_245095684871_003"
EDIP = "EDIP_JustoBazantKaxiras_1998_Si__MO_958932894036_002"
MEAM = "MEAM_LAMMPS_LenoskySadighAlonso_2000_Si__MO_533426548156_000"
ERHART = "Tersoff_LAMMPS_ErhartAlbe_2005_SiC__MO_903987585848_004"
ZOPE = "EAM_Dynamo_ZopeMishin_2003_Al__MO_664470114311_005"
EMT_AL = "EMT_Asap_Standard_JacobsenStoltzeNorskov_1996_Al__MO_623376124862_001"
MORSE = "Morse_Shifted_GirifalcoWeizer_1959HighCutoff_Al__MO_140175748626_004"
ZJW_AGAU = "EAM_Dynamo_ZhouJohnsonWadley_2004NISTretabulation_CuAgAu__MO_318213562153_000"
STURGEON = "EAM_Dynamo_SturgeonLaird_2000_Al__MO_120808805541_005"

SI_MODELS = [SW, T2, EDIP, MEAM, ERHART]
AL_MODELS = [ZOPE, EMT_AL, MORSE]

pytestmark = pytest.mark.kim


def need(model_id: str) -> None:
    if model_id not in list_installed():
        pytest.skip(f"KIM model {model_id} not installed")


@pytest.fixture(autouse=True)
def _kim_log_in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the KIM API writes kim.log into the working directory


def random_cell(rng: np.random.Generator, symbols: list[str], n: int, vol: float, d_min: float) -> Atoms:
    """A random cell with unwrapped positions (they must not matter)."""
    return make_random_cell(rng, symbols, n, vol, d_min, unwrap=3.0)


def config_set(rng: np.random.Generator, symbols: list[str], d_min: float) -> list[Atoms]:
    """Periodic 1-16 atom cells (incl. tiny ones), mixed pbc, open clusters and dimers."""
    configs = [
        random_cell(rng, symbols, int(n), rng.uniform(12, 25), d_min)
        for n in rng.integers(1, 17, 12)
    ]
    configs += [
        random_cell(rng, symbols, 1, rng.uniform(8, 12), d_min) for _ in range(4)
    ]  # tiny cells
    for pbc in ([True, False, True], [False, False, True]):
        a = random_cell(rng, symbols, 6, 18.0, d_min)
        a.pbc = pbc
        configs.append(a)
    cluster = random_cell(rng, symbols, 8, 18.0, d_min)
    cluster.pbc = False
    configs.append(cluster)
    no_cell = Atoms(cluster.symbols, cluster.positions)
    configs.append(no_cell)
    for r in (d_min, 2.4, 3.1):
        configs.append(Atoms([symbols[0], symbols[-1]], positions=[[0, 0, 0], [r, 0.1, -0.2]]))
    one = Atoms(symbols[:1], positions=[[0.3, 0.2, 0.1]])
    configs.append(one)
    return configs


def ase_energy_forces(
    model_id: str, configs: list[Atoms]
) -> tuple[np.ndarray, list[np.ndarray | None]]:
    """ASE's KIM calculator; NaN energy and None forces where its compute fails."""
    from ase.calculators.kim import KIM
    from ase.calculators.kim.exceptions import KimpyError

    calc = KIM(model_id)
    energies, forces = [], []
    for a in configs:
        b = a.copy()
        # ASE's KIM calculator (kimpy's padding) is wrong for atoms outside the cell: wrap.
        b.wrap()
        b.calc = calc
        try:
            energies.append(b.get_potential_energy())
            forces.append(b.get_forces())
        except KimpyError:
            calc = KIM(model_id)
            energies.append(np.nan)
            forces.append(None)
    return np.array(energies), forces


@pytest.mark.parametrize(
    ("model_id", "symbols", "d_min"),
    [(m, ["Si"], 1.9) for m in SI_MODELS]
    + [(m, ["Al"], 2.2) for m in AL_MODELS]
    + [(ZJW_AGAU, ["Ag", "Au"], 2.5)],
)
def test_energies_and_forces_match_ase(model_id, symbols, d_min):
    need(model_id)
    rng = np.random.default_rng(sum(map(ord, model_id)))
    configs = config_set(rng, symbols, d_min)
    expected_e, expected_f = ase_energy_forces(model_id, configs)
    model = KIMModel(model_id)
    result = evaluate_detailed(configs, model, forces=True)
    assert np.isfinite(expected_e).sum() >= len(configs) - 2
    # Where ASE's compute fails (EAM density beyond its table), ours records NaN + reason.
    np.testing.assert_array_equal(np.isnan(result.energies), np.isnan(expected_e))
    assert set(result.failures) == set(np.flatnonzero(np.isnan(expected_e)))
    np.testing.assert_allclose(result.energies, expected_e, rtol=0, atol=1e-6)
    for f, f_ref in zip(result.forces, expected_f, strict=True):
        if f_ref is not None:
            np.testing.assert_allclose(f, f_ref, rtol=0, atol=1e-6)


def test_unwrapped_positions_do_not_matter():
    need(SW)
    rng = np.random.default_rng(7)
    model = KIMModel(SW)
    for n in (1, 3, 8):
        a = random_cell(rng, ["Si"], n, 18.0, 1.9)
        wrapped = a.copy()
        wrapped.wrap()
        assert np.abs(a.positions - wrapped.positions).max() > 1.0
        assert model.energy(a) == pytest.approx(model.energy(wrapped), abs=1e-9)


def test_supercell_additivity_tiny_cell():
    """A 1-atom cell much smaller than the cutoff: energy per atom equals a supercell's."""
    need(SW)
    from ase.build import bulk

    model = KIMModel(SW)
    prim = bulk("Si", "fcc", a=3.3)  # 1 atom, nearest image 2.33 A < cutoff 3.77 A
    e1 = model.energy(prim)
    assert model.energy(prim * (2, 3, 1)) == pytest.approx(6 * e1, abs=1e-9)
    # Switching forces on and off on one model changes nothing.
    rattled = prim * (2, 1, 1)
    rattled.positions[0] += [0.1, -0.05, 0.02]
    e, f = model.energy_and_forces(rattled)
    assert model.energy(rattled) == e
    assert np.abs(f.sum(axis=0)).max() < 1e-9  # Newton's third law over the cell
    assert model.energy_and_forces(rattled)[0] == e


def test_evaluate_returns_array_and_writes_nothing():
    need(SW)
    from ase.build import bulk

    diamond = bulk("Si", "diamond", a=5.431)
    energies = evaluate([diamond, diamond * (1, 1, 2)], SW)
    assert energies.shape == (2,)
    assert energies[0] == pytest.approx(2 * -4.63, abs=1e-3)  # SW (BHT) cohesive energy
    assert energies[1] == pytest.approx(2 * energies[0])
    e, f = evaluate([diamond], SW, forces=True)
    assert f[0].shape == (2, 3) and np.abs(f[0]).max() < 1e-8
    assert keys.ENERGY_EIP not in diamond.info


def test_failures_become_nan_with_reason():
    need(SW)
    overlap = Atoms("Si2", positions=[[0, 0, 0], [0, 0, 0]], cell=[5, 5, 5], pbc=True)
    ok = Atoms("Si2", positions=[[0, 0, 0], [2.3, 0, 0]], cell=[6, 6, 6], pbc=True)
    result = evaluate_detailed([ok, overlap, ok], SW)
    assert np.isfinite(result.energies[[0, 2]]).all() and np.isnan(result.energies[1])
    assert list(result.failures) == [1] and "non-finite" in result.failures[1]


def test_kim_compute_error_is_recorded():
    need(STURGEON)
    overlap = Atoms("Al2", positions=[[0, 0, 0], [0, 0, 0]], cell=[5, 5, 5], pbc=True)
    result = evaluate_detailed([overlap], STURGEON)
    assert np.isnan(result.energies[0])
    assert STURGEON in result.failures[0] or "non-finite" in result.failures[0]


def test_species_mismatch_is_a_clear_error():
    need(SW)
    al = Atoms("Al2", positions=[[0, 0, 0], [2.5, 0, 0]], info={keys.CONFIG_ID: "al-dimer"})
    model = KIMModel(SW)
    assert model.species == ["Si"]
    with pytest.raises(SpeciesNotSupportedError, match=r"SW_Balamane.*\['Al'\]"):
        model.energy(al)
    with pytest.raises(SpeciesNotSupportedError, match="al-dimer"):
        evaluate([al], SW)
    result = evaluate_detailed([al], SW, on_unsupported="nan")
    assert np.isnan(result.energies[0]) and "Al" in result.failures[0]


def test_unknown_model_and_create_failure(monkeypatch):
    with pytest.raises(ModelNotFoundError, match="NoSuch_Si__MO_000000000000_000"):
        KIMModel("NoSuch_Si__MO_000000000000_000")
    # A name that passes resolution but that the KIM API cannot create.
    import eiplab.eips.kim as kim

    monkeypatch.setattr(kim, "resolve", lambda model_id: model_id)
    with pytest.raises(
        KIMError, match=r"NoSuch_Si__MO_000000000000_000: ModelCreate failed"
    ) as info:
        KIMModel("NoSuch_Si__MO_000000000000_000")
    assert isinstance(info.value.__cause__, RuntimeError)


def test_a_failed_compute_names_the_models_own_reason():
    """The KIM API's exception only says the model's routine returned an error; the error names
    the model's own reason from kim.log (here: an EAM squeezed past its tabulated density)."""
    from eiplab.dft.generators import AL_MD_MODEL

    need(AL_MD_MODEL)
    squeezed = bulk("Al", "fcc", a=3.4, cubic=True)
    with pytest.raises(KIMError, match=r"ErcolessiAdams.*compute failed: .*embedding function"):
        KIMModel(AL_MD_MODEL).energy(squeezed)
    assert np.isfinite(KIMModel(AL_MD_MODEL).energy(bulk("Al", "fcc", a=4.05, cubic=True)))


def test_model_error_from_log_reads_the_last_failure_only(tmp_path):
    from eiplab.eips.kim import log_size, model_error_from_log

    log = tmp_path / "kim.log"
    assert model_error_from_log(log) is None  # no log
    line = "2026-12-05:08:50:52UTC * {n} * {level} * {log_id} * {source} * {message}\n"
    log.write_text(
        line.format(n=0, level="error", log_id="0xA", source="EAM_Implementation.hpp:474", message="old reason")
        + line.format(n=1, level="error", log_id="0xA", source="KIM_ModelImplementation.cpp:2664",
                      message="Model supplied Compute() routine returned error.")
        + line.format(n=0, level="error", log_id="0xB", source="Other.cpp:1", message="another model's error")
        + line.format(n=0, level="error", log_id="0xC", source="EAM_Implementation.hpp:474",
                      message="Particle has density value outside of embedding function interpolation domain")
        + line.format(n=1, level="information", log_id="0xC", source="EAM_Implementation.hpp:9", message="fine")
        + line.format(n=2, level="error", log_id="0xC", source="KIM_ModelImplementation.cpp:2664",
                      message="Model supplied Compute() routine returned error.")
    )
    assert model_error_from_log(log) == "Particle has density value outside of embedding function interpolation domain"
    # only what was written from ``start`` on counts: an earlier failure is not this call's reason
    end = log_size(log)
    with open(log, "a") as f:
        f.write(line.format(n=0, level="information", log_id="0xD", source="EAM.cpp:1", message="fine"))
    assert model_error_from_log(log, start=end) is None
    log.write_text(line.format(n=0, level="error", log_id="0xA", source="EAM.cpp:1", message="no compute failure"))
    assert model_error_from_log(log) is None
