"""eiplab.Study: the set-up sequence resolved once, and the grid through it."""

import pytest

from eiplab import Study
from eiplab.data import DataError, dataset_splits
from eiplab.eips import models_for_dataset


@pytest.fixture
def study(tmp_path, monkeypatch):
    monkeypatch.setenv("EIPLAB_CACHE", str(tmp_path / "cache"))
    return Study("si-pyxtal", "quick", models=["soapnet"], grid_dir=tmp_path / "grid", device="cpu")


def test_study_resolves_data_splits_eips_and_store(study, tmp_path):
    assert len(study.configs) == 240 and study.seeds == (0, 1, 2)
    assert study.eip_ids == [m.model_id for m in models_for_dataset(study.configs)]
    assert study.short_names[study.eip_ids[0]] != study.eip_ids[0]  # short display names
    again = dataset_splits(study.configs, seeds=(1,))[0]
    assert study.split(1).equals(again) and study.split(7).equals(dataset_splits(study.configs, seeds=(7,))[0])
    assert study.grid_dir == tmp_path / "grid" and study.models == ["soapnet"]
    assert "si-pyxtal" in repr(study)


def test_study_runs_plans_and_finds_runs(study):
    assert (study.plan(["baseline"], seeds=[0])["status"] == "to do").all()
    runs = study.run(["baseline"], seeds=[0])
    assert list(runs["tag"]) == ["baseline"] and runs["test_mae_config"].notna().all()
    assert (study.plan(["baseline"], seeds=[0])["status"] == "done").all()
    found = study.results()
    assert list(found["seed"]) == [0] and found["test_mae_config"].iloc[0] == runs["test_mae_config"].iloc[0]
    # the trained network runs as an ASE calculator (SOAPNet: energies only) and agrees with predict
    from eiplab.models import load_model
    from eiplab.training import predict

    calc = study.calculator("soapnet", "baseline", 0)
    atoms = study.configs[0].copy()
    atoms.calc = calc
    expected = predict(load_model(study.store.model_file("soapnet", "baseline", 0)), [study.configs[0]], device="cpu")
    assert atoms.get_potential_energy() == pytest.approx(float(expected[0]), abs=1e-4)


def test_study_selection_and_audit_use_the_split_tau(study):
    picks = study.selection("soapnet", 0)
    assert len(picks) == len(study.experiment(0).parts["pool"]) and picks["selected"].dtype == bool
    audit = study.audit("soapnet")
    assert list(audit["seed"]) == [0, 1, 2] and set(audit["audited_on"]) == {"pool"}
    assert study.tau(0) == pytest.approx(0.1)


def test_study_names_the_eips_given_and_refuses_an_unknown_dataset(tmp_path):
    one = models_for_dataset(Study("si-pyxtal", "quick").configs)[0].model_id
    assert Study("si-pyxtal", "quick", eips=[one]).eip_ids == [one]
    with pytest.raises((DataError, KeyError, FileNotFoundError)):
        Study("no-such-dataset", "quick")
