"""Per-species energy alignment (SpeciesAligner) and the DFT reference (SpeciesReference)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from ase import Atoms

from eiplab import keys
from eiplab.eips import AlignmentError, SpeciesAligner, SpeciesReference, species_counts


def make_configs(
    rng: np.random.Generator, n: int, symbols: list[str], ratio: float | None = None
) -> list[Atoms]:
    """Configs of 1-12 atoms; ``ratio`` fixes the fraction of symbols[0] (else random)."""
    out = []
    for k in range(n):
        m = int(rng.integers(2, 13)) if ratio is not None else int(rng.integers(1, 13))
        if ratio is None:
            species = [symbols[i] for i in rng.integers(0, len(symbols), m)]
        else:
            m = 2 * (m // 2) or 2
            n0 = int(round(ratio * m))
            species = [symbols[0]] * n0 + [symbols[1]] * (m - n0)
        a = Atoms(species, positions=rng.random((m, 3)) * 5)
        a.info[keys.CONFIG_ID] = f"c{k}"
        out.append(a)
    return out


def synthetic(rng, configs, mu_by_model: dict[str, dict[str, float]], noise=0.01, outliers=0):
    """DFT energies and EIP energies with E_dft - E_k = counts @ mu_k + noise (+ outliers)."""
    symbols = sorted({s for mus in mu_by_model.values() for s in mus})
    counts = species_counts(configs, symbols).to_numpy()
    n = counts.sum(axis=1)
    e_dft = rng.normal(-4.0, 1.0, len(configs)) * n
    eip = {}
    for model, mus in mu_by_model.items():
        mu = np.array([mus[s] for s in symbols])
        e = e_dft - counts @ mu - rng.normal(0, noise, len(configs)) * n
        e[:outliers] -= 30.0 * n[:outliers]  # an EIP failing badly on a few configs
        eip[model] = e
    return e_dft, pd.DataFrame(eip)


def test_recovers_known_offsets_binary_with_outliers():
    rng = np.random.default_rng(0)
    configs = make_configs(rng, 120, ["Ag", "Au"])
    mu = {"eam": {"Ag": -0.9, "Au": -1.7}, "emt": {"Ag": 0.4, "Au": -0.2}}
    e_dft, e_eip = synthetic(rng, configs, mu, noise=0.01, outliers=6)
    aligner = SpeciesAligner().fit(configs, e_dft, e_eip)
    assert list(aligner.offsets_.columns) == ["Ag", "Au"]
    assert list(aligner.offsets_.index) == ["eam", "emt"]
    for model, mus in mu.items():
        for s, value in mus.items():
            assert aligner.offsets_.loc[model, s] == pytest.approx(value, abs=0.01)
    aligned = aligner.transform(configs, e_eip)
    residual = (aligned.to_numpy() - e_dft[:, None])[6:]
    assert np.abs(residual).max() < 0.5
    # Least squares would be dragged by the outliers; Huber is not.
    ls = np.linalg.lstsq(
        species_counts(configs, ["Ag", "Au"]).to_numpy(), e_dft - e_eip["eam"], rcond=None
    )[0]
    assert abs(ls[0] - -0.9) > 0.1


def test_single_species_is_a_one_parameter_fit():
    rng = np.random.default_rng(1)
    configs = make_configs(rng, 50, ["Si"])
    e_dft, e_eip = synthetic(rng, configs, {"sw": {"Si": -0.79}}, noise=0.3, outliers=3)
    aligner = SpeciesAligner().fit(configs, e_dft, e_eip)
    assert aligner.offsets_.shape == (1, 1)
    assert aligner.offsets_.loc["sw", "Si"] == pytest.approx(-0.79, abs=0.15)


def test_reads_energies_from_info_and_nan_stays_nan():
    rng = np.random.default_rng(2)
    configs = make_configs(rng, 30, ["Si"])
    e_dft, e_eip = synthetic(rng, configs, {"a": {"Si": 0.5}, "b": {"Si": -0.3}}, noise=0.0)
    e_eip.loc[3, "a"] = np.nan
    for k, atoms in enumerate(configs):
        atoms.info[keys.ENERGY_DFT] = e_dft[k]
        atoms.info[keys.ENERGY_EIP] = {m: e_eip.loc[k, m] for m in e_eip.columns}
    aligner = SpeciesAligner().fit(configs)
    assert aligner.offsets_.loc["a", "Si"] == pytest.approx(0.5, abs=1e-6)
    assert aligner.n_fit_.to_dict() == {"a": 29, "b": 30}
    out = aligner.transform(configs)
    assert out.index.name == keys.CONFIG_ID and out.index[0] == "c0"
    assert np.isnan(out.loc["c3", "a"]) and np.isfinite(out.loc["c3", "b"])
    np.testing.assert_allclose(out["b"], e_dft, atol=1e-6)


def test_fits_on_the_given_training_configs_only():
    rng = np.random.default_rng(3)
    configs = make_configs(rng, 60, ["Ag", "Au"])
    e_dft, e_eip = synthetic(rng, configs, {"m": {"Ag": -1.0, "Au": 0.5}}, noise=0.05)
    table = e_eip.set_axis([a.info[keys.CONFIG_ID] for a in configs])
    dft = pd.Series(e_dft, index=table.index)
    train = configs[:40]
    first = SpeciesAligner().fit(train, dft, table).offsets_
    dft_changed = dft.copy()
    dft_changed.iloc[40:] += 100.0  # val/test energies changed
    second = SpeciesAligner().fit(train, dft_changed, table).offsets_
    pd.testing.assert_frame_equal(first, second)


def test_rank_deficient_compositions_are_refused():
    rng = np.random.default_rng(4)
    configs = make_configs(rng, 20, ["Ag", "Au"], ratio=0.5)
    e_dft, e_eip = synthetic(rng, configs, {"m": {"Ag": -1.0, "Au": 0.5}})
    with pytest.raises(AlignmentError, match=r"cannot identify per-element offsets.*rank 1 < 2"):
        SpeciesAligner().fit(configs, e_dft, e_eip)
    with pytest.raises(AlignmentError, match="rank"):
        SpeciesReference().fit(configs, e_dft)
    # A species asked for but absent from training.
    si = make_configs(rng, 10, ["Si"])
    with pytest.raises(AlignmentError, match=r"\['Ge'\] never occur"):
        SpeciesAligner(species=["Si", "Ge"]).fit(
            si, np.zeros(10), pd.DataFrame({"m": np.zeros(10)})
        )
    # align="none" needs no identifiable offsets.
    none = SpeciesAligner("none").fit(configs, e_dft, e_eip)
    assert (none.offsets_.to_numpy() == 0).all()
    np.testing.assert_array_equal(none.transform(configs, e_eip).to_numpy(), e_eip.to_numpy())


def test_transform_refuses_unknown_species():
    rng = np.random.default_rng(5)
    configs = make_configs(rng, 10, ["Si"])
    aligner = SpeciesAligner().fit(configs, np.zeros(10), pd.DataFrame({"m": np.ones(10)}))
    other = [Atoms("SiC", positions=[[0, 0, 0], [1.8, 0, 0]])]
    with pytest.raises(ValueError, match=r"\['C'\]"):
        aligner.transform(other, pd.DataFrame({"m": [0.0]}))


def test_dft_reference_least_squares():
    rng = np.random.default_rng(6)
    configs = make_configs(rng, 40, ["Ag", "Au"])
    counts = species_counts(configs, ["Ag", "Au"]).to_numpy()
    e_dft = counts @ np.array([-2.8, -3.3]) + rng.normal(0, 0.01, 40)
    e_dft[5] = np.nan
    ref = SpeciesReference().fit(configs, e_dft)
    assert ref.mu_.to_dict() == pytest.approx({"Ag": -2.8, "Au": -3.3}, abs=0.01)
    pred = ref.predict(configs)
    assert pred.index[0] == "c0"
    np.testing.assert_allclose(pred.to_numpy(), counts @ ref.mu_.to_numpy())
    huber = SpeciesReference("huber").fit(configs, e_dft)
    assert huber.mu_.to_dict() == pytest.approx({"Ag": -2.8, "Au": -3.3}, abs=0.01)


def test_total_weighting_fits_totals_and_differs_from_per_atom_on_mixed_sizes():
    """``weighting="total"`` (totals on counts) and the default per-atom fit agree when every
    config has the same size and differ when a size-dependent error meets mixed sizes."""
    rng = np.random.default_rng(5)
    same = [Atoms("Si4", positions=rng.random((4, 3)) * 5, info={keys.CONFIG_ID: f"s{k}"}) for k in range(40)]
    e_dft = rng.normal(-5.0, 0.3, 40) * 4
    e_eip = pd.DataFrame({"m": e_dft + 0.8 * 4 + rng.normal(0, 0.05, 40)})
    per_atom = SpeciesAligner().fit(same, e_dft, e_eip).offsets_.loc["m", "Si"]
    total = SpeciesAligner(weighting="total").fit(same, e_dft, e_eip).offsets_.loc["m", "Si"]
    assert per_atom == pytest.approx(total, abs=1e-3) and per_atom == pytest.approx(-0.8, abs=0.03)
    mixed = [Atoms(f"Si{n}", positions=rng.random((n, 3)) * 5, info={keys.CONFIG_ID: f"m{k}"})
             for k, n in enumerate([1] * 30 + [16] * 10)]
    n = np.array([len(a) for a in mixed], dtype=float)
    e_dft = -5.0 * n
    e_eip = pd.DataFrame({"m": e_dft + np.where(n == 1, 1.0, 0.5) * n})  # small cells 1 eV/atom off, big 0.5
    per_atom = SpeciesAligner().fit(mixed, e_dft, e_eip).offsets_.loc["m", "Si"]
    total = SpeciesAligner(weighting="total").fit(mixed, e_dft, e_eip).offsets_.loc["m", "Si"]
    assert per_atom == pytest.approx(-1.0, abs=0.05)  # 30 one-atom cells outnumber 10 big ones
    assert total == pytest.approx(-0.5, abs=0.05)  # the 160 atoms of the big cells dominate totals
    with pytest.raises(ValueError, match="weighting"):
        SpeciesAligner(weighting="atoms").fit(mixed, e_dft, e_eip)


def test_a_fit_that_does_not_converge_warns_naming_the_eip(monkeypatch):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import HuberRegressor

    from eiplab.eips import AlignmentWarning

    original = HuberRegressor.fit

    def fit_without_converging(self, x, y):
        import warnings

        warnings.warn("lbfgs failed to converge", ConvergenceWarning, stacklevel=2)
        return original(self, x, y)

    monkeypatch.setattr(HuberRegressor, "fit", fit_without_converging)
    rng = np.random.default_rng(1)
    configs = make_configs(rng, 30, ["Si"])
    e_dft, e_eip = synthetic(rng, configs, {"Tersoff_X": {"Si": 0.5}})
    with pytest.warns(AlignmentWarning, match="EIP Tersoff_X: the Huber fit .* without converging"):
        SpeciesAligner().fit(configs, e_dft, e_eip)
