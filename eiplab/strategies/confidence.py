"""Confidence groups of the LA-selected pool configs (Table 5, METHOD.md).

The classifier's confidence of a selected config is the softmax probability of its chosen EIP.
Below the 0.33 quantile (over the selected configs) is "low", above the 0.66 quantile "high",
the rest "medium".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CONFIDENCE_GROUPS = ("low", "medium", "high")
DEFAULT_QUANTILES = (0.33, 0.66)


def confidence_groups(selection: pd.DataFrame, quantiles: tuple[float, float] = DEFAULT_QUANTILES) -> pd.Series:
    """Group name of every SELECTED config (index config_id), from its ``confidence`` column.

    Raises:
        ValueError: no config is selected, or the quantiles are not 0 < low < high < 1.
    """
    lo_q, hi_q = quantiles
    if not 0.0 < lo_q < hi_q < 1.0:
        raise ValueError(f"confidence quantiles must satisfy 0 < low < high < 1, got {quantiles}")
    chosen = selection.loc[selection["selected"].astype(bool), "confidence"]
    if chosen.empty:
        raise ValueError("the classifier selected no pool config: there are no confidence groups to form")
    lo, hi = np.quantile(chosen.to_numpy(), [lo_q, hi_q])
    group = np.where(chosen < lo, "low", np.where(chosen > hi, "high", "medium"))
    return pd.Series(group, index=chosen.index, name="confidence_group")
