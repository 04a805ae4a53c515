"""Paper Fig. 1: entropy over training of GRPO and of AEPO at each target H*.

One panel per AEPO target, GRPO repeated in each as the reference, the target drawn as a
dashed grey line. Curves are means over seeds with 95% bootstrap bands.
"""

from __future__ import annotations

import pandas as pd

from paper_figs import style
from paper_figs.curves import target_panels

NAME = "fig1_entropy_trajectories"
VALUE = "actor/entropy"


def plot(steps: pd.DataFrame):
    """steps: the tidy steps frame (analysis.load). Returns (fig, axes)."""
    targets = sorted(steps.loc[steps["method"] == "aepo", "entropy_target"].dropna().unique())
    with style.paper_style():
        fig, axes, _ = target_panels(steps, VALUE, ("grpo",), ("aepo",), targets,
                                     "Entropy of GRPO and AEPO", style.ENTROPY_LABEL)
    return fig, axes
