"""Registry: Table 2 model lists, installed-model listing, KIM ID resolution, TMOD."""

from __future__ import annotations

import importlib.util
import logging

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from eiplab.eips import (
    TMOD_ID,
    ModelNotFoundError,
    SimulatorModelError,
    list_installed,
    models_for,
    models_for_dataset,
    resolve,
    system_for_species,
    system_names,
)

T2 = "Tersoff_LAMMPS_Tersoff_1988T2_Si__MO_245095684871_003"


@pytest.fixture(autouse=True)
def _kim_log_in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the KIM API writes kim.log into the working directory


def _installed() -> list[str]:
    installed = list_installed()
    if not installed:
        pytest.skip("no KIM portable models installed")
    return installed


needs_matscipy = pytest.mark.skipif(
    importlib.util.find_spec("matscipy") is None, reason="matscipy not installed"
)


def test_table2_lists():
    assert system_names() == ["Si", "Al", "AgAu"]
    si, al, agau = (models_for(s) for s in ("Si", "Al", "AgAu"))
    assert len(si) == 8 and len(al) == 10 and len(agau) == 2
    names = [s.name for s in si]
    assert "Tersoff (T2)" in names and "Tersoff (TMOD)" in names
    assert all(s.doi.startswith("10.") for s in si + al + agau)
    assert {s.model_id for s in si if not s.is_kim} == {TMOD_ID}
    assert "EAM (ZopeMishin)" in [s.name for s in al]
    with pytest.raises(KeyError, match="known"):
        models_for("Cu")


def test_models_for_dataset():
    ag = Atoms("Ag2", positions=[[0, 0, 0], [2.9, 0, 0]])
    agau = Atoms("AgAu", positions=[[0, 0, 0], [2.9, 0, 0]])
    assert system_for_species(["Ag"]) == "AgAu" and system_for_species(["Si"]) == "Si"
    assert [m.name for m in models_for_dataset([ag, agau])] == [m.name for m in models_for("AgAu")]
    with pytest.raises(KeyError, match=r"no installed physics-based KIM model supports all of \['He', 'Si'\]"):
        models_for_dataset([Atoms("SiHe", positions=[[0, 0, 0], [2.4, 0, 0]])])


@pytest.mark.kim
def test_table2_kim_ids_installed():
    installed = set(_installed())
    for system in system_names():
        for spec in models_for(system):
            if spec.is_kim:
                assert spec.model_id in installed, spec.model_id
                assert resolve(spec.model_id) == spec.model_id


@pytest.mark.kim
def test_list_installed_has_portable_only():
    installed = _installed()
    assert T2 in installed
    assert not any("__SM_" in m for m in installed)
    assert any(m.startswith("Sim_") for m in list_installed(simulator=True))


@pytest.mark.kim
def test_resolve_other_version(caplog):
    _installed()
    wrong = T2[:-3] + "007"
    with caplog.at_level(logging.INFO, logger="eiplab.eips.registry"):
        assert resolve(wrong) == T2
    assert "using installed version" in caplog.text


@pytest.mark.kim
def test_resolve_unknown_names_closest():
    _installed()
    with pytest.raises(
        ModelNotFoundError, match="Closest installed: .*Tersoff_LAMMPS_Tersoff_1988T2"
    ):
        resolve("Tersoff_LAMMPS_Tersoff_1988T2_Si__MO_245095684870_003")
    with pytest.raises(ModelNotFoundError, match="not installed"):
        resolve("NoSuchModel_Xx__MO_000000000000_000")


def test_resolve_refuses_simulator_models():
    with pytest.raises(SimulatorModelError, match="does not load through kimpy"):
        resolve("Sim_LAMMPS_MEAM_AsadiZaeemNouranian_2015_Cu__SM_239791545509_000")


@needs_matscipy
def test_tmod_kumagai_reference_values():
    """Kumagai et al. 2007 fit diamond Si: a = 5.429 A, E_coh = -4.63 eV/atom."""
    from eiplab.eips import load_model

    tmod = load_model(TMOD_ID)
    diamond = bulk("Si", "diamond", a=5.429)
    e = tmod.energy(diamond) / len(diamond)
    assert e == pytest.approx(-4.63, abs=2e-3)
    # Minimum of E(a) near 5.429 A.
    es = [tmod.energy(bulk("Si", "diamond", a=a)) for a in (5.40, 5.429, 5.46)]
    assert es[1] < es[0] and es[1] < es[2]
    # Same energy per atom for the conventional cell and a 2x1x1 supercell.
    cubic = bulk("Si", "diamond", a=5.429, cubic=True)
    assert tmod.energy(cubic * (2, 1, 1)) / 16 == pytest.approx(e, abs=1e-9)
    # An open dimer (no cell) works and is bound.
    dimer = Atoms("Si2", positions=[[0, 0, 0], [2.3, 0, 0]])
    assert np.isfinite(tmod.energy(dimer)) and tmod.energy(dimer) < 0
