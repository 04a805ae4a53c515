"""Loading runs into tidy frames: sweep directories, run directories, recorded W&B data."""

import math

import pytest

from analysis.load import LoadError, Run, eval_rows, frames, load, read_wandb, run_from_wandb
from analysis.synthetic import synthetic_run, write_sweep


def test_a_sweep_directory_gives_one_row_per_run_and_step(tmp_path):
    write_sweep([synthetic_run("grpo", 0, steps=10), synthetic_run("aepo", 0, 0.5, steps=10)], tmp_path)
    f = load(tmp_path)
    assert len(f.runs) == 2 and len(f.steps) == 20
    assert {"run_id", "method", "entropy_target", "seed", "step", "actor/entropy"} <= set(f.steps.columns)


def test_run_directories_and_a_sweep_load_together_without_duplicates(tmp_path):
    write_sweep([synthetic_run("grpo", 0, steps=5)], tmp_path / "a")
    write_sweep([synthetic_run("grpo", 1, steps=5)], tmp_path / "b")
    f = load(tmp_path / "a", run_dirs=[tmp_path / "b" / "runs" / "grpo__s1", tmp_path / "a" / "runs" / "grpo__s0"])
    assert sorted(f.runs["run_id"]) == ["grpo__s0", "grpo__s1"]


def test_baselines_have_no_entropy_target_even_though_one_is_logged():
    f = frames([synthetic_run("grpo", 0, target=0.5, steps=5), synthetic_run("aepo", 0, target=0.5, steps=5)])
    runs = f.runs.set_index("method")
    assert math.isnan(runs.loc["grpo", "entropy_target"]) and runs.loc["grpo", "condition"] == "grpo"
    assert runs.loc["aepo", "entropy_target"] == 0.5 and runs.loc["aepo", "condition"] == "aepo H=0.50"


def test_validation_gives_final_and_best_greedy_pass1_and_passk():
    metrics = [{"step": 1, "val/tinylab/accuracy": 0.5, "val/tinylab/mean@4": 0.4, "val/tinylab/pass@4": 0.7},
               {"step": 2, "val/tinylab/accuracy": 0.3, "val/tinylab/mean@4": 0.45, "val/tinylab/pass@4": 0.6}]
    b = frames([Run("r", {"seed": 0, "steps": 2, "algo": {"method": "grpo"}}, metrics)]).benchmarks
    final = b[b["point"] == "final"].iloc[0]
    best = b[b["point"] == "best"].iloc[0]
    assert (final["greedy"], final["pass@1"], final["pass@k"], final["k"]) == (0.3, 0.45, 0.6, 4)
    assert (best["greedy"], best["pass@1"], best["pass@k"]) == (0.5, 0.45, 0.7)


def test_greedy_and_sampled_eval_summaries_merge_into_one_row_per_benchmark():
    greedy = {"benchmarks": {"gsm8k": {"n": 3, "accuracy": 0.6, "avg@1": 0.6, "pass@1": 0.6}},
              "settings": {"temperature": 0.0}}
    sampled = {"benchmarks": {"gsm8k": {"n": 3, "accuracy": 0.5, "avg@8": 0.5, "pass@1": 0.5, "pass@8": 0.9}},
               "settings": {"temperature": 1.0}}
    (row,) = eval_rows([greedy, sampled])
    assert row["greedy"] == 0.6 and row["pass@1"] == 0.5 and row["pass@k"] == 0.9 and row["k"] == 8


def test_a_directory_without_runs_is_a_clear_error(tmp_path):
    with pytest.raises(LoadError, match="no runs/"):
        load(tmp_path)


# A W&B run as the public API returns it (recorded shape): config values may be wrapped, history
# rows carry _step and W&B's own keys.
RECORDED = {
    "id": "abc123", "name": "aepo__H0.5__s1", "state": "finished",
    "config": {"seed": {"value": 1}, "steps": {"value": 2}, "_wandb": {"value": {}},
               "algo": {"value": {"method": "aepo", "entropy_target": 0.5, "alpha": 0.12, "mode": "replace"}}},
    "summary": {"actor/entropy": 0.49, "_runtime": 12.0},
    "history": [{"_step": 1, "_runtime": 1.0, "_timestamp": 1.7e9, "actor/entropy": 0.8, "critic/score/mean": 0.2},
                {"_step": 2, "_runtime": 2.0, "actor/entropy": 0.5, "critic/score/mean": 0.4,
                 "val/tinylab/accuracy": 0.3, "val/tinylab/mean@4": 0.25, "val/tinylab/pass@4": 0.5}],
}


def test_recorded_wandb_runs_convert_like_run_directories():
    run = run_from_wandb(RECORDED)
    f = frames([run])
    r = f.runs.iloc[0]
    assert (r["run_id"], r["method"], r["entropy_target"], r["seed"], r["status"]) == ("aepo__H0.5__s1", "aepo", 0.5, 1, "finished")
    assert list(f.steps["step"]) == [1, 2] and list(f.steps["actor/entropy"]) == [0.8, 0.5]
    assert not any(c.startswith("_") for c in f.steps.columns)
    assert f.benchmarks.loc[f.benchmarks["point"] == "final", "greedy"].item() == 0.3


class FakeApiRun:
    def __init__(self, rec):
        self.id, self.name, self.state = rec["id"], rec["name"], rec["state"]
        self.config, self.summary, self._history = rec["config"], rec["summary"], rec["history"]

    def scan_history(self):
        return iter(self._history)


class FakeApi:
    def __init__(self):
        self.calls = []

    def runs(self, path, filters=None):
        self.calls.append((path, filters))
        return [FakeApiRun(RECORDED)]


def test_wandb_project_and_group_are_read_through_the_public_api_shape():
    api = FakeApi()
    (run,) = read_wandb("ent/proj/my-group", api_factory=lambda: api)
    assert api.calls == [("ent/proj", {"group": "my-group"})]
    assert run.run_id == "aepo__H0.5__s1" and len(run.metrics) == 2


def test_unreachable_wandb_is_a_one_line_error():
    def offline():
        raise ConnectionError("Max retries exceeded with url: https://api.wandb.ai/graphql\nmore")

    with pytest.raises(LoadError, match="W&B unreachable") as e:
        read_wandb("ent/proj", api_factory=offline)
    assert "\n" not in str(e.value)


def test_a_malformed_wandb_path_is_rejected():
    with pytest.raises(LoadError, match="ENTITY/PROJECT"):
        read_wandb("just-a-project", api_factory=FakeApi)


def test_two_sweeps_with_one_grid_keep_all_their_runs(tmp_path):
    # two sweeps of one grid (say two lab starts in two sweep files) share run ids: no run may vanish
    from analysis.load import load
    from analysis.synthetic import synthetic_run, write_sweep

    for name in ("sweep_a", "sweep_b"):
        write_sweep([synthetic_run("grpo", 0, steps=10)], tmp_path / name)
    runs = [tmp_path / n / "runs" / "grpo__s0" for n in ("sweep_a", "sweep_b")]
    f = load(None, runs)
    assert sorted(f.runs["run_id"]) == ["sweep_a/grpo__s0", "sweep_b/grpo__s0"]
    assert len(load(None, [runs[0], runs[0]]).runs) == 1  # the same run given twice counts once
