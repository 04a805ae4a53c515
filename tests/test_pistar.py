"""Issue 19: the target distribution pi* of AEPO's extra samples. Each distribution's rows are
drawn from it (a frequency test as the per-row temperature one), the controller's direction picks
its threshold, and the extra rows keep the positive-only rule and their T = 1 log-probs."""

import json

import pytest
import torch

from aepo.config import AlgoConfig, ConfigError, RunConfig
from aepo.core.controller import Decision
from aepo.core.pistar import ExtraSampling, extra_sampling
from aepo.embedded.sampler import sample, truncate
from test_sampler import BASE_LOGITS, FixedLogits

RAISE = Decision(target=0.5, temperature=1.5, raising=True)
LOWER = Decision(target=0.5, temperature=0.8, raising=False)


def test_the_nucleus_keeps_the_likeliest_tokens_until_their_mass_reaches_p_and_min_p_cuts_below_m_times_the_max():
    probs = torch.tensor([[0.5, 0.25, 0.125, 0.125]] * 4)  # exact in binary
    top_p = torch.tensor([[0.7], [0.5], [1.0], [0.8]])
    got = truncate(probs, top_p, None)
    # mass before each token: 0, 0.5, 0.75, 0.875; kept where it is < p (and always at p = 1)
    assert got.tolist() == [[0.5, 0.25, 0, 0], [0.5, 0, 0, 0], [0.5, 0.25, 0.125, 0.125], [0.5, 0.25, 0.125, 0]]
    min_p = torch.tensor([[0.25], [0.0], [0.6], [0.3]])
    got = truncate(probs, None, min_p)  # thresholds m * 0.5: 0.125, 0, 0.3, 0.15
    assert got.tolist() == [[0.5, 0.25, 0.125, 0.125], [0.5, 0.25, 0.125, 0.125], [0.5, 0, 0, 0], [0.5, 0.25, 0, 0]]
    unsorted = torch.tensor([[0.125, 0.5, 0.125, 0.25]])
    assert truncate(unsorted, torch.tensor([[0.7]]), None).tolist() == [[0, 0.5, 0, 0.25]]


def test_each_row_is_drawn_from_its_own_truncated_tempered_distribution():
    n = 6000
    temps = torch.tensor([1.0] * n + [2.0] * n + [1.0] * n)
    top_p = torch.tensor([1.0] * n + [0.8] * n + [1.0] * n)
    min_p = torch.tensor([0.0] * n + [0.0] * n + [0.3] * n)
    ids = torch.zeros(3 * n, 1, dtype=torch.long)
    r = sample(FixedLogits(), ids, torch.ones_like(ids), temps, max_new_tokens=1, eos_id=3, pad_id=0,
               generator=torch.Generator().manual_seed(0), top_p=top_p, min_p=min_p)
    first = r.response_ids[:, 0]
    for i, (t, p, m) in enumerate(((1.0, 1.0, 0.0), (2.0, 0.8, 0.0), (1.0, 1.0, 0.3))):
        pi_t = torch.softmax(BASE_LOGITS / t, -1)
        want = truncate(pi_t[None], torch.tensor([[p]]), torch.tensor([[m]]))[0]
        want = want / want.sum()
        freq = torch.bincount(first[i * n:(i + 1) * n], minlength=4).float() / n
        assert torch.allclose(freq, want, atol=0.032), (t, p, m, freq, want)  # 5 binomial sigma
    assert (first[n:2 * n] == 3).sum() == 0 and (first[2 * n:] >= 2).sum() == 0  # the cut tokens never come
    # log-probs stay those of pi at T = 1, whatever the row's distribution
    assert torch.allclose(r.logprobs[:, 0], torch.log_softmax(BASE_LOGITS, -1)[first])


def test_the_controllers_direction_picks_each_distributions_threshold():
    algo = AlgoConfig(t_high=1.5, top_p_high=0.95, top_p_low=0.7, min_p_high=0.05, min_p_low=0.3)
    assert extra_sampling("temperature", RAISE, algo) == ExtraSampling(1.5)
    assert extra_sampling("temperature", LOWER, algo) == ExtraSampling(0.8)
    assert extra_sampling("top_p", RAISE, algo) == ExtraSampling(1.5, top_p=0.95)
    assert extra_sampling("top_p", LOWER, algo) == ExtraSampling(1.0, top_p=0.7)
    assert extra_sampling("min_p", RAISE, algo) == ExtraSampling(1.5, min_p=0.05)
    assert extra_sampling("min_p", LOWER, algo) == ExtraSampling(1.0, min_p=0.3)


def test_a_target_distribution_other_than_temperature_is_refused_off_aepo_and_off_the_embedded_backend():
    with pytest.raises(ConfigError, match="is for method aepo"):
        RunConfig().with_overrides({"algo.method": "grpo", "algo.target_distribution": "top_p"}).validate()
    with pytest.raises(ConfigError, match="embedded backend only"):
        RunConfig().with_overrides({"backend": "verl", "algo.target_distribution": "min_p"}).validate()
    with pytest.raises(ConfigError, match="unknown target_distribution 'teacher!'"):
        RunConfig().with_overrides({"algo.target_distribution": "teacher!"}).validate()


