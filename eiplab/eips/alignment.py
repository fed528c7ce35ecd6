"""Energy alignment: per-species offsets between EIP (cohesive) and DFT (total) energy zeros.

For EIP k the aligned energy is ``E_k(C) + sum_s n_s(C) mu_{k,s}``, with offsets ``mu_{k,s}``
(eV/atom) fitted on the DFT-labelled TRAINING configurations only (METHOD.md).

Fit (decision, documented in docs/METHOD.md): the per-atom residual ``(E_dft - E_k) / N`` is
regressed on the composition fractions ``n_s / N`` with scikit-learn's
:class:`~sklearn.linear_model.HuberRegressor` (``fit_intercept=False``, ``alpha=0``: no
shrinkage of the offsets) -- ``weighting="per-atom"``, the default. Per atom, because the
errors that matter downstream (atom-level MAE, the LA threshold tau) are per atom and a
16-atom cell must not outweigh a 1-atom cell 16-fold; Huber, because a few configs where an
EIP fails badly (errors of tens of eV/atom) would drag least squares. HuberRegressor estimates
the residual scale jointly, so ``epsilon=1.35`` (95% efficiency for Gaussian residuals) is
meaningful whatever the size of the residuals (0.1-1 eV/atom here). With one species the
design is a column of ones and the fit is a robust (Huber) location estimate of the per-atom
residual. ``weighting="total"`` is the fit the method text first named: the total residual
``E_dft - E_k`` on the species counts ``n_s`` (same Huber loss), which weights each config by
its size. ``scripts/compare_alignment.py`` measures how much the two differ
(``reports/alignment-weighting/``).

A Huber fit that stops before converging warns (:class:`AlignmentWarning`, naming the EIP);
it is never silent.

The DFT baseline (:class:`SpeciesReference`, subtracted from NN targets) defaults to ordinary
least squares on totals, ``E_dft ~ sum_s n_s mu_s``, the usual isolated-atom-reference fit;
``method="huber"`` gives the per-atom robust fit above.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from ase import Atoms

from .energies import config_ids, dataset_species, dft_energies, eip_energies, species_counts
from .errors import AlignmentError, AlignmentWarning

Align = Literal["none", "species"]
Weighting = Literal["per-atom", "total"]
WEIGHTINGS = ("per-atom", "total")
HUBER_MAX_ITER = 1000


def _check_identifiable(counts: np.ndarray, species: Sequence[str], what: str) -> None:
    """Raise AlignmentError when the composition matrix cannot identify per-species offsets."""
    n, s = counts.shape
    if n < s:
        raise AlignmentError(
            f"{what}: {n} training configs cannot fit {s} per-species offsets {list(species)}"
        )
    rank = np.linalg.matrix_rank(counts.astype(float))
    if rank < s:
        fractions = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        ratios = np.unique(np.round(fractions, 6), axis=0)
        absent = [sp for sp, c in zip(species, counts.sum(axis=0), strict=True) if c == 0]
        why = (
            f"species {absent} never occur in them"
            if absent
            else f"they hold only {len(ratios)} distinct composition(s), e.g. fractions "
            f"{dict(zip(species, ratios[0].round(3).tolist(), strict=True))}"
        )
        raise AlignmentError(
            f"{what}: the training compositions cannot identify per-element offsets for "
            f"{list(species)} (species-count matrix has rank {rank} < {s}; {why}). Add training "
            "configs with other compositions, or use align='none'."
        )


def fit_offsets(
    counts: np.ndarray,
    residual: np.ndarray,
    *,
    method: Literal["huber", "lstsq"] = "huber",
    epsilon: float = 1.35,
    weighting: Weighting = "per-atom",
    species: Sequence[str] = (),
    what: str = "offsets",
    max_iter: int = HUBER_MAX_ITER,
) -> np.ndarray:
    """Per-species offsets mu (eV/atom) with ``residual ~ counts @ mu``.

    Args:
        counts: [n_configs, n_species] atom counts.
        residual: [n_configs] eV total; non-finite entries are left out.
        method: ``"huber"``: robust fit (see module docstring); ``"lstsq"``: least squares on
            totals.
        epsilon: Huber threshold in units of the estimated residual scale.
        weighting: Huber fit of per-atom residuals on composition fractions (``"per-atom"``) or
            of total residuals on species counts (``"total"``).
        species, what: used in error and warning messages.
        max_iter: iterations of the Huber fit; stopping short of convergence warns.

    Raises:
        AlignmentError: the (finite) training compositions cannot identify the offsets.

    Warns:
        AlignmentWarning: the Huber fit did not converge (the message names ``what``).
    """
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, not {weighting!r}")
    counts = np.asarray(counts, dtype=float)
    residual = np.asarray(residual, dtype=float)
    ok = np.isfinite(residual) & (counts.sum(axis=1) > 0)
    counts, residual = counts[ok], residual[ok]
    _check_identifiable(counts, species or [f"#{k}" for k in range(counts.shape[1])], what)
    if method == "lstsq":
        mu, *_ = np.linalg.lstsq(counts, residual, rcond=None)
        return mu
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import HuberRegressor

    n = counts.sum(axis=1)
    x, y = (counts / n[:, None], residual / n) if weighting == "per-atom" else (counts, residual)
    huber = HuberRegressor(epsilon=epsilon, alpha=0.0, fit_intercept=False, max_iter=max_iter)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        huber.fit(x, y)
    for warning in caught:
        if issubclass(warning.category, ConvergenceWarning):
            warnings.warn(AlignmentWarning(
                f"{what}: the Huber fit of the per-species offsets stopped after {max_iter} iterations without "
                f"converging ({len(y)} configs, {weighting} weighting); its offsets may be off -- look at this "
                "EIP's residuals (huge failures, too few configs)"), stacklevel=2)
        else:  # any other warning of the fit is passed on as it was
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return np.asarray(huber.coef_, dtype=float)


class SpeciesAligner:
    """Per-EIP, per-species energy offsets fitted on training configs (scikit-learn style).

    Args:
        method: ``"species"`` (default): fit offsets as in the module docstring; ``"none"``:
            all offsets zero (raw totals, the paper's comparison).
        epsilon: Huber threshold (units of the estimated residual scale).
        weighting: ``"per-atom"`` (default) or ``"total"`` residuals (module docstring).
        species: element symbols to fit; default: those in the training configs.

    Fitted attributes:
        offsets_: DataFrame [model x species], eV/atom.
        species_: list of element symbols (columns of ``offsets_``).
        n_fit_: Series per model, configs used (finite DFT and EIP energies).
    """

    def __init__(
        self,
        method: Align = "species",
        *,
        epsilon: float = 1.35,
        weighting: Weighting = "per-atom",
        species: Sequence[str] | None = None,
    ):
        self.method = method
        self.epsilon = epsilon
        self.weighting = weighting
        self.species = species

    def fit(
        self,
        configs: Sequence[Atoms],
        energies_dft: Sequence[float] | pd.Series | None = None,
        energies_eip: pd.DataFrame | None = None,
    ) -> SpeciesAligner:
        """Fit on TRAINING configs only.

        Args:
            configs: the training configurations.
            energies_dft: [n] eV total; default ``info[keys.ENERGY_DFT]``.
            energies_eip: [n x models] eV total (columns = model ids); default
                ``info[keys.ENERGY_EIP]``. NaN entries are left out of that model's fit.
        """
        if self.method not in ("none", "species"):
            raise ValueError(f"method must be 'none' or 'species', not {self.method!r}")
        e_dft = _as_array(energies_dft, configs)
        e_eip = _as_frame(energies_eip, configs)
        self.species_ = list(self.species) if self.species is not None else dataset_species(configs)
        counts = species_counts(configs, self.species_).to_numpy()
        offsets = np.zeros((e_eip.shape[1], len(self.species_)))
        n_fit = []
        for k, model in enumerate(e_eip.columns):
            residual = e_dft - e_eip[model].to_numpy()
            n_fit.append(int(np.isfinite(residual).sum()))
            if self.method == "species":
                offsets[k] = fit_offsets(
                    counts,
                    residual,
                    epsilon=self.epsilon,
                    weighting=self.weighting,
                    species=self.species_,
                    what=f"EIP {model}",
                )
        self.offsets_ = pd.DataFrame(
            offsets, index=pd.Index(e_eip.columns, name="model_id"), columns=self.species_
        )
        self.n_fit_ = pd.Series(n_fit, index=self.offsets_.index, name="n_fit")
        return self

    def transform(
        self, configs: Sequence[Atoms], energies_eip: pd.DataFrame | None = None
    ) -> pd.DataFrame:
        """Aligned EIP energies ``E_k + counts @ mu_k`` (eV total; NaN stays NaN).

        ``energies_eip`` defaults to ``info[keys.ENERGY_EIP]``; its columns must be fitted models.
        """
        if not hasattr(self, "offsets_"):
            raise AttributeError("SpeciesAligner is not fitted; call fit() first")
        e_eip = _as_frame(energies_eip, configs, list(self.offsets_.index))
        if self.method == "none":
            return e_eip.copy()
        unknown = [m for m in e_eip.columns if m not in self.offsets_.index]
        if unknown:
            raise KeyError(f"no fitted offsets for models {unknown}")
        counts = species_counts(configs, self.species_).to_numpy()
        shift = counts @ self.offsets_.loc[list(e_eip.columns)].to_numpy().T
        return pd.DataFrame(e_eip.to_numpy() + shift, index=e_eip.index, columns=e_eip.columns)

    def fit_transform(
        self,
        configs: Sequence[Atoms],
        energies_dft: Sequence[float] | pd.Series | None = None,
        energies_eip: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """``fit`` then ``transform`` on the same configs."""
        return self.fit(configs, energies_dft, energies_eip).transform(configs, energies_eip)


class SpeciesReference:
    """Per-species linear DFT reference ``E_ref(C) = sum_s n_s mu_s`` fitted on training configs.

    Used as a baseline subtracted from NN targets (and added back at prediction).

    Args:
        method: ``"lstsq"`` (default): least squares on totals; ``"huber"``: robust per-atom
            fit (see the module docstring).
        species: element symbols; default: those in the training configs.

    Fitted attributes:
        mu_: Series per species, eV/atom.
    """

    def __init__(
        self, method: Literal["lstsq", "huber"] = "lstsq", *, species: Sequence[str] | None = None
    ):
        self.method = method
        self.species = species

    def fit(
        self, configs: Sequence[Atoms], energies_dft: Sequence[float] | pd.Series | None = None
    ) -> SpeciesReference:
        """Fit on TRAINING configs; ``energies_dft`` defaults to ``info[keys.ENERGY_DFT]`` (NaN left out)."""
        e_dft = _as_array(energies_dft, configs)
        species = list(self.species) if self.species is not None else dataset_species(configs)
        counts = species_counts(configs, species).to_numpy()
        mu = fit_offsets(counts, e_dft, method=self.method, species=species, what="DFT reference")
        self.mu_ = pd.Series(mu, index=pd.Index(species, name="species"), name="mu_eV_per_atom")
        return self

    def predict(self, configs: Sequence[Atoms]) -> pd.Series:
        """Reference energy per config, eV total."""
        if not hasattr(self, "mu_"):
            raise AttributeError("SpeciesReference is not fitted; call fit() first")
        counts = species_counts(configs, list(self.mu_.index)).to_numpy()
        return pd.Series(
            counts @ self.mu_.to_numpy(), index=config_ids(configs), name="energy_reference"
        )


def _align_rows(values: pd.Series | pd.DataFrame, ids: pd.Index) -> pd.Series | pd.DataFrame:
    """Rows of ``values`` for ``ids``: by label when its index holds every id (so a table of the
    whole dataset can be passed with the training configs), else by position."""
    if values.index.is_unique and ids.isin(values.index).all():
        return values.reindex(ids)
    if len(values) != len(ids):
        raise ValueError(
            f"expected {len(ids)} rows of energies (or an index holding every config id), got {len(values)}"
        )
    out = values.copy()
    out.index = ids
    return out


def _as_array(values: Sequence[float] | pd.Series | None, configs: Sequence[Atoms]) -> np.ndarray:
    if values is None:
        return dft_energies(configs).to_numpy()
    if not isinstance(values, pd.Series):
        values = pd.Series(np.asarray(values, dtype=float))
    return _align_rows(values.astype(float), config_ids(configs)).to_numpy()


def _as_frame(
    values: pd.DataFrame | None, configs: Sequence[Atoms], models: list[str] | None = None
) -> pd.DataFrame:
    if values is None:
        return eip_energies(configs, models)
    return _align_rows(pd.DataFrame(values).astype(float), config_ids(configs))
