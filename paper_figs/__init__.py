"""One script per paper figure, each with `plot(frame) -> (fig, axes)` and a shared style.

`FIGURES` maps a figure's file name to (module, which frame it plots): "steps" is the tidy
steps frame of analysis.load; "table" is the run table of analysis.summary.
"""

from __future__ import annotations

FIGURES = {
    "fig1_entropy_trajectories": "steps",
    "fig5_baselines": "steps",
    "fig_ablations": "steps",
    "fig_entropy_vs_accuracy": "table",
    "fig_training_accuracy": "steps",
    "fig_controllers": "steps",
    "fig_control_error": "table",
}


def render_all(steps, table, out_dir) -> dict[str, list]:
    """Write every figure as PNG and PDF under out_dir; returns {name: [paths]}."""
    import importlib

    from paper_figs.style import save

    out = {}
    for name, frame in FIGURES.items():
        mod = importlib.import_module(f"paper_figs.{name}")
        fig, _ = mod.plot(steps if frame == "steps" else table)
        out[name] = save(fig, out_dir, name)
    return out
