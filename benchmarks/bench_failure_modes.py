"""Over-optimisation and reward hacking in the lab world (issue "Notebook 07: the failure
modes of RLHF", items 1, 2 and 7): best-of-n against the reward model up to n=256 and PPO
against the reward model at several KL coefficients, each judged by the hidden human.

    python benchmarks/bench_failure_modes.py                    # seeds 0 1 2
    python benchmarks/bench_failure_modes.py --seeds 0 --keep-cache

Per seed: the best-of-n curve (gold with 95% interval, reward-model score, closer rate of the
picks, analytic KL) and Gao et al.'s fits; per KL coefficient the PPO policy's held-out gold,
reward-model score, KL to SFT, closer rate, capability probe, well-formed rate, and its
training curves; the two gauges of mode collapse (entropy per token, distinct correct answers
per prompt) for SFT, each PPO policy and one PPO run pushed hard on purpose (kl_coef 0, a 10x
learning rate); the same pushed run with PPO-ptx (InstructGPT's pretraining loss mixed into
the update), for the capability regression and its fix; DPO at several betas, for the PPO vs
DPO frontier (gold against KL to SFT). Writes benchmarks/results/failure_modes.json.

    python benchmarks/bench_failure_modes.py --seeds 0 --keep-cache --dpo-only   # add DPO to a seed's run

Target (issue "Notebook 07 on the helpful-only world"): for best-of-n and for PPO at the course's
learning rate, gold at the largest KL lies below its peak by more than the 95% interval while the
reward-model score is highest there; PPO-ptx recovers at least half of the probe accuracy PPO lost.
"""

import argparse
from dataclasses import replace
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _common import machine, previous_runs, save, use_fresh_cache  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
parser.add_argument("--keep-cache", action="store_true", help="use $RLHF_LAB_CACHE instead of a fresh cache")
parser.add_argument("--kl-coefs", type=float, nargs="+", default=[0.0, 0.02, 0.05, 0.5],
                    help="0.05 is the course's own (notebook 05); 0 and 0.05 are shared with bench_reward_hacking")
parser.add_argument("--ns", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64, 128, 256])
parser.add_argument("--prompts", type=int, default=48, help="held-out prompts (families interleaved)")
parser.add_argument("--samples", type=int, default=4, help="samples per prompt when a policy is evaluated")
parser.add_argument("--hard-lr", type=float, default=1e-3,
                    help="mode collapse on purpose: one more PPO run at kl_coef 0 with this learning rate (0: skip)")
parser.add_argument("--ptx-coef", type=float, default=1.0,
                    help="PPO-ptx: the pushed-hard run again with this pretraining-loss weight (0: skip)")
parser.add_argument("--dpo-betas", type=float, nargs="+", default=[0.03, 0.1, 1.0],
                    help="DPO runs (one per beta) for the PPO vs DPO frontier")
parser.add_argument("--dpo-only", action="store_true",
                    help="only add the DPO runs to the seed's existing results (the rest stays as it was)")
args = parser.parse_args()
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

torch.set_num_threads(2)
from rlhf_lab import cache, models  # noqa: E402
from rlhf_lab.config import get_profile  # noqa: E402
from rlhf_lab.evaluate import heldout_prompts  # noqa: E402
from rlhf_lab.overoptimization import (best_of_n_overoptimization, evaluate_with_proxy, gains_over_start,  # noqa: E402
                                       ppo_by_kl, rl_fit)
from rlhf_lab.stages.dpo import PLAIN_DPO, get_dpo_model_dir  # noqa: E402
from rlhf_lab.stages.common import load_adapter_policy  # noqa: E402
from rlhf_lab.stages.ppo import default_ppo_config, get_ppo_model_dir  # noqa: E402
from rlhf_lab.stages.pretrain import get_tokenizer  # noqa: E402
from rlhf_lab.scoring import score_responses  # noqa: E402
from rlhf_lab.stages.reward import get_reward_model_dir, load_reward_model  # noqa: E402
from rlhf_lab.cache import built_from  # noqa: E402
from rlhf_lab.reward_hacking import HISTORY_KEYS  # noqa: E402

runs = previous_runs("failure_modes")


def save_all():
    """Write every seed's run so far (after each seed: a long run stopped early keeps what it measured)."""
    save("failure_modes", {"machine": machine(), "seeds": sorted(int(s) for s in runs), "kl_coefs": args.kl_coefs,
                           "ns": args.ns, "prompts": args.prompts, "samples_per_prompt": args.samples,
                           "hard_lr": args.hard_lr, "ptx_coef": args.ptx_coef, "dpo_betas": args.dpo_betas,
                           "runs": runs})

  # other seeds' runs are kept: seeds can run apart
