"""One label-augmentation run for a hand-picked EIP set and alpha (the notebook's explorer)."""

from __future__ import annotations

from collections.abc import Sequence

from .. import keys
from ..models import ModelConfig
from ..training import TrainSettings
from .augment import fit_augmented
from .classifier import select_pool, train_classifier
from .experiment import Experiment
from .labels import DEFAULT_TAU
from .subsets import restrict


def la_with_choice(
    exp: Experiment,
    config: ModelConfig,
    settings: TrainSettings,
    eip_ids: Sequence[str],
    alpha: float,
    *,
    tukey: bool = True,
    tau: float = DEFAULT_TAU,
) -> dict:
    """Train the classifier on ``eip_ids``, select pool configs, fit LA with ``alpha``.

    Returns a dict: val/test MAE (eV, eV/atom), classifier accuracy, selected configs, the
    effective weight alpha * N_dft / N_aug and the EIP each selected config was labelled with.
    """
    if not eip_ids:
        raise ValueError("pick at least one EIP")
    sub = restrict(exp, list(eip_ids))
    clf = train_classifier(sub, config, settings, tau=tau)
    selection = select_pool(clf.model, sub, device=settings.device)
    fit, info = fit_augmented(sub, selection, config, settings, alpha=alpha, tukey=tukey)
    chosen = selection[selection["selected"]]["model_id"].value_counts()
    return {
        **info,
        "classifier_val_accuracy": clf.val_accuracy,
        "n_selected": int(selection["selected"].sum()),
        "picked_per_eip": chosen.to_dict(),
        "val_" + keys.MAE_CONFIG: float(fit.record["metrics"]["val_" + keys.MAE_CONFIG]),
        **fit.test_metrics,
    }
