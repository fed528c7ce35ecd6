"""The LA error-regression selector: learns which EIP is right where, same table as the
classifier's, through the grid; nothing chosen on val/test/pool DFT."""

import numpy as np
import pytest

from eiplab import Study, keys
from eiplab.strategies import eip_errors, select_by_error, select_pool, train_error_regressor
from eiplab.training import TrainSettings


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    folder = tmp_path_factory.mktemp("selector")
    mp.setenv("EIPLAB_CACHE", str(folder / "cache"))
    yield Study("si-pyxtal", "quick", models=["schnet"], grid_dir=folder / "grid", device="cpu",
                selector="error-regression")
    mp.undo()


def test_the_regression_ranks_hand_built_eips(study):
    """EIP 0 is exact on dense configs and 0.5 eV/atom off on open ones, EIP 1 the reverse, the
    rest 1 eV/atom off everywhere: the regression must pick EIP 0 on dense, EIP 1 on open configs."""
    exp = study.experiment(0)
    saved = exp.aligned.copy()
    a, b = exp.model_ids[:2]
    volume = {}
    for part in (keys.TRAIN, keys.VAL, keys.TEST, keys.POOL):
        for atoms in exp.parts[part]:
            volume[atoms.info[keys.CONFIG_ID]] = atoms.get_volume() / len(atoms)
    cut = float(np.median(list(volume.values())))
    try:
        for part in (keys.TRAIN, keys.VAL, keys.TEST):
            for atoms in exp.parts[part]:
                cid, n, e = atoms.info[keys.CONFIG_ID], len(atoms), atoms.info[keys.ENERGY_DFT]
                dense = volume[cid] < cut
                exp.aligned.loc[cid, :] = e + 1.0 * n
                exp.aligned.loc[cid, a] = e + (0.0 if dense else 0.5) * n
                exp.aligned.loc[cid, b] = e + (0.5 if dense else 0.0) * n
        errors = eip_errors(exp, keys.TRAIN)
        assert np.nanmax(errors) == pytest.approx(1.0)
        settings = TrainSettings(epochs=120, batch_size=16, device="cpu", progress=False, seed=0)
        result = train_error_regressor(exp, study.grid.model_configs["schnet"].replace(width=32), settings, tau=0.3)
        picks = select_by_error(result.model, exp, tau=0.3, device="cpu")  # the pool: ~170 unseen configs
        lo, hi = np.quantile(list(volume.values()), [0.3, 0.7])
        clear = [c for c in picks.index if volume[c] < lo or volume[c] > hi]  # clearly dense or clearly open
        expected = np.array([a if volume[c] < cut else b for c in clear])
        accuracy = np.mean(picks.loc[clear, "model_id"].to_numpy() == expected)
        assert accuracy >= 0.75  # chance: 1/3 (EIP 0, EIP 1 or none)
        assert set(picks.columns) >= {"eip_class", "model_id", "confidence", "label_energy", "selected",
                                      "predicted_error"}
        assert ((picks["confidence"] > 0) & (picks["confidence"] <= 1)).all()
    finally:
        exp.aligned.loc[:, :] = saved


def test_same_table_as_the_classifier_and_through_the_grid(study):
    selection = study.selection("schnet", 0)
    classifier_like = select_pool.__doc__  # the documented columns
    for column in ("eip_class", "model_id", "confidence", "label_energy", "selected"):
        assert column in selection.columns and column in classifier_like
    assert (selection.loc[selection["selected"], "predicted_error"] <= study.tau(0) + 1e-12).all()
    audit = study.audit("schnet")
    assert list(audit["seed"]) == [0, 1, 2] and audit["accuracy"].between(0, 1).all()
    runs = study.run(["la"], seeds=[0])
    assert np.isfinite(runs["test_mae_config"]).all()
    assert list(runs[keys.SELECTOR]) == ["error-regression"]  # the record says how LA picked its EIPs
    with pytest.raises(ValueError, match="unknown LA selector"):
        Study("si-pyxtal", "quick", selector="coin-flip")
