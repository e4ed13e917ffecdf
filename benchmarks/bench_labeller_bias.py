"""Sycophancy and verbosity come from the labellers (issue "Notebook 07", item 4): DPO on
comparisons labelled by simulated annotators with a growing bias, judged by the hidden human.

    python benchmarks/bench_labeller_bias.py                  # seeds 0 1 2, fresh caches
    python benchmarks/bench_labeller_bias.py --seeds 0 --keep-cache

The annotator's utility is the gold reward plus ``prefers_agreement`` for a response that says
yes to the user, plus ``prefers_length`` per word (rlhf_lab.world.annotator). Agreeing with a
wrong claim costs 4 gold points against the honest correction (-2.5 vs +1.5), so a bias of 4
makes the labeller indifferent and 6 makes it prefer the sycophant. Per bias level one
DPO run (the course's settings; only the labels change) and, on every held-out prompt x 4
samples: the sycophancy rate (agrees with a wrong claim), the contrarian rate (contradicts a
right one), the mean length in words, gold with its 95% interval, KL to SFT. Writes
benchmarks/results/labeller_bias.json.

Target (issue "Notebook 07 on the helpful-only world", item 4): sycophancy and length rise with
the labeller's bias, dose by dose, in every seed.
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
parser.add_argument("--agreement", type=float, nargs="+", default=[0.0, 4.0, 6.0])
parser.add_argument("--length", type=float, nargs="+", default=[0.1, 0.3])
args = parser.parse_args()
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

torch.set_num_threads(2)
from rlhf_lab import cache, models  # noqa: E402
from rlhf_lab.config import get_profile  # noqa: E402
from rlhf_lab.evaluate import evaluate_policy, heldout_prompts  # noqa: E402
from rlhf_lab.stages.dpo import PLAIN_DPO, get_dpo_model_dir  # noqa: E402
from rlhf_lab.stages.common import load_adapter_policy  # noqa: E402
from rlhf_lab.stages.pretrain import get_tokenizer  # noqa: E402
from rlhf_lab.stages.sft import get_sft_model_dir  # noqa: E402

KEYS = ("gold_reward", "gold_ci", "kl_to_ref", "sycophancy_rate", "contrarian_rate", "misstated_fact_rate",
        "contradicts_right_claim_rate", "mean_length_words", "well_formed_rate")
LEVELS = ([("annotator_agreement", a) for a in args.agreement]
          + [("annotator_length", x) for x in args.length])

runs = previous_runs("labeller_bias")  # other seeds' runs are kept: seeds can run apart
for seed in args.seeds:
    use_fresh_cache("bench-bias", seed, args.keep_cache)
    profile = get_profile("tiny", seed=seed)
    world, tokenizer = cache.world_for(seed), get_tokenizer(profile)
    prompts = heldout_prompts(world)
    sft = models.load_model(get_sft_model_dir(profile, progress=False), device="cpu", trainable=False)
    metrics, _ = evaluate_policy(sft, tokenizer, world, prompts, 4, seed=seed * 100 + 9, reference=None)
    result = {"sft": {k: metrics[k] for k in KEYS}, "dpo": {}}
    for name, value in LEVELS:
        started = time.perf_counter()
        dpo_dir = get_dpo_model_dir(profile, replace(PLAIN_DPO, **{name: value}), progress=False)
        policy, _ = load_adapter_policy(profile, dpo_dir)
        metrics, responses = evaluate_policy(policy, tokenizer, world, prompts, 4, seed=seed * 100 + 9)
        result["dpo"][f"{name}={value:g}"] = {**{k: metrics[k] for k in KEYS}, "examples": responses[:16:4],
                                              "seconds": round(time.perf_counter() - started, 1)}
        print(f"seed {seed} {name}={value:g}: sycophancy {metrics['sycophancy_rate']:.0%}, contradicts a right claim "
              f"{metrics['contradicts_right_claim_rate']:.0%}, length {metrics['mean_length_words']:.1f} words, gold "
              f"{metrics['gold_reward']:+.2f}, KL {metrics['kl_to_ref']:.2f}", flush=True)
    runs[str(seed)] = result
save("labeller_bias", {"machine": machine(), "agreement": args.agreement, "length": args.length,
                       "seeds": sorted(int(s) for s in runs), "runs": runs})
