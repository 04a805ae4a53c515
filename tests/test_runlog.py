"""Run records survive W&B failures and never hold secrets."""

from __future__ import annotations

import json

import pytest

from aepo.config import RunConfig
from aepo.rundir import read_metrics
from aepo.runlog import RunLogger, wandb_mode


def test_wandb_auto_is_online_only_with_an_api_key(monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    assert wandb_mode("auto") == "offline"
    monkeypatch.setenv("WANDB_API_KEY", "k")
    assert wandb_mode("auto") == "online"
    assert wandb_mode("off") == "off"


def test_a_failing_wandb_never_costs_the_local_record(tmp_path, monkeypatch):
    import wandb

    def broken_init(*a, **k):
        raise RuntimeError("no network")

    monkeypatch.setattr(wandb, "init", broken_init)
    with pytest.warns(UserWarning, match="W&B disabled"):
        log = RunLogger(tmp_path, {"a": 1}, wandb="offline")
    log.log({"step": 1, "actor/entropy": 0.5})
    log.close({"status": "finished"})
    assert read_metrics(tmp_path / "metrics.jsonl") == [{"step": 1, "actor/entropy": 0.5}]


def test_run_records_never_contain_the_wandb_key(tmp_path, monkeypatch, tiny_model_dir):
    import wandb

    from aepo.embedded.trainer import train

    secret = "sk-test-0123456789abcdef"
    monkeypatch.setenv("WANDB_API_KEY", secret)
    seen = {}

    class FakeRun:
        summary: dict = {}

        def log(self, *a, **k):
            pass

        def finish(self):
            pass

    def fake_init(**kwargs):
        seen.update(kwargs)
        return FakeRun()

    monkeypatch.setattr(wandb, "init", fake_init)
    cfg = RunConfig(out=str(tmp_path / "run"), steps=2, eval_every=0, wandb="auto").with_overrides(
        {"rollout.prompts_per_step": 4})
    train(cfg, log=lambda *_: None)
    assert seen["mode"] == "online" and secret not in json.dumps(seen, default=str)
    for f in (tmp_path / "run").rglob("*"):
        if f.is_file() and f.suffix in (".json", ".jsonl", ".txt", ".log"):
            assert secret not in f.read_text(errors="ignore"), f


def test_an_offline_wandb_run_keeps_its_metrics_on_disk_for_wandb_sync(tmp_path, monkeypatch):
    # issue 18: W&B offline runs are synced later (`wandb sync RUN_DIR/wandb/offline-run-*`); the files
    # must exist and hold what was logged (keys and values are stored as text inside the record log)
    monkeypatch.setenv("WANDB_MODE", "offline")
    log = RunLogger(tmp_path, {"algo": {"method": "aepo"}}, wandb="offline", project="aepo-test")
    for step in (1, 2, 3):
        log.log({"step": step, "actor/entropy": 0.25 * step, "critic/score/mean": 0.125})
    log.close({"status": "finished"})
    files = list((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 1
    data = files[0].read_bytes()
    for text in (b"actor/entropy", b"critic/score/mean", b"0.75", b"0.125"):
        assert text in data, text
    assert read_metrics(tmp_path / "metrics.jsonl")[-1]["actor/entropy"] == 0.75  # the local record too
