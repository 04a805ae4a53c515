"""The embedded trainer's speed on a real LM (issue 15): SmolLM2-135M-Instruct on this machine.

Prints three figures and two ratios:
  matmul      GFLOP/s of a plain float32 matmul (the machine's bound for everything below)
  sampling    new tokens/s (prompt prefill included) of the trainer's sampler (aepo.embedded.sampler.sample) and of Hugging Face
              `generate` on the same batch, same lengths (both forced to --new-tokens), same model
  update      seconds of one forward+backward of the trainer's loss on the sampled batch (after a
              warm-up, the best of --repeats, as the matmul rate is a best time), and the
              FLOP-bound time 6 * parameters * tokens / matmul rate

    python benchmarks/smollm2_speed.py --rows 32 --new-tokens 64 --threads 2

Targets (issue 15): sampler >= 5x generate; update <= 1.5x its FLOP-bound time.
"""

from __future__ import annotations

import argparse
import time

import torch


def matmul_gflops(n: int = 2048, reps: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=32)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3, help="timed updates after the warm-up (the best counts)")
    ap.add_argument("--skip-generate", action="store_true", help="leave out HF generate (slow)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from aepo.core.assembly import loss_denominators
    from aepo.core.losses import LossConfig, grpo_loss
    from aepo.embedded.model import load_model
    from aepo.embedded.sampler import sample
    from aepo.embedded.trainer import left_pad, loss_batch, plain_splice
    from aepo.tasks import arith, smollm2
    from aepo.tasks.prompts import prompt_texts

    model, tok = load_model(str(smollm2.model_path(log=print)), "float32", torch.device("cpu"))
    model.eval()
    n_params = sum(p.numel() for p in model.parameters())
    items = arith.items("heldout")[: args.rows]
    texts = prompt_texts(tok, "{problem}", [it["problem"] for it in items], chat=True)
    ids, mask = left_pad(tok(texts, add_special_tokens=False).input_ids, tok.pad_token_id, "cpu")
    B, L, N = ids.shape[0], ids.shape[1], args.new_tokens
    rate = matmul_gflops()
    print(f"machine: {args.threads} torch threads, float32 matmul {rate:.1f} GFLOP/s")
    print(f"model: SmolLM2-135M-Instruct, {n_params / 1e6:.1f}M parameters; batch {B} rows x {L} prompt tokens, "
          f"{N} new tokens each")

    never = [-1]  # no stop token: every row generates exactly N tokens, as generate with min_new_tokens=N
    with torch.no_grad():
        sample(model, ids[:2], mask[:2], torch.ones(2), 2, never, tok.pad_token_id)  # warm-up
        t = time.perf_counter()
        roll = sample(model, ids, mask, torch.ones(B), N, never, tok.pad_token_id,
                      generator=torch.Generator().manual_seed(0))
        t_ours = time.perf_counter() - t
    ours = B * N / t_ours
    # 2 FLOPs per weight and token: the prompt's positions through the decoder (the lm head only at
    # the last), then every new token through all of it (attention over ~100 positions left out)
    head = model.config.vocab_size * model.config.hidden_size
    bound = 2 * ((n_params - head) * B * L + n_params * B * N) / (rate * 1e9)
    print(f"sampler:  {ours:8.1f} tokens/s ({t_ours:.1f} s; FLOP-bound {bound:.1f} s, {bound / t_ours:.0%} of it)")
    if not args.skip_generate:
        with torch.no_grad():
            t = time.perf_counter()
            model.generate(input_ids=ids, attention_mask=mask, do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
                           min_new_tokens=N, max_new_tokens=N, pad_token_id=tok.pad_token_id)
            t_hf = time.perf_counter() - t
        hf = B * N / t_hf
        print(f"generate: {hf:8.1f} tokens/s ({t_hf:.1f} s)")
        print(f"RATIO sampler / generate: {ours / hf:.2f}x (target >= 5x)")

    model.train()
    splice = plain_splice(torch.randn(B))  # every row a GRPO row with a made-up advantage
    share = loss_denominators(roll.response_mask, splice.reinforce, "seq-mean-token-mean", "all_samples",
                              roll.response_mask[:0])
    def one_update() -> float:
        model.zero_grad(set_to_none=True)  # as the trainer does before each minibatch
        t = time.perf_counter()
        loss, _ = grpo_loss(loss_batch(model, roll, splice, torch.arange(B), share, torch.device("cpu")), LossConfig())
        loss.backward()  # the trainer's forward (aepo.embedded.trainer.loss_batch) and the GRPO loss
        return time.perf_counter() - t

    t_first = one_update()  # warm-up: first-touch allocations, kernel selection
    times = [one_update() for _ in range(args.repeats)]
    t_upd = min(times)
    print(f"update:   first call {t_first:.1f} s, then {', '.join(f'{x:.1f}' for x in times)} s")
    # 6 FLOPs per weight per token forward+backward: the decoder's weights at every position, the
    # (tied) lm head only where a response token is predicted (the trainer computes no other logits)
    upd_bound = 6 * ((n_params - head) * B * (L + N) + head * B * N) / (rate * 1e9)
    print(f"update:   {t_upd:.1f} s for {B * (L + N)} tokens forward+backward; FLOP-bound {upd_bound:.1f} s")
    print(f"RATIO update / FLOP bound: {t_upd / upd_bound:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()
