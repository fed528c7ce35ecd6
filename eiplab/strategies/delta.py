"""Delta-learning on an EIP: the network learns the correction E_dft - E_eip(aligned).

The prediction is an explicit sum of named terms (all eV, total per configuration)::

    E = species baseline (fitted on TRAIN)  +  E_eip aligned (the EIP, its per-species offsets
        fitted on TRAIN)  +  network correction

Training on the delta target with the ordinary energy recipe gives the same test MAE as the sum
would (the error of the sum is the error of the correction), so delta runs sit in Table 3 next to
the others. Which EIP: the most accurate on the split's TRAIN configs (aligned, per atom) by
default -- never chosen on validation or test data -- or one named. A configuration on which
the EIP failed (NaN) cannot get a delta target: it is an error naming the configs, never a
silent fallback.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from ase import Atoms

from .. import keys
from .experiment import Experiment
from .subsets import rank_eips

#: ``info`` key on a delta-target copy: the EIP whose (aligned) energy was subtracted.
DELTA_EIP = "delta_eip"
#: The named terms of a delta prediction (columns of :func:`delta_breakdown`).
TERMS = ("species_baseline", "eip_aligned", "network", "total")


def delta_eip(exp: Experiment, name: str | None = None) -> str:
    """The EIP a delta run subtracts: ``name`` (a KIM id of the experiment), else the most
    accurate one on TRAIN (:func:`eiplab.strategies.rank_eips`)."""
    if name is None:
        return rank_eips(exp)[0]
    if name not in exp.model_ids:
        raise ValueError(f"delta EIP {name!r} is not one of this experiment's EIPs: {exp.model_ids}")
    return name


def delta_configs(exp: Experiment, part: str, eip: str) -> list[Atoms]:
    """Copies of part ``part``'s configs whose DFT energy is replaced by the delta target
    E_dft - E_eip(aligned) (eV, total), with ``info[DELTA_EIP]`` set.

    Raises:
        ValueError: the EIP has no finite energy on some of the configs (named).
    """
    configs = exp.parts[part]
    eip_energy = exp.aligned_for(part)[eip].to_numpy(dtype=float)
    failed = [a.info[keys.CONFIG_ID] for a, e in zip(configs, eip_energy, strict=True) if not np.isfinite(e)]
    if failed:
        raise ValueError(f"EIP {eip} has no energy on {len(failed)} {part} config(s) ({', '.join(failed[:5])}"
                         f"{' ...' if len(failed) > 5 else ''}): delta-learning needs it on every config; name "
                         "another EIP or remove these configs")
    out = []
    for atoms, e in zip(configs, eip_energy, strict=True):
        copy = atoms.copy()
        copy.info[keys.ENERGY_DFT] = float(atoms.info[keys.ENERGY_DFT]) - float(e)
        copy.info[DELTA_EIP] = eip
        out.append(copy)
    return out


def delta_parts(exp: Experiment, eip: str, parts: Sequence[str] = (keys.TRAIN, keys.VAL, keys.TEST)) -> dict[str, list[Atoms]]:
    """:func:`delta_configs` of each DFT-labelled part."""
    return {part: delta_configs(exp, part, eip) for part in parts}


def delta_breakdown(exp: Experiment, part: str, eip: str, network_total: np.ndarray,
                    species_baseline: np.ndarray) -> pd.DataFrame:
    """The named terms of a delta prediction for part ``part`` (index config_id; eV):
    ``network_total`` is the trained model's output on the delta-target copies (its species
    baseline included), ``species_baseline`` that baseline alone, both [n_configs]."""
    eip_energy = exp.aligned_for(part)[eip].to_numpy(dtype=float)
    table = pd.DataFrame({"species_baseline": species_baseline, "eip_aligned": eip_energy,
                          "network": np.asarray(network_total) - np.asarray(species_baseline)},
                         index=pd.Index(exp.parts[part].ids, name=keys.CONFIG_ID))
    table["total"] = table["species_baseline"] + table["eip_aligned"] + table["network"]
    return table
