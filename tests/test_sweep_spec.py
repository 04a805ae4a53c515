"""Sweep files: grid expansion, run ids, and one-line rejection of malformed files."""

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from aepo.cli import app
from aepo.sweep.spec import AXES, SweepError, load_sweep, run_id_for

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


def write(tmp_path: Path, spec: dict, name: str = "s.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(spec))
    return p


GRID = {
    "name": "t",
    "base": {"steps": 7, "algo": {"t_high": 1.3}},
    "axes": {"alpha": [0.06, 0.12], "entropy_target": [0.3, 0.5, 0.7], "seed": [0, 1]},
    "baselines": ["grpo", "entropy_reg"],
}


def test_grid_expands_to_every_point_plus_baselines_once_per_seed(tmp_path):
    sweep = load_sweep(write(tmp_path, GRID), tmp_path / "out")
    grid = [r for r in sweep.runs if not r.baseline]
    base = [r for r in sweep.runs if r.baseline]
    assert len(grid) == 3 * 2 * 2 and len(base) == 2 * 2
    assert {(r.point["entropy_target"], r.point["alpha"], r.point["seed"]) for r in grid} == {
        (h, a, s) for h in (0.3, 0.5, 0.7) for a in (0.06, 0.12) for s in (0, 1)}
    assert sorted(r.run_id for r in base) == ["entropy_reg__s0", "entropy_reg__s1", "grpo__s0", "grpo__s1"]


def test_axis_values_land_in_the_run_config_and_the_base_is_inherited(tmp_path):
    sweep = load_sweep(write(tmp_path, GRID), tmp_path / "out")
    run = sweep.run("aepo__H0.5__a0.12__s1")
    cfg = run.config
    assert (cfg.algo.entropy_target, cfg.algo.alpha, cfg.seed) == (0.5, 0.12, 1)
    assert cfg.algo.method == "aepo" and cfg.steps == 7 and cfg.algo.t_high == 1.3
    assert Path(cfg.out) == tmp_path / "out" / "runs" / "aepo__H0.5__a0.12__s1"
    assert cfg.wandb_group == "t"  # all runs of a sweep in one W&B group
    grpo = sweep.run("grpo__s1").config
    assert grpo.algo.method == "grpo" and grpo.seed == 1 and grpo.steps == 7


def test_run_ids_follow_the_axis_table_not_the_file_order():
    # tags in AXES order, seed last; floats in their shortest round-trip form
    assert run_id_for("aepo", {"seed": 0, "alpha": 0.02, "entropy_target": 0.5}) == "aepo__H0.5__a0.02__s0"
    assert run_id_for("aepo", {"t_high": 1.2, "entropy_target": 1.0, "seed": 3}) == "aepo__H1.0__th1.2__s3"
    assert run_id_for("aepo", {"lr": 1e-06, "seed": 0}) == "aepo__lr1e-06__s0"
    assert list(AXES)[-1] == "seed"


def test_other_knobs_such_as_t_high_are_axes_too(tmp_path):
    spec = {"axes": {"entropy_target": [0.5], "t_high": [1.2, 1.5]}}
    sweep = load_sweep(write(tmp_path, spec), tmp_path / "out")
    assert [r.config.algo.t_high for r in sweep.runs] == [1.2, 1.5]
    assert sweep.run_ids == ["aepo__H0.5__th1.2__s0", "aepo__H0.5__th1.5__s0"]


def test_base_may_be_a_path_relative_to_the_sweep_file(tmp_path):
    (tmp_path / "base.yaml").write_text("steps: 11\nrollout: {group_size: 4}\n")
    sweep = load_sweep(write(tmp_path, {"base": "base.yaml", "axes": {"alpha": [0.1]}}), tmp_path / "out")
    assert sweep.runs[0].config.steps == 11 and sweep.runs[0].config.rollout.group_size == 4


@pytest.mark.parametrize("spec, message", [
    ({"axes": {"temperature": [1.0]}}, "unknown axis 'temperature'"),
    ({"axes": {"alpha": []}}, "axis 'alpha' is empty"),
    ({"axes": {"alpha": ["high"]}}, "must be a number, got 'high'"),
    ({"axes": {"alpha": [0.1, 0.1]}}, "repeats a value"),
    ({"axes": {"entropy_target": [-0.5]}}, "entropy target H must be >= 0"),
    ({"axes": {"seed": [0.5]}}, "must be an integer"),
    ({"axes": {"alpha": [[0.1]]}}, "must be a number, got [0.1]"),
    ({"axis": {"alpha": [0.1]}}, "unknown key 'axis'"),
    ({"baselines": ["ppo"]}, "unknown baseline 'ppo'"),
    ({"base": {"algo": {"tau": 1}}}, "unknown config key 'algo.tau'"),
])
def test_malformed_sweep_file_is_rejected_with_one_line(tmp_path, spec, message):
    with pytest.raises(SweepError) as e:
        load_sweep(write(tmp_path, spec), tmp_path / "out")
    assert message in str(e.value) and "\n" not in str(e.value)


def test_cli_rejects_a_malformed_sweep_before_anything_runs(tmp_path):
    cfg = write(tmp_path, {"axes": {"entropy_target": [0.5], "beta": [1]}})
    out = tmp_path / "sweep"
    res = runner.invoke(app, ["sweep", "entropy-targets", "--config", str(cfg), "--out", str(out), "--wandb", "off"])
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "unknown axis 'beta'" in lines[0]
    assert not out.exists()


@pytest.mark.parametrize("name, n_runs", [("smoke", 7), ("ci", 7), ("paper", 9)])
def test_shipped_sweep_files_pass_a_dry_run(tmp_path, name, n_runs):
    out = tmp_path / name
    res = runner.invoke(app, ["sweep", "entropy-targets", "--config", str(REPO / "sweeps" / f"{name}.yaml"),
                              "--out", str(out), "--dry-run"])
    assert res.exit_code == 0, res.output
    assert f"{n_runs} runs:" in res.output
    assert not out.exists()  # a dry run writes nothing


def test_paper_sweep_has_the_papers_targets_and_baselines(tmp_path):
    sweep = load_sweep(REPO / "sweeps" / "paper.yaml", tmp_path)
    assert sweep.axes["entropy_target"] == [0.25, 0.5, 0.75, 1.0]
    assert set(sweep.baselines) == {"grpo", "entropy_reg", "entropy_adv", "aepo_no_temp", "aepo_with_negatives"}
    cfg = sweep.runs[0].config
    assert cfg.model.name_or_path == "Qwen/Qwen2.5-Math-7B" and cfg.backend == "verl"
    assert (cfg.rollout.group_size, cfg.rollout.prompts_per_step, cfg.rollout.max_new_tokens) == (5, 512, 2048)
    assert (cfg.optim.lr, cfg.optim.clip_eps, cfg.algo.t_high, cfg.algo.t_low) == (1e-6, 0.2, 1.2, 0.8)
    assert cfg.algo.alpha == pytest.approx(60 / 2560)


def test_extra_points_are_crossed_with_the_axes_they_leave_free(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text("method: entrocraft\naxes: {entropy_target: [0.3, 0.5], start: [tiny, tiny-weak], seed: [0, 1]}\n"
                    "points:\n  - {entropy_target: 0.65, target_schedule: linear, target_end: 0.45}\n")
    sweep = load_sweep(spec, tmp_path / "out")
    annealed = [r for r in sweep.runs if r.point.get("target_schedule") == "linear"]
    assert len(sweep.runs) == 2 * 2 * 2 + 2 * 2 and len(annealed) == 4
    assert {(r.point["start"], r.point["seed"]) for r in annealed} == {(s, d) for s in ("tiny", "tiny-weak") for d in (0, 1)}
    r = annealed[0]
    assert r.run_id == "entrocraft__H0.65__tslinear__te0.45__sttiny__s0"
    assert (r.config.algo.target_schedule, r.config.algo.target_end) == ("linear", 0.45)
    spec.write_text("axes: {seed: [0]}\npoints:\n  - {seed: 3}\n")
    with pytest.raises(SweepError, match="not an axis it may set"):
        load_sweep(spec, tmp_path / "out")
