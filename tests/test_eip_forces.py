"""EIP knowledge through forces: MP heads fitted on each EIP's forces (projected loss), LA with the
selected EIP's forces (Tukey term), and both through the grid (issue 20)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from eiplab import Study, keys
from eiplab.analysis import results as res
from eiplab.graphs import make_loader
from eiplab.graphs.build import FORCES, POS
from eiplab.models import ModelConfig, build_model
from eiplab.strategies.augment import IS_EIP, AugmentedLoss, augmented_graphs
from eiplab.strategies.pretrain import (
    EIP_FORCES,
    MultiTaskForceLoss,
    _mtl_graphs,
    fit_scaler,
    masked_mse,
    per_head_force_mse,
)
from eiplab.strategies.tukey import tukey_biweight
from eiplab.training import TrainSettings
from eiplab.workflows.inputs import backbone_inputs, run_inputs, split_key
from eiplab.workflows.spec import GridConfig, RunSpec

SMALL = ModelConfig("schnet", width=16, n_layers=2, cutoff=4.0, n_gaussians=16)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    folder = tmp_path_factory.mktemp("eip-forces")
    mp.setenv("EIPLAB_CACHE", str(folder / "cache"))
    mp.chdir(folder)  # kim.log
    yield Study("si-pyxtal", "quick", models=["schnet"], grid_dir=folder / "grid", device="cpu",
                force_weight=10.0, eip_forces=True)
    mp.undo()


@pytest.fixture(scope="module")
def pool_graphs(study):
    """Pool graphs of split 0 with 2 EIPs' standardised energies and forces (one EIP's forces
    removed on a few configs, as for a failed evaluation)."""
    from eiplab.strategies.experiment import label_with_eips

    exp = study.experiment(0)
    ids = exp.model_ids[:2]
    pool = exp.parts[keys.POOL][:24]
    label_with_eips(pool, ids, progress=False, forces=True)
    scaler = fit_scaler(pool, exp.aligned, ids)
    graphs = _mtl_graphs(pool, exp.aligned, scaler, SMALL.replace(n_out=2, head="atomwise"), forces=True)
    for g in graphs[:3]:
        g[EIP_FORCES][:, 1] = float("nan")
    return graphs


def test_projected_force_loss_is_an_unbiased_estimate_of_the_per_head_force_mse(pool_graphs):
    torch.manual_seed(0)
    model = build_model(SMALL.replace(n_out=2, head="atomwise")).double()
    batch = next(iter(make_loader(pool_graphs, 24)))
    batch[POS] = batch[POS].double()
    exact = float(per_head_force_mse(model, batch))
    loss = MultiTaskForceLoss(force_weight=1.0)
    draws = []
    for _ in range(200):
        prediction = model(batch)
        draws.append(float((loss(prediction, batch) - masked_mse(prediction, batch)).detach()))
    # two heads: (w1 d1 + w2 d2)^2 averages to d1^2 + d2^2 over the sign draws
    assert np.mean(draws) == pytest.approx(exact, rel=0.05)
    assert np.std(draws) > 0  # it is a random projection, not the exact sum


def test_pretraining_on_eip_forces_learns_them(study):
    """Pretraining with EIP forces fits them: per-head force MSE on the pool well below that of
    predicting zero forces (measured at these tiny settings: 0.078 vs 0.157 in target units; the
    energy-only pretraining's forces were no better than zero, 0.156), and it refuses SOAPNet."""
    from eiplab.strategies.experiment import label_with_eips
    from eiplab.strategies.pretrain import pretrain

    exp = study.experiment(0)
    pool = exp.parts[keys.POOL][:96]
    ids = exp.model_ids[:2]
    label_with_eips(pool, ids, progress=False, forces=True)
    settings = TrainSettings(epochs=60, batch_size=16, device="cpu", progress=False, seed=1)
    fit = pretrain(pool, exp.aligned, ids, SMALL, settings, force_weight=100.0)
    graphs = _mtl_graphs(pool, exp.aligned, fit.scaler, SMALL.replace(n_out=2, head="atomwise"), forces=True)
    batch = next(iter(make_loader(graphs, len(graphs))))
    zero_forces = float(torch.nanmean(batch[EIP_FORCES] ** 2))
    assert float(per_head_force_mse(fit.model, batch)) < 0.7 * zero_forces
    with pytest.raises(ValueError, match="SOAP features"):
        pretrain(pool, exp.aligned, ids, ModelConfig("soapnet", soap={"r_cut": 4.0}), settings, force_weight=1.0)


def test_absurd_eip_forces_are_left_out_of_pretraining(study):
    from eiplab.strategies.pretrain import MAX_ABS_FORCE, standardised_forces

    exp = study.experiment(0)
    atoms = exp.parts[keys.POOL][0].copy()
    ids = exp.model_ids[:2]
    scaler = fit_scaler(exp.parts[keys.POOL][:24], exp.aligned, ids)
    atoms.info[keys.FORCES_EIP] = {ids[0]: np.full((len(atoms), 3), 0.5), ids[1]: np.full((len(atoms), 3), 0.5)}
    atoms.info[keys.FORCES_EIP][ids[1]][0, 0] = 10 * MAX_ABS_FORCE  # an EIP at its repulsive wall
    out = standardised_forces(atoms, scaler, np.array([True, True]))
    assert np.allclose(out[:, 0], 0.5 / scaler.sigma[0]) and np.isnan(out[:, 1]).all()
    assert np.isnan(standardised_forces(atoms, scaler, np.array([False, True]))[:, 0]).all()  # masked energy


def test_a_force_loss_without_force_weight_is_refused(study):
    from eiplab.training import fit_energy_model

    exp = study.experiment(0)
    with pytest.raises(ValueError, match="has force terms but force_weight=0"):
        fit_energy_model(exp.parts[keys.TRAIN], exp.parts[keys.VAL], model=SMALL,
                         settings=TrainSettings(epochs=1, device="cpu", progress=False),
                         loss_fn=AugmentedLoss(1.0, force_weight=1.0))


def _la_batch(study, eip_forces):
    import pandas as pd

    exp = study.experiment(0)
    chosen = exp.parts[keys.POOL].ids[:6]
    model_id = exp.model_ids[0]
    selection = pd.DataFrame({"model_id": model_id, "label_energy": exp.aligned.loc[chosen, model_id].to_numpy(),
                              "selected": True}, index=pd.Index(chosen, name=keys.CONFIG_ID))
    train, aug = augmented_graphs(exp, selection, SMALL, forces=True, eip_forces=eip_forces)
    return next(iter(make_loader(train[:6] + aug, 12))), model_id


def test_la_uses_the_selected_eips_forces_only_when_asked_and_a_wrong_pick_is_harmless(study):
    torch.manual_seed(0)
    model = build_model(SMALL)
    batch, model_id = _la_batch(study, eip_forces=True)
    is_eip = batch[IS_EIP].bool()
    atom_eip = is_eip[batch.batch]
    eip_atoms = atom_eip.nonzero().squeeze(1)
    pool_config = study.experiment(0).parts[keys.POOL][0]
    assert torch.allclose(batch[FORCES][eip_atoms[: len(pool_config)]].double(),
                          torch.as_tensor(pool_config.info[keys.FORCES_EIP][model_id]))
    loss = AugmentedLoss(weight=0.5, force_weight=2.0, eip_forces=True)
    batch[POS].requires_grad_(True)
    prediction = model(batch)
    (grad,) = torch.autograd.grad(prediction[:, 0].sum(), batch[POS], create_graph=True)
    residual = -grad - batch[FORCES]
    dft_term = 2.0 * (residual[~atom_eip] ** 2).mean()
    eip_term = 0.5 * 2.0 * tukey_biweight(residual[atom_eip].reshape(-1))
    energy_only = AugmentedLoss(weight=0.5)(prediction, batch)
    total = float(loss(prediction, batch).detach())
    assert total == pytest.approx(float((energy_only + dft_term + eip_term).detach()), rel=1e-5)
    # one EIP-labelled atom's forces wildly wrong (a bad pick): beyond the Tukey cut, no gradient
    wrong = eip_atoms[0]
    batch[FORCES][wrong] += 1e3
    model.zero_grad()
    loss(model(batch), batch).backward()
    with_outlier = [p.grad.clone() for p in model.parameters()]
    batch[FORCES][wrong] = float("nan")  # the same atom left out of the loss altogether
    model.zero_grad()
    loss(model(batch), batch).backward()
    # (the robust scale moves a little with one residual fewer, so compare loosely)
    for a, b in zip(with_outlier, [p.grad for p in model.parameters()], strict=True):
        assert torch.allclose(a, b, rtol=0.2, atol=1e-4)
    off, _ = _la_batch(study, eip_forces=False)
    assert torch.isnan(off[FORCES][off[IS_EIP].bool()[off.batch]]).all()  # no EIP force term without eip_forces


def test_force_settings_key_the_stored_results_and_energy_only_grids_stay_current(study):
    exp = study.experiment(0)
    key = split_key(exp)
    energy = replace(study.grid, force_weight=0.0, eip_forces=False)
    forces_dft = replace(study.grid, eip_forces=False)
    spec = RunSpec("schnet", "mp+la", 0)
    assert "force_weight" not in run_inputs(key, energy, spec)  # older folders keep their fingerprints
    assert run_inputs(key, forces_dft, spec) != run_inputs(key, study.grid, spec)
    # a backbone trained on EIP energies only does not depend on the DFT force weight
    assert backbone_inputs(key, energy, "schnet") == backbone_inputs(key, forces_dft, "schnet")
    assert backbone_inputs(key, forces_dft, "schnet") != backbone_inputs(key, study.grid, "schnet")
    for run in ("baseline", "mp"):  # eip_forces reaches an MP run through its backbone's inputs only
        baseline = RunSpec("schnet", run, 0)
        same = run_inputs(key, forces_dft, baseline) == run_inputs(key, study.grid, baseline)
        assert same == (run == "baseline")
    default = Study("si-pyxtal", "quick", models=["schnet"], device="cpu", force_weight=10.0, eip_forces=True)
    assert default.grid_dir.name == "si-pyxtal-quick-fw10-eipf"  # not the energy-only grid's default folder
    with pytest.raises(ValueError, match="eip_forces=True needs force_weight"):
        replace(study.grid, force_weight=0.0)
    with pytest.raises(ValueError, match="SOAP features"):
        GridConfig("si", study.grid.train, {"soapnet": ModelConfig("soapnet", soap={"r_cut": 4.0})}, force_weight=1.0)


def test_grid_with_eip_forces_reports_force_mae(study):
    runs = study.run(["baseline", "mp", "la"], seeds=[0])
    assert runs["test_mae_force"].notna().all() and (runs["eip_forces"]).all()
    table = res.table3(runs)
    assert list(table.columns) == ["Config (eV)", "Atom (eV/atom)", "Force (eV/A)"]
    backbone = next((study.store.root / "pretrain").rglob("run.json"))
    assert json.loads(backbone.read_text())["eip_force_weight"] == study.grid.force_weight
    with pytest.raises(NotImplementedError, match="delta-learning with forces"):
        study.run(["delta"], seeds=[0])


def test_tables_keep_runs_with_and_without_eip_forces_apart(tmp_path):
    from eiplab.workflows import RunStore
    from eiplab.workflows.store import load_records

    def record(tag: str, seed: int, mae: float, eipf: bool | None) -> dict:
        rec = {"model": "schnet", "tag": tag, "strategy": tag, "seed": seed, "test_mae_config": mae,
               "test_mae_atom": mae / 8, "test_mae_force": mae / 3}
        if eipf is not None:  # a force grid's records carry both settings, energy-only ones neither
            rec.update({"force_weight": 10.0, "eip_forces": eipf})
        return rec

    runs = pd.DataFrame([record("baseline", s, 0.50, False) for s in (0, 1)]
                        + [record("baseline", s, 0.50, True) for s in (0, 1)]  # the eipf grid's baseline: no EIPs
                        + [record("mp", s, 0.40, False) for s in (0, 1)]
                        + [record("mp", s, 0.30, True) for s in (0, 1)])
    table = res.table3(runs)
    assert list(table.index) == [("schnet", "baseline"), ("schnet", "mp"), ("schnet", "mp" + res.EIP_FORCES_LABEL)]
    assert table.loc[("schnet", "mp"), "Config (eV)"].startswith("0.4000")  # never averaged with 0.30
    change = res.improvement_table(runs)["change_config_%"]
    assert change[("schnet", "mp" + res.EIP_FORCES_LABEL)] == pytest.approx(-40.0)
    # exported records of both grids sit side by side and read back the same
    for k, part in enumerate((runs.iloc[[0, 1, 4, 5]], runs.iloc[[2, 3, 6, 7]])):
        for _, rec in part.iterrows():
            folder = tmp_path / f"grid{k}" / "runs" / "schnet" / rec["tag"] / f"seed{rec['seed']}"
            folder.mkdir(parents=True)
            (folder / "result.json").write_text(json.dumps(rec.dropna().to_dict()))
        RunStore(tmp_path / f"grid{k}").export(tmp_path / "records")
    names = sorted(p.name for p in (tmp_path / "records").glob("*.json"))
    assert "schnet-mp-eipf-seed0.json" in names and "schnet-mp-seed0.json" in names
    assert "schnet-baseline-eipf-seed0.json" not in names
    again = res.table3(load_records(tmp_path / "records"))
    assert list(again.index) == list(table.index)


def test_tables_refuse_mixed_force_weights_and_survive_no_strategy_rows():
    def record(tag: str, seed: int, fw: float | None, eipf: bool = False) -> dict:
        rec = {"model": "schnet", "tag": tag, "strategy": tag.split("-")[0], "seed": seed, "test_mae_config": 0.4,
               "test_mae_atom": 0.05, "tukey": True, "subset": "all", "group": "all"}
        if fw is not None:
            rec.update({"force_weight": fw, "eip_forces": eipf})
        return rec

    mixed = pd.DataFrame([record("baseline", 0, None), record("baseline", 0, 10.0)])
    with pytest.raises(ValueError, match="different force weights"):
        res.table3(mixed)
    la = pd.DataFrame([record("la", 0, 10.0, False), record("la", 0, 10.0, True), record("la-notukey", 0, 10.0)])
    with pytest.raises(ValueError, match="with and without EIP forces"):
        res.table4(la)
    assert len(res.table3(la.iloc[[0, 1]])) == 2  # Table 3 keeps them apart instead
    only_ablation = pd.DataFrame([record("la-notukey", 0, None)])
    assert res.table3(only_ablation).empty and res.improvement_table(only_ablation).empty


def test_export_refuses_to_replace_a_record_of_other_force_settings(tmp_path):
    from eiplab.workflows import RunStore

    for name, extra in (("energy", {}), ("forces", {"force_weight": 10.0, "eip_forces": False})):
        folder = tmp_path / name / "runs" / "schnet" / "baseline" / "seed0"
        folder.mkdir(parents=True)
        (folder / "result.json").write_text(json.dumps({"model": "schnet", "tag": "baseline", "strategy": "baseline",
                                                        "seed": 0, "test_mae_config": 0.5, **extra}))
    RunStore(tmp_path / "energy").export(tmp_path / "records")
    RunStore(tmp_path / "energy").export(tmp_path / "records")  # the same run again: fine
    with pytest.raises(ValueError, match="force_weight"):
        RunStore(tmp_path / "forces").export(tmp_path / "records")
