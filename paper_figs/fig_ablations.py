"""The ablations: entropy of AEPO, AEPO without temperature adjustment (REINFORCE samples at
T = 1) and AEPO with negatives kept (advantage instead of REINFORCE), one panel per target
where an ablation ran; GRPO as the reference. Means over seeds with 95% bootstrap bands.
"""

from __future__ import annotations

import pandas as pd

from analysis.load import ABLATIONS
from paper_figs import style
from paper_figs.curves import target_panels

NAME = "fig_ablations"
VALUE = "actor/entropy"


def plot(steps: pd.DataFrame):
    """steps: the tidy steps frame (analysis.load). Returns (fig, axes)."""
    targets = sorted(steps.loc[steps["method"].isin(ABLATIONS), "entropy_target"].dropna().unique())
    with style.paper_style():
        fig, axes, _ = target_panels(steps, VALUE, ("grpo",), ("aepo", *ABLATIONS), targets,
                                     "Entropy under the ablations", style.ENTROPY_LABEL)
    return fig, axes
