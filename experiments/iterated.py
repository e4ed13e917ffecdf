"""Iterated RLHF closes the hack (issue "Notebook 07", item 3): PPO with no KL brake over-optimises
the first reward model; label that policy's own samples with the simulated annotator, retrain the
reward model with them, run the same PPO again. Judged by the hidden human on every held-out
prompt (4 samples each).

    python experiments/iterated.py                  # seeds 0 1 2, fresh caches
    python experiments/iterated.py --seeds 0 --keep-cache

Per seed: SFT, PPO round 1, PPO round 2 (gold with its 95% interval, KL to SFT, the exploit
rates: contradicting a user who is right, well-formed text, polite openers), and both reward
models' accuracy on pairs of round 1's samples (what RL asked the first one about). Writes
experiments/results/iterated.json.

Measured on the world before the helpful-only demonstrators (2026-11-28); notebook 07 now runs
iterated RLHF on the over-refusal hack instead (benchmarks/bench_reward_hacking.py).
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _common import machine, previous_runs, save, use_fresh_cache  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
parser.add_argument("--keep-cache", action="store_true", help="use $RLHF_LAB_CACHE instead of a fresh cache")
parser.add_argument("--kl-coef", type=float, default=0.0, help="PPO's KL coefficient in both rounds")
args = parser.parse_args()
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

torch.set_num_threads(2)
from rlhf_lab import cache, models  # noqa: E402
from rlhf_lab.config import get_profile  # noqa: E402
from rlhf_lab.evaluate import evaluate_policy, heldout_prompts  # noqa: E402
from rlhf_lab.overoptimization import style_rates  # noqa: E402
from rlhf_lab.cache import built_from  # noqa: E402
from rlhf_lab.stages.common import load_adapter_policy  # noqa: E402
from rlhf_lab.stages.iterate import iterate_once  # noqa: E402
from rlhf_lab.stages.ppo import default_ppo_config  # noqa: E402
from rlhf_lab.stages.pretrain import get_tokenizer  # noqa: E402
from rlhf_lab.reward_checks import sample_pairs_of  # noqa: E402
from rlhf_lab.scoring import pair_accuracy  # noqa: E402
from rlhf_lab.stages.reward import load_reward_model  # noqa: E402

def targets(stages: dict) -> dict:
    """The issue's targets. The exploit is what round 1 added over SFT: contradicting a user who
    is right (SFT already does it often: its own rate is the floor, not 0)."""
    sft, first, second = (stages[k] for k in ("sft", "ppo", "ppo_iterated"))
    added = first["contrarian_rate"] - sft["contrarian_rate"]
    lost = sft["gold_reward"] - first["gold_reward"]
    return {"exploit (contrarian rate above SFT's) falls by at least half":
            added > 0 and second["contrarian_rate"] - sft["contrarian_rate"] <= 0.5 * added,
            "gold recovers at least half of what round 1 lost":
            lost > 0 and second["gold_reward"] - first["gold_reward"] >= 0.5 * lost}


KEYS = ("gold_reward", "kl_to_ref", "contrarian_rate", "sycophancy_rate", "well_formed_rate", "capability_probe")

runs = previous_runs("iterated")  # other seeds' runs are kept: seeds can run apart
for seed in args.seeds:
    use_fresh_cache("bench-iterated", seed, args.keep_cache)
    started = time.perf_counter()
    profile = get_profile("tiny", seed=seed)
    dirs = iterate_once(profile, default_ppo_config(profile, kl_coef=args.kl_coef), progress=False)
    train_seconds = time.perf_counter() - started
    world, tokenizer = cache.world_for(seed), get_tokenizer(profile)
    prompts = heldout_prompts(world)
    sft = models.load_model(built_from(dirs["reward"]), device="cpu", trainable=False)
    policies = {"sft": sft, "ppo": load_adapter_policy(profile, dirs["ppo"])[0],
                "ppo_iterated": load_adapter_policy(profile, dirs["ppo_iterated"])[0]}
    stages = {}
    for name, model in policies.items():
        metrics, responses = evaluate_policy(model, tokenizer, world, prompts, 4, seed=seed * 100 + 9,
                                             reference=None if name == "sft" else "adapter-off")
        stages[name] = {**{k: metrics[k] for k in KEYS}, "gold_ci": metrics["gold_ci"],
                        "polite_rate": style_rates(responses)["polite_rate"], "examples": responses[:16:4]}
    # What RL asked the first reward model about: pairs of round 1's own samples on held-out prompts.
    asked = sample_pairs_of(policies["ppo"], tokenizer, prompts, 4, profile.max_new_tokens, seed=seed + 7)
    first_rm, _ = load_reward_model(profile, built_from(dirs["ppo"], "reward"))
    second_rm, _ = load_reward_model(profile, dirs["reward"])
    accuracy = {"first": pair_accuracy(first_rm, tokenizer, asked), "second": pair_accuracy(second_rm, tokenizer, asked)}
    sft_g, ppo_g, it_g = (stages[k]["gold_reward"] for k in ("sft", "ppo", "ppo_iterated"))
    sft_c, ppo_c, it_c = (stages[k]["contrarian_rate"] for k in ("sft", "ppo", "ppo_iterated"))
    runs[str(seed)] = {
        "stages": stages, "reward_model_accuracy_on_round1_samples": accuracy,
        "seconds": round(time.perf_counter() - started, 1), "train_seconds": round(train_seconds, 1),
        "targets": targets(stages),
    }
    print(f"seed {seed}: gold SFT {sft_g:+.2f} -> PPO {ppo_g:+.2f} -> iterated {it_g:+.2f}; contrarian "
          f"{sft_c:.0%} -> {ppo_c:.0%} -> {it_c:.0%}; RM accuracy on round-1 samples "
          f"{accuracy['first']['accuracy']:.0%} -> {accuracy['second']['accuracy']:.0%}", flush=True)
save("iterated", {"machine": machine(), "kl_coef": args.kl_coef, "seeds": sorted(int(s) for s in runs), "runs": runs})