@pytest.mark.parametrize("distribution", ["top_p", "min_p"])
def test_aepo_trains_with_a_truncated_target_distribution_and_reinforces_only_right_samples(tmp_path, distribution):
    from aepo.embedded.trainer import train
    from aepo.rundir import read_jsonl

    cfg = RunConfig(out=str(tmp_path), steps=4, seed=0, wandb="off", eval_every=0, threads=1).with_overrides(
        {"algo.target_distribution": distribution, "algo.controller": "bang_bang", "algo.entropy_target": 0.9,
         "rollout.prompts_per_step": 4})
    train(cfg, log=lambda *a: None)
    rows = list(read_jsonl(tmp_path / "metrics.jsonl"))
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    key, high, low = ("controller/top_p", 0.95, 0.7) if distribution == "top_p" else ("controller/min_p", 0.05, 0.3)
    for r in rows:  # raising: T_high with the high threshold; lowering: T = 1 with the low one
        raising = r["controller/raising"] == 1.0
        assert r[key] == pytest.approx(high if raising else low)
        assert r["controller/temperature"] == (1.5 if raising else 1.0)
        # positive only: no more samples are kept than the extra rows' right answers (2 prompts x G 8)
        assert r["controller/num_kept_samples"] <= round(r["controller/extra_score/mean"] * 16)
    assert json.loads((tmp_path / "config.json").read_text())["config"]["algo"]["target_distribution"] == distribution


# ---- a teacher as pi* ------------------------------------------------------------------------------
class OtherLogits(torch.nn.Module):
    """A 'teacher' whose next-token logits are always TEACHER_LOGITS (another distribution)."""

    logits = torch.tensor([-1.0, 0.0, 1.0, 2.0])

    def forward(self, input_ids, attention_mask=None, position_ids=None, use_cache=True, past_key_values=None):
        b, t = input_ids.shape
        from types import SimpleNamespace
        return SimpleNamespace(logits=self.logits.expand(b, t, 4).clone(), past_key_values=None, cache=None)


def test_a_teachers_rows_are_drawn_from_the_teacher_and_scored_by_the_policy():
    from aepo.embedded.sampler import scored_by

    n = 6000
    ids = torch.zeros(n, 1, dtype=torch.long)
    theirs = sample(OtherLogits(), ids, torch.ones_like(ids), torch.ones(n), max_new_tokens=1, eos_id=0, pad_id=0,
                    generator=torch.Generator().manual_seed(0))
    freq = torch.bincount(theirs.response_ids[:, 0], minlength=4).float() / n
    assert torch.allclose(freq, torch.softmax(OtherLogits.logits, -1), atol=0.032)  # the teacher's distribution
    seen = scored_by(FixedLogits(), theirs)  # the policy's T = 1 view of the same tokens
    assert torch.equal(seen.response_ids, theirs.response_ids)
    assert torch.allclose(seen.logprobs[:, 0], torch.log_softmax(BASE_LOGITS, -1)[theirs.response_ids[:, 0]])


def test_two_rollouts_of_different_lengths_join_with_padding_outside_the_mask():
    from aepo.embedded.sampler import Rollout

    a = Rollout(torch.zeros(1, 2, dtype=torch.long), torch.ones(1, 2), torch.tensor([[5, 6, 7]]),
                torch.tensor([[1, 1, 1]]), torch.tensor([[-1.0, -2.0, -3.0]]), torch.tensor([[0.1, 0.2, 0.3]]))
    b = Rollout(torch.ones(2, 2, dtype=torch.long), torch.ones(2, 2), torch.tensor([[8], [9]]),
                torch.tensor([[1], [1]]), torch.tensor([[-4.0], [-5.0]]), torch.tensor([[0.4], [0.5]]))
    j = a.then(b, pad_id=0)
    assert j.response_ids.tolist() == [[5, 6, 7], [8, 0, 0], [9, 0, 0]]
    assert j.response_mask.tolist() == [[1, 1, 1], [1, 0, 0], [1, 0, 0]]
    assert j.logprobs.tolist() == [[-1.0, -2.0, -3.0], [-4.0, 0.0, 0.0], [-5.0, 0.0, 0.0]]
    assert j.prompt_ids.tolist() == [[0, 0], [1, 1], [1, 1]]


def test_the_trainer_samples_main_rows_with_the_policy_and_extra_rows_with_the_teacher(tmp_path, monkeypatch):
    from aepo.embedded import trainer as T
    from aepo.rundir import read_jsonl

    calls = []
    real = T.sample

    def spy(model, ids, *args, **kw):
        calls.append((model, ids.shape[0]))
        return real(model, ids, *args, **kw)

    monkeypatch.setattr(T, "sample", spy)
    cfg = RunConfig(out=str(tmp_path / "r"), steps=2, seed=0, wandb="off", eval_every=0, threads=1).with_overrides(
        {"algo.target_distribution": "teacher", "algo.teacher_model": "tiny-b2", "rollout.prompts_per_step": 4})
    T.train(cfg, log=lambda *a: None)
    assert len(calls) == 4  # two calls a step: 2 main prompts x 8 with the policy, 2 extra prompts x 8 with the teacher
    policy, teacher = calls[0][0], calls[1][0]
    assert policy is not teacher and [n for _, n in calls] == [16, 16, 16, 16]
    assert calls[2][0] is policy and calls[3][0] is teacher
    rows = list(read_jsonl(tmp_path / "r" / "metrics.jsonl"))
    assert all(r["controller/temperature"] == 1.0 for r in rows)  # the teacher at T = 1 in both directions


def test_a_teacher_needs_its_model_and_the_policys_tokenizer(tmp_path):
    from aepo.embedded.trainer import load_teacher
    from aepo.embedded.model import load_model
    from aepo.tasks.models import resolve_model_dir

    with pytest.raises(ConfigError, match="target_distribution=teacher needs algo.teacher_model"):
        RunConfig().with_overrides({"algo.target_distribution": "teacher"}).validate()
    _, tok = load_model(resolve_model_dir("tiny"), "float32", torch.device("cpu"))
    tok.add_tokens(["<another>"])  # a policy whose vocabulary the teacher does not share
    with pytest.raises(ConfigError, match="has another tokenizer than the policy"):
        load_teacher("tiny-b2", tok, "float32", torch.device("cpu"), log=lambda *a: None)
