"""Every figure script returns (fig, axes) on synthetic frames, and copes with missing methods."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest

from analysis.claims import THRESHOLDS
from analysis.load import frames
from analysis.summary import run_table
from analysis.synthetic import synthetic_run, synthetic_study
from paper_figs import (fig1_entropy_trajectories, fig5_baselines, fig_ablations, fig_entropy_vs_accuracy,
                        fig_training_accuracy, style)


@pytest.fixture(scope="module")
def study():
    f = frames(synthetic_study(targets=(0.25, 0.5, 1.0), seeds=2, steps=20))
    return f, run_table(f, THRESHOLDS)


def test_fig1_draws_one_panel_per_target_with_its_target_line(study):
    f, _ = study
    fig, axes = fig1_entropy_trajectories.plot(f.steps)
    assert axes.size == 3
    for ax, t in zip(axes.flat, (0.25, 0.5, 1.0)):
        dashed = [l for l in ax.lines if l.get_linestyle() not in ("-", "None")]
        assert any(l.get_ydata()[0] == t for l in dashed)  # the target, drawn dashed
        assert ax.get_ylabel() in ("", style.ENTROPY_LABEL)
    plt.close(fig)


def test_each_method_keeps_its_one_colour_across_figures(study):
    f, _ = study
    fig, axes = fig5_baselines.plot(f.steps)
    assert axes.size == 3  # one panel per AEPO target
    for ax in axes.flat:
        colours = {l.get_label(): l.get_color() for l in ax.lines}
        assert colours["GRPO"] == style.METHOD_COLORS["grpo"]
        assert colours["Entropy-Reg"] == style.METHOD_COLORS["entropy_reg"]
        assert colours["AEPO"] == style.METHOD_COLORS["aepo"]
    plt.close(fig)


def test_accuracy_against_entropy_marks_the_fitted_peak(study):
    _, table = study
    fig, axes = fig_entropy_vs_accuracy.plot(table)
    assert axes.shape == (2, 3)  # (final, best) x (greedy, pass@1, pass@k)
    # the synthetic accuracy peaks at H = 0.6; seed noise moves the fitted vertex a little
    title = axes[0, 0].get_title()
    assert "fitted peak at H = " in title
    assert float(title.rsplit("= ", 1)[1]) == pytest.approx(0.6, abs=0.05)
    plt.close(fig)


@pytest.mark.parametrize("module", [fig1_entropy_trajectories, fig5_baselines, fig_ablations,
                                    fig_training_accuracy])
def test_step_figures_survive_a_sweep_with_grpo_only(module):
    f = frames([synthetic_run("grpo", 0, steps=10), synthetic_run("grpo", 1, steps=10)])
    fig, _ = module.plot(f.steps)
    plt.close(fig)


def test_accuracy_figure_says_so_when_there_are_too_few_targets():
    f = frames([synthetic_run("aepo", s, 0.5, steps=10) for s in range(2)])
    fig, axes = fig_entropy_vs_accuracy.plot(run_table(f, THRESHOLDS))
    assert "fewer than 3 AEPO targets" in axes[0, 0].get_title()
    plt.close(fig)


def test_latex_is_off_and_the_palette_is_fixed():
    with style.paper_style():
        assert not matplotlib.rcParams["text.usetex"]
    assert len(set(style.METHOD_COLORS.values())) == len(style.METHOD_COLORS)
