"""Every fit of a network prepares it in one place (``prepare_for_fit``): a fine-tuned backbone
keeps every fitted quantity of the pretrained network (the input scaling) while the energy
baseline is refitted on DFT; the LA classifier's SOAPNet sees scaled inputs; the training loop
refuses a network that skipped the preparation."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from tiny_si import FAST_SI_EIPS, TINY_NET

from eiplab import keys
from eiplab.data import load_dataset, paper_splits
from eiplab.graphs import make_loader
from eiplab.graphs.build import X
from eiplab.models import REGISTRY, build_model, load_model
from eiplab.strategies.classifier import train_classifier
from eiplab.strategies.experiment import prepare_experiment
from eiplab.strategies.pretrain import for_finetuning, pretrain
from eiplab.training import BEST_MODEL_FILE, fit_energy_model, model_inputs, prepare_for_fit, train
from eiplab.training import energy as energy_module
from eiplab.training.evaluate import energy_mse
from eiplab.workflows import grid_from_profile

pytest.importorskip("kimpy")
pytestmark = pytest.mark.kim

EIPS = FAST_SI_EIPS
TINY = TINY_NET
SI = 14


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("EIPLAB_CACHE", str(cache))  # SOAP features of this module's configs
    configs = load_dataset("si-pyxtal", limit=100, seed=5)
    exp = prepare_experiment(configs, paper_splits(configs, seeds=(0,))[0], EIPS, cache=cache, progress=False)
    grid = grid_from_profile("quick", configs, models=list(REGISTRY), **TINY)
    grid.train = replace(grid.train, epochs=1, progress=False)
    yield exp, grid
    mp.undo()


class _Stop(Exception):
    pass


@pytest.mark.parametrize("name", list(REGISTRY))
def test_finetuning_keeps_every_fitted_quantity_of_the_backbone(name, setting, tmp_path, monkeypatch):
    """After ``fit_energy_model`` has prepared the fine-tuned network (the state the first
    training step sees), its representation -- weights and buffers, SOAPNet's input scaling
    included -- is the pretrained one, and only the energy baseline was fitted (on DFT)."""
    exp, grid = setting
    result = pretrain(exp.parts[keys.POOL], exp.aligned, EIPS, grid.model_configs[name], grid.train, out_dir=tmp_path)
    pretrained = {k: v.detach().cpu().clone() for k, v in result.model.representation_module.state_dict().items()}
    tuned = for_finetuning(load_model(tmp_path / BEST_MODEL_FILE), seed=0)
    seen = {}

    def first_step(model, *args, **kwargs):
        seen["representation"] = {k: v.detach().cpu().clone() for k, v in model.representation_module.state_dict().items()}
        seen["baseline"] = model.baseline.detach().cpu().clone()
        raise _Stop

    monkeypatch.setattr(energy_module, "train", first_step)
    with pytest.raises(_Stop):
        fit_energy_model(exp.parts[keys.TRAIN], exp.parts[keys.VAL], model=tuned, settings=grid.train)
    assert set(seen["representation"]) == set(pretrained)
    for key, value in pretrained.items():
        torch.testing.assert_close(seen["representation"][key], value, msg=f"{name}: {key} changed before fine-tuning")
    assert seen["baseline"][SI] < -1.0  # the per-species energy baseline is fitted on DFT (eV/atom)
    assert float(result.model.baseline.abs().sum()) == 0.0  # pretraining targets carry none


def test_the_soapnet_classifier_sees_scaled_inputs(setting):
    exp, grid = setting
    clf = train_classifier(exp, grid.model_configs["soapnet"], grid.train)
    representation = clf.model.representation_module
    assert bool(representation.input_scaling_fitted)
    graphs = model_inputs(exp.parts[keys.TRAIN], grid.model_configs["soapnet"], target=None)
    x = torch.cat([g[X] for g in graphs]).to(representation.feature_mean.dtype)
    torch.testing.assert_close(representation.feature_mean.cpu(), x.mean(0))  # fitted on its TRAIN graphs


def test_training_refuses_a_network_that_skipped_preparation(setting):
    exp, grid = setting
    config = grid.model_configs["soapnet"]
    graphs = model_inputs(exp.parts[keys.TRAIN], config)
    model = build_model(config)
    with pytest.raises(ValueError, match="soapnet: the network's input scaling is not fitted; call .*prepare_for_fit"):
        train(model, make_loader(graphs, 8, shuffle=True), None, energy_mse, grid.train)
    prepare_for_fit(model, graphs, energy_baseline=True)
    train(model, make_loader(graphs, 8, shuffle=True), None, energy_mse, grid.train)  # prepared: trains
    assert np.isfinite(model.baseline[SI].item())
