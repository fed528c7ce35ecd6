"""EIPs found from the installed KIM collection, and models fitted on a dataset refused for it."""

from __future__ import annotations

import pytest
from ase.build import bulk

from eiplab.data import ConfigSet
from eiplab.eips import (
    LeakageError,
    check_not_trained_on,
    eip_candidates,
    installed_eips,
    label_dataset,
    mark_trained_on,
    models_for_dataset,
    trained_on,
)
from eiplab.eips.discovery import display_name, verdict

pytest.importorskip("kimpy")
pytestmark = pytest.mark.kim

PFL = "MEAM_LAMMPS_ParkFellingerLenosky_2012_Mo__MO_269937397263_000"
SNAP_MO = "SNAP_ZuoChenLi_2019_Mo__MO_014123846623_000"


@pytest.fixture(autouse=True)
def _kim_log_in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def _mo(name: str = "mo-mlearn") -> ConfigSet:
    atoms = bulk("Mo", "bcc", a=3.16, cubic=True)
    atoms.info["config_id"] = "mo-0"
    return ConfigSet([atoms], name=name)


def test_the_eips_of_an_element_come_from_the_installed_collection():
    table = eip_candidates(["Mo"]).set_index("model_id")
    assert table.loc[PFL, "verdict"] == "EIP"
    assert table.loc[SNAP_MO, "verdict"] == "machine-learned"
    assert table.loc["LJ_ElliottAkerson_2015_Universal__MO_959249795837_003", "verdict"] == "generic"
    ids = [s.model_id for s in installed_eips(["Mo"])]
    assert PFL in ids and not any(i.startswith(("SNAP", "LJ_", "LennardJones")) for i in ids)
    assert list(table.index[table["verdict"] == "EIP"]) == ids  # every EIP verdict, nothing else
    assert {"EDIP_BelkoGusakovDorozhkin_2010_Ge__MO_129433059219_001"} <= {s.model_id for s in installed_eips(["Ge"])}


def test_verdicts_and_names():
    assert verdict("ex_model_Ar_P_Morse", ("Ar",)) == "KIM example"
    assert verdict("Foo_Bar_2020_Mo__MO_000000000000_000", ("Mo",)) == "unknown family"
    assert verdict("EAM_Dynamo_X_2020_Mo__MO_000000000000_000", tuple(f"E{k}" for k in range(30))) == "generic"
    assert display_name(PFL) == "MEAM (ParkFellingerLenosky 2012)"
    assert display_name("Morse_Shifted_GirifalcoWeizer_1959HighCutoff_Mo__MO_666830945336_004") == \
        "Morse (GirifalcoWeizer 1959HighCutoff)"


def test_models_fitted_on_the_dataset_are_refused(tmp_path):
    configs = _mo()
    assert PFL in [s.model_id for s in models_for_dataset(configs)]
    assert SNAP_MO not in [s.model_id for s in models_for_dataset(configs)]
    assert trained_on(SNAP_MO)[0].datasets == ("ge-mlearn", "li-mlearn", "mo-mlearn")
    with pytest.raises(LeakageError, match="SNAP_ZuoChenLi_2019_Mo.* was fitted on the dataset 'mo-mlearn'"):
        label_dataset(configs, [SNAP_MO], cache_dir=tmp_path)
    with pytest.raises(LeakageError):
        check_not_trained_on([SNAP_MO], "mo-mlearn/train")  # a part of the dataset is the dataset
    label_dataset(_mo("my-mo"), [SNAP_MO], cache_dir=tmp_path)  # elsewhere it is just a model
    mark_trained_on(r"^MEAM_LAMMPS_ParkFellingerLenosky_2012_Mo__", ["my-mo"], "fitted on my-mo, say")
    with pytest.raises(LeakageError, match="fitted on my-mo, say"):
        label_dataset(_mo("my-mo"), [PFL], cache_dir=tmp_path)
    assert PFL not in [s.model_id for s in models_for_dataset(_mo("my-mo"))]
