"""Representation maps (Figures 6-8): embeddings, t-SNE, k-NN smoothness, figure; tiny and fast."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from ase import Atoms
from ase.build import bulk

from eiplab import keys
from eiplab.analysis import representations as rep
from eiplab.data import ConfigSet
from eiplab.models import ModelConfig

TINY = ModelConfig("schnet", cutoff=5.0, width=16, n_layers=1)


def _configs(n: int = 24) -> ConfigSet:
    out = []
    for i in range(n):
        atoms = bulk("Si", "diamond", a=5.2 + 0.02 * i, cubic=i % 2 == 0)
        atoms.rattle(0.05, seed=i)
        atoms.info[keys.CONFIG_ID] = f"c{i:02d}"
        atoms.info[keys.PHASE] = "cubic" if i % 2 == 0 else "primitive"
        atoms.info[keys.ENERGY_DFT] = len(atoms) * (-5.4 + 0.3 * (0.02 * i) ** 2)
        out.append(atoms)
    return ConfigSet(out, name="tiny")


@pytest.fixture(scope="module")
def configs() -> ConfigSet:
    return _configs()


def test_embeddings_shape_deterministic_and_per_atom(configs):
    net = rep.random_network(TINY, seed=0)
    a = rep.embeddings(net, configs, device="cpu", batch_size=5)
    b = rep.embeddings(rep.random_network(TINY, seed=0), configs, device="cpu", batch_size=64)
    assert a.shape == (len(configs), net.representation_module.width) and a.dtype == np.float64
    assert np.isfinite(a).all()
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)  # same seed, any batch size
    other = rep.embeddings(rep.random_network(TINY, seed=1), configs, device="cpu")
    assert not np.allclose(a, other)
    per_atom = rep.embeddings(net, configs, device="cpu", per_atom=True)
    np.testing.assert_allclose(per_atom * configs.n_atoms()[:, None], a, rtol=1e-10)
    assert rep.embeddings(net, [], device="cpu").shape == (0, net.representation_module.width)


def test_embeddings_permutation_invariant(configs):
    net = rep.random_network(TINY)
    atoms = configs[0]
    order = np.random.default_rng(0).permutation(len(atoms))
    shuffled = Atoms(
        atoms.numbers[order], positions=atoms.positions[order], cell=atoms.cell, pbc=atoms.pbc
    )
    e = rep.embeddings(net, [atoms, shuffled], device="cpu")
    np.testing.assert_allclose(e[0], e[1], rtol=1e-4, atol=1e-5)


def test_knn_error_small_for_informative_large_for_random_features():
    rng = np.random.default_rng(0)
    energy = rng.normal(-5.0, 0.3, size=200)
    informative = np.column_stack([energy, np.sin(3 * energy)])  # determines the energy
    noise = rng.normal(size=(200, 8))
    reference = rep.mean_predictor_error(energy)
    good = rep.knn_energy_error(informative, energy, k=5, seed=0)
    bad = rep.knn_energy_error(noise, energy, k=10, seed=0)
    assert good < 0.1 * reference
    assert 0.85 * reference < bad < 1.4 * reference
    assert rep.knn_energy_error(noise, energy, seed=0) == bad  # deterministic


def test_knn_error_clips_k_and_rejects_bad_input():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(10, 3)), rng.normal(size=10)
    assert np.isfinite(rep.knn_energy_error(x, y, k=50, folds=5))  # k clipped to the training fold
    with pytest.raises(ValueError, match="NaN"):
        rep.knn_energy_error(x, np.where(np.arange(10) == 3, np.nan, y))
    with pytest.raises(ValueError, match="at least 2 \\* folds"):
        rep.knn_energy_error(x[:9], y[:9], folds=5)
    with pytest.raises(ValueError, match="energies"):
        rep.knn_energy_error(x, y[:8], folds=2)


def test_tsne_shape_seed_and_tiny_sets():
    x = np.random.default_rng(2).normal(size=(40, 6))
    a, b = rep.tsne_map(x, seed=3, max_iter=250), rep.tsne_map(x, seed=3, max_iter=250)
    assert a.shape == (40, 2) and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)
    assert rep.tsne_map(x[:4], perplexity=30.0, max_iter=250).shape == (4, 2)  # perplexity clipped
    with pytest.raises(ValueError, match="at least 2"):
        rep.tsne_map(x[:1])


def test_maps_summary_and_figure(configs):
    networks = {
        rep.RANDOM_INIT: rep.random_network(TINY, seed=0),
        "other seed": rep.random_network(TINY, seed=5),
    }
    maps, summary = rep.representation_maps(
        networks, configs, model="schnet", device="cpu", perplexity=5.0, k=3
    )
    assert len(maps) == 2 * len(configs)
    assert {
        keys.CONFIG_ID,
        rep.NETWORK,
        rep.TSNE_X,
        rep.TSNE_Y,
        rep.ENERGY_PER_ATOM,
        keys.PHASE,
    } <= set(maps.columns)
    first = maps[maps[rep.NETWORK] == rep.RANDOM_INIT]
    assert first[keys.CONFIG_ID].tolist() == configs.ids
    np.testing.assert_allclose(
        first[rep.ENERGY_PER_ATOM], configs.energies_dft() / configs.n_atoms()
    )
    assert summary[rep.NETWORK].tolist() == [rep.RANDOM_INIT, "other seed", rep.MEAN_PREDICTOR]
    assert (summary[rep.KNN_MAE] > 0).all() and summary[rep.RELATIVE].iloc[-1] == pytest.approx(1.0)
    assert (summary[rep.MODEL] == "schnet").all()

    fig = rep.tsne_figure(maps)
    assert len(fig.data) >= 2  # one panel per network
    hover = {cid for trace in fig.data for cid in np.asarray(trace.customdata)[:, 0]}
    assert hover == set(configs.ids)
    by_phase = rep.tsne_figure(maps, color=keys.PHASE)
    assert {t.legendgroup for t in by_phase.data} == {"cubic", "primitive"}
    with pytest.raises(ValueError, match="colour"):
        rep.tsne_figure(maps, color="nope")


def test_maps_reject_configs_without_dft(configs):
    broken = _configs(12)
    del broken[3].info[keys.ENERGY_DFT]
    with pytest.raises(ValueError, match="NaN"):
        rep.representation_maps(
            {rep.RANDOM_INIT: rep.random_network(TINY)}, broken, device="cpu", k=3, folds=2
        )


def test_configs_to_map_subsets_and_cap(configs):
    class Exp:  # the two fields configs_to_map reads from an Experiment
        pass

    exp = Exp()
    exp.configs = configs
    parts = [keys.POOL] * 12 + [keys.TRAIN] * 6 + [keys.VAL] * 3 + [keys.TEST] * 3
    exp.split = pd.Series(parts, index=configs.ids)
    assert rep.configs_to_map(exp).ids == configs.ids[12:]
    assert rep.configs_to_map(exp, "held-out").ids == configs.ids[18:]
    assert len(rep.configs_to_map(exp, "all")) == len(configs)
    capped = rep.configs_to_map(exp, "all", max_configs=5, seed=1)
    assert len(capped) == 5 and capped.ids == [c for c in configs.ids if c in capped.ids]
    assert capped.ids == rep.configs_to_map(exp, "all", max_configs=5, seed=1).ids
    with pytest.raises(ValueError, match="subset"):
        rep.configs_to_map(exp, "pool")


def test_the_random_network_shares_the_pretrained_input_scaling(configs, tmp_path, monkeypatch):
    """Random init vs MP-pretrained: only the learned weights differ (SOAPNet's fitted feature
    scaling is the pretrained network's)."""
    from eiplab.graphs.soap import SoapSettings, n_soap_features
    from eiplab.training import model_inputs, prepare_for_fit

    monkeypatch.setenv("EIPLAB_CACHE", str(tmp_path))
    soap = SoapSettings(r_cut=4.0, n_max=2, l_max=2, species=(14,))
    config = ModelConfig("soapnet", cutoff=4.0, width=8, n_layers=1, soap=soap.to_dict(), n_features=n_soap_features(soap))
    trained = rep.random_network(config, seed=3)
    prepare_for_fit(trained, model_inputs(list(configs), config, target=None), energy_baseline=False)
    fresh = rep.random_network(config, seed=0, like=trained).representation_module
    assert bool(fresh.input_scaling_fitted)
    np.testing.assert_allclose(fresh.feature_mean.numpy(), trained.representation_module.feature_mean.numpy())
    assert not np.allclose(fresh.net[0].weight.detach().numpy(), trained.representation_module.net[0].weight.detach().numpy())
