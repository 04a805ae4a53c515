"""Paper Fig. 5: entropy of AEPO against GRPO, Entropy-Reg and Entropy-Adv.

One panel per AEPO target (the baselines have no target and repeat in every panel), so that
each method keeps its one colour and no panel holds more than four curves. Means over seeds
with 95% bootstrap bands; the target as a dashed grey line.
"""

from __future__ import annotations

import pandas as pd

from analysis.load import BASELINES
from paper_figs import style
from paper_figs.curves import target_panels

NAME = "fig5_baselines"
VALUE = "actor/entropy"


def plot(steps: pd.DataFrame):
    """steps: the tidy steps frame (analysis.load). Returns (fig, axes)."""
    targets = sorted(steps.loc[steps["method"] == "aepo", "entropy_target"].dropna().unique())
    with style.paper_style():
        fig, axes, _ = target_panels(steps, VALUE, BASELINES, ("aepo",), targets,
                                     "Entropy: AEPO against GRPO, Entropy-Reg and Entropy-Adv",
                                     style.ENTROPY_LABEL)
    return fig, axes