for seed in args.seeds:
    use_fresh_cache("bench-failure", seed, args.keep_cache)
    profile = get_profile("tiny", seed=seed)
    world, tokenizer = cache.world_for(seed), get_tokenizer(profile)
    prompts = heldout_prompts(world, args.prompts)
    reward_dir = get_reward_model_dir(profile, progress=False)
    reward_model, _ = load_reward_model(profile, reward_dir)

    def score(users, texts):
        return score_responses(reward_model, tokenizer, users, texts)

    sft = models.load_model(built_from(reward_dir), quantize_4bit=False, device="cpu")
    dpo = {}
    for beta in args.dpo_betas:  # the frontier's third method: DPO, one run per beta
        start = time.perf_counter()
        dpo_dir = get_dpo_model_dir(profile, replace(PLAIN_DPO, beta=beta), progress=False)
        policy, _ = load_adapter_policy(profile, dpo_dir)
        dpo[str(beta)] = {**evaluate_with_proxy(policy, tokenizer, world, prompts, score, args.samples,
                                                seed=seed * 100 + 9),
                          "seconds": round(time.perf_counter() - start, 1)}
    print(f"seed {seed}: DPO by beta: " + "; ".join(
        f"{b}: KL {v['kl']:.2f} gold {v['gold']['mean']:+.2f} well-formed {v['well_formed']:.0%}" for b, v in dpo.items()),
        flush=True)
    if args.dpo_only:
        runs[str(seed)]["dpo"] = dpo
        save_all()
        continue
    start = time.perf_counter()
    bon = best_of_n_overoptimization(sft, tokenizer, prompts, score, tuple(args.ns), seed=seed * 100 + 7)
    bon_seconds = time.perf_counter() - start
    start = time.perf_counter()  # the same study as notebook 07b's (rlhf_lab.overoptimization)
    sft_eval, ppo = ppo_by_kl(profile, args.kl_coefs, sft, tokenizer, world, prompts, score, args.samples,
                              seed=seed * 100 + 9, progress=False)
    for run in ppo.values():
        run["history"] = [{k: h[k] for k in ("entropy", "closer_rate", *HISTORY_KEYS) if k in h} for h in run["history"]]
    ppo_seconds = round(time.perf_counter() - start, 1)
    pushed, pushed_ptx = {}, {}
    for ptx_coef, result in ((0.0, pushed), (args.ptx_coef, pushed_ptx)):
        if not args.hard_lr or (result is pushed_ptx and not ptx_coef):
            continue  # not part of the fits: another learning rate, pushed until it collapses (and with ptx)
        start = time.perf_counter()
        config = default_ppo_config(profile, kl_coef=0.0, learning_rate=args.hard_lr, ptx_coef=ptx_coef)
        policy, _ = load_adapter_policy(profile, get_ppo_model_dir(profile, config, progress=False))
        result.update(kl_coef=0.0, learning_rate=args.hard_lr, ptx_coef=ptx_coef,
                      **evaluate_with_proxy(policy, tokenizer, world, prompts, score, args.samples, seed=seed * 100 + 9),
                      seconds=round(time.perf_counter() - start, 1))
    runs[str(seed)] = {"best_of_n": bon, "best_of_n_seconds": round(bon_seconds, 1), "sft": sft_eval, "ppo": ppo,
                       "ppo_seconds": ppo_seconds, "ppo_fit": rl_fit(gains_over_start(sft_eval, list(ppo.values()))),
                       "pushed_hard": pushed, "pushed_hard_ptx": pushed_ptx, "dpo": dpo}
    top = bon["rows"][-1]
    peak = max(bon["rows"], key=lambda r: r["gold"])
    print(f"seed {seed}: best-of-{top['n']} proxy {bon['rows'][0]['proxy']:+.2f} -> {top['proxy']:+.2f}, gold "
          f"{bon['rows'][0]['gold']:+.2f} -> peak {peak['gold']:+.2f} (n={peak['n']}) -> {top['gold']:+.2f}; "
          f"well-formed {bon['rows'][0]['well_formed_rate']:.0%} -> {top['well_formed_rate']:.0%}, polite {bon['rows'][0]['polite_rate']:.0%} -> {top['polite_rate']:.0%}; PPO by kl_coef: " + "; ".join(
              f"{k}: KL {v['kl']:.2f} proxy {v['proxy']:+.2f} gold {v['gold']['mean']:+.2f} closer {v['closer_rate']:.0%}"
              for k, v in ppo.items()), flush=True)
    print("  mode collapse (entropy per token, distinct correct answers): SFT "
          f"{sft_eval['entropy_per_token']:.2f}, {sft_eval['distinct_correct']:.2f}; " + "; ".join(
              f"kl {k}: {v['entropy_per_token']:.2f}, {v['distinct_correct']:.2f}" for k, v in
              [*ppo.items(), *([(f"0.0 lr {args.hard_lr:g}", pushed)] if pushed else [])]), flush=True)
    print("  capability probe: SFT " f"{sft_eval['capability_probe']:.0%}; " + "; ".join(
        f"{name}: {run['capability_probe']:.0%} (gold {run['gold']['mean']:+.2f})" for name, run in
        [*((f"kl {k}", v) for k, v in ppo.items()), ("pushed hard", pushed), ("pushed hard + ptx", pushed_ptx)]
        if run), flush=True)
    save_all()
