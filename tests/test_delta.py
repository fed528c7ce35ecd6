"""Delta-learning on an EIP: targets, the EIP choice (TRAIN only), failures, and the grid."""

import numpy as np
import pytest

from eiplab import Study, keys
from eiplab.analysis import results as res
from eiplab.models import ModelConfig
from eiplab.strategies import delta_breakdown, delta_configs, delta_eip, delta_parts, rank_eips
from eiplab.training import TrainSettings, fit_energy_model, predict


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    folder = tmp_path_factory.mktemp("delta")
    mp.setenv("EIPLAB_CACHE", str(folder / "cache"))
    yield Study("si-pyxtal", "quick", models=["schnet"], grid_dir=folder / "grid", device="cpu")
    mp.undo()


def _known_term(atoms):
    """A smooth, local known correction (eV): a pair term 0.05 (3.5 - r)^2 over pairs closer than
    3.5 Angstrom (inside the networks' 4 Angstrom cutoff)."""
    from ase.neighborlist import neighbor_list

    d = neighbor_list("d", atoms, 3.5)
    return 0.05 * float(np.sum((3.5 - d) ** 2)) / 2


def _perfect(study, eip):
    """The study's split 0 with DFT replaced by the aligned EIP energy + the known term."""
    exp = study.experiment(0)
    for part in (keys.TRAIN, keys.VAL, keys.TEST):
        aligned = exp.aligned_for(part)[eip]
        for atoms in exp.parts[part]:
            atoms.info[keys.ENERGY_DFT] = float(aligned[atoms.info[keys.CONFIG_ID]]) + _known_term(atoms)
    return exp


def test_delta_targets_are_dft_minus_the_aligned_eip_and_learn_the_known_term(study):
    exp = study.experiment(0)
    original = {a.info[keys.CONFIG_ID]: a.info[keys.ENERGY_DFT] for p in (keys.TRAIN, keys.VAL, keys.TEST)
                for a in exp.parts[p]}
    try:
        eip = exp.model_ids[0]
        exp = _perfect(study, eip)
        parts = delta_parts(exp, eip)
        for atoms in parts[keys.TEST]:
            assert atoms.info[keys.ENERGY_DFT] == pytest.approx(_known_term(atoms), abs=1e-6)
            assert atoms.info["delta_eip"] == eip
        settings = TrainSettings(epochs=30, batch_size=16, device="cpu", progress=False, seed=0)
        small = ModelConfig("schnet", width=16, n_layers=2, cutoff=4.0, n_gaussians=16)
        delta = fit_energy_model(parts[keys.TRAIN], parts[keys.VAL], parts[keys.TEST], model=small, settings=settings)
        plain = fit_energy_model(exp.parts[keys.TRAIN], exp.parts[keys.VAL], exp.parts[keys.TEST], model=small,
                                 settings=settings)
        assert delta.test_metrics["test_mae_atom"] < 0.5 * plain.test_metrics["test_mae_atom"]
        # the prediction is an explicit sum of named terms
        net = predict(delta.model, parts[keys.TEST], device="cpu")
        base = np.array([sum(delta.baseline.get(int(z), 0.0) for z in a.numbers) for a in parts[keys.TEST]])
        terms = delta_breakdown(exp, keys.TEST, eip, net, base)
        dft = np.array([a.info[keys.ENERGY_DFT] for a in exp.parts[keys.TEST]])
        assert np.mean(np.abs(terms["total"].to_numpy() - dft)) == pytest.approx(delta.test_metrics["test_mae_config"],
                                                                                  rel=1e-3)
    finally:
        for p in (keys.TRAIN, keys.VAL, keys.TEST):
            for a in exp.parts[p]:
                a.info[keys.ENERGY_DFT] = original[a.info[keys.CONFIG_ID]]


def test_the_eip_is_chosen_on_train_only_and_failures_are_named(study):
    exp = study.experiment(1)
    chosen = delta_eip(exp)
    assert chosen == rank_eips(exp)[0]
    saved = [(a, a.info[keys.ENERGY_DFT]) for p in (keys.VAL, keys.TEST) for a in exp.parts[p]]
    try:
        for atoms, e in saved:  # val/test DFT scrambled: the choice cannot move
            atoms.info[keys.ENERGY_DFT] = e + 50.0 * np.sin(len(atoms))
        assert delta_eip(exp) == chosen
    finally:
        for atoms, e in saved:
            atoms.info[keys.ENERGY_DFT] = e
    with pytest.raises(ValueError, match="not one of"):
        delta_eip(exp, "no-such-eip")
    broken = exp.aligned.copy()
    first = exp.parts[keys.TRAIN].ids[0]
    exp.aligned.loc[first, chosen] = np.nan
    try:
        with pytest.raises(ValueError, match=first):
            delta_configs(exp, keys.TRAIN, chosen)
    finally:
        exp.aligned[chosen] = broken[chosen]


def test_delta_runs_through_the_grid_into_table3(study):
    runs = study.run(["baseline", "delta", "delta+mp"], seeds=[0])
    delta = runs[runs["tag"] == "delta"].iloc[0]
    assert delta["delta_eip"] == delta_eip(study.experiment(0))
    assert np.isfinite(delta["test_mae_config"])
    table = res.table3(runs)
    assert [s for _, s in table.index] == ["baseline", "delta", "delta+mp"]
    plan = study.plan(["delta", "delta+mp"], seeds=[0])
    assert (plan["status"] == "done").all()
