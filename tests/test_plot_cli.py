"""`aepo plot` end to end on a small synthetic sweep written in the trainer's file format."""

import json

import pytest
from typer.testing import CliRunner

from aepo.cli import app
from analysis.synthetic import synthetic_run, synthetic_study, write_sweep

runner = CliRunner()
FIGURES = ("fig1_entropy_trajectories", "fig5_baselines", "fig_ablations", "fig_entropy_vs_accuracy",
           "fig_training_accuracy")
TABLES = ("table2_greedy", "table2_pass1", "table2_passk", "ablation_table", "control_table")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    d = tmp_path_factory.mktemp("sweep")
    runs = synthetic_study(targets=(0.25, 0.5, 1.0), seeds=2, steps=12, eval_every=4)
    runs[0].result["status"] = "failed"  # one failed run: reported, not analysed
    return write_sweep(runs, d)


def test_plot_writes_every_promised_file(sweep, tmp_path):
    out = tmp_path / "out"
    extra = write_sweep([synthetic_run("grpo", 7, steps=12, eval_every=4)], tmp_path / "elsewhere") / "runs" / "grpo__s7"
    r = runner.invoke(app, ["plot", str(sweep), "--runs", str(extra), "--out", str(out)])
    assert r.exit_code == 0, r.output
    for name in FIGURES:
        assert (out / "figures" / f"{name}.png").stat().st_size > 0
        assert (out / "figures" / f"{name}.pdf").stat().st_size > 0
    for name in TABLES:
        assert (out / "tables" / f"{name}.md").is_file() and (out / "tables" / f"{name}.tex").is_file()
    report = (out / "report.md").read_text()
    for i in range(1, 9):
        assert f"| C{i} |" in report
    for name in FIGURES:
        assert f"(figures/{name}.png)" in report
    assert "grpo__s0 (failed)" in report
    assert "Runs: 17, of which 16 finished" in report  # 16 in the sweep + the one given with --runs
    claims = json.loads((out / "claims.json").read_text())
    assert [c["id"] for c in claims["claims"]] == [f"C{i}" for i in range(1, 9)]
    assert all(c["verdict"] in ("holds", "does not hold", "not measurable with this data") for c in claims["claims"])


def test_run_directories_given_as_arguments_are_read_as_runs_so_a_shell_glob_picks_seeds(sweep, tmp_path):
    # `aepo plot SWEEP/runs/*__s0 --out R`: the glob gives run directories, not sweeps
    chosen = sorted((sweep / "runs").glob("*__s0"))
    r = runner.invoke(app, ["plot", *map(str, chosen), "--out", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    assert f"Runs: {len(chosen)}," in (tmp_path / "out" / "report.md").read_text()


def test_plot_without_a_source_fails_in_one_line(tmp_path):
    r = runner.invoke(app, ["plot", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "SWEEP_DIR" in r.output


def test_plot_of_a_directory_without_runs_fails_in_one_line_and_leaves_no_empty_out_folder(tmp_path):
    r = runner.invoke(app, ["plot", str(tmp_path), "--out", str(tmp_path / "o" / "report")])
    assert r.exit_code == 2 and "no runs/ directory" in r.output
    assert not (tmp_path / "o").exists()


def test_plot_with_unreachable_wandb_fails_in_one_line(tmp_path, monkeypatch):
    import analysis.load as load

    def offline():
        raise ConnectionError("Failed to resolve api.wandb.ai")

    monkeypatch.setattr(load, "default_wandb_api", offline)
    r = runner.invoke(app, ["plot", "--from-wandb", "ent/proj", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "W&B unreachable" in r.output


def test_the_report_names_the_machines_its_runs_came_from_and_warns_when_they_differ(tmp_path):
    intel = {"cpu": "Intel(R) Xeon(R) Processor", "cpu_capability": "AVX512", "gpu": None}
    amd = {"cpu": "AMD EPYC 7B13", "cpu_capability": "AVX2", "gpu": None}
    runs = synthetic_study(targets=(0.25, 0.5), seeds=2, steps=12, eval_every=4)
    for i, run in enumerate(runs):
        run.result["machine"] = intel if i % 2 else amd
    sweep = write_sweep(runs, tmp_path / "mixed")
    r = runner.invoke(app, ["plot", str(sweep), "--out", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    report = (tmp_path / "out" / "report.md").read_text()
    half = len(runs) // 2
    assert f"Intel(R) Xeon(R) Processor (AVX512) ({half} runs)" in report
    assert f"AMD EPYC 7B13 (AVX2) ({half} runs)" in report and "compare conditions within one" in report
    for run in runs:
        run.result["machine"] = intel
    same = write_sweep(runs, tmp_path / "same")
    runner.invoke(app, ["plot", str(same), "--out", str(tmp_path / "out2")])
    assert "compare conditions within one" not in (tmp_path / "out2" / "report.md").read_text()


def test_a_run_record_names_its_machine():
    import torch

    from aepo.rundir import machine, machine_label, provenance

    m = provenance()["machine"]
    assert m == machine() and isinstance(m["cpu"], str) and m["cpu"]
    assert m["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert machine_label(m).startswith(f"{m['cpu']} ({m['cpu_capability']})")
    assert machine_label(None) == machine_label({"cpu": 3}) == "not recorded"
