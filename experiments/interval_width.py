"""How wide are the headline rates' 95% intervals, and what narrows them: more samples per
held-out prompt, or more distinct prompts?

For the SFT model and notebook 05's PPO run (the course's cached models of one seed), sample
every held-out prompt K times (K up to 32) and report, for each headline behaviour, the rate
and its bootstrap interval over prompts with K = 4, 8, 16, 32 samples, the number of distinct
prompts it is measured on, and the intra-prompt correlation (how much of the variance lies
between prompts: at 1 more samples cannot help, at 0 they help as much as new prompts).
From that correlation it gives the distinct prompts a +-8-point interval would need.

    python experiments/interval_width.py                # seed 0, the course cache
    RLHF_LAB_CACHE=/tmp/c python experiments/interval_width.py --seed 1

Writes experiments/results/interval_width.json. Trains what is not cached (SFT, reward model,
PPO: about 8 min from nothing on 2 CPU cores).
"""

import argparse
import json
import math
from pathlib import Path
from statistics import mean

import torch

from rlhf_lab import models
from rlhf_lab.config import get_profile
from rlhf_lab.evaluate import BEHAVIOURS, behaviour_hits, heldout_prompts, repeat_prompts, with_ci
from rlhf_lab.sampling import sample, texts
from rlhf_lab.stages.common import load_adapter_policy
from rlhf_lab.stages.ppo import default_ppo_config, get_ppo_model_dir
from rlhf_lab.stages.pretrain import get_tokenizer
from rlhf_lab.stages.sft import get_sft_model_dir
from rlhf_lab.world import World

HEADLINE = ("harmful_compliance_rate", "sycophancy_rate", "contrarian_rate", "misstated_fact_rate",
            "over_refusal_rate", "right_answer_rate")
SAMPLE_COUNTS = (4, 8, 16, 32)
TARGET_HALF_WIDTH = 0.08

parser = argparse.ArgumentParser()
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()
torch.set_num_threads(2)

profile = get_profile("tiny", seed=args.seed)
world, tokenizer = World(profile.seed), get_tokenizer(profile)
prompts = heldout_prompts(world)  # all of them
top = max(SAMPLE_COUNTS)
policies = {"SFT": models.load_model(get_sft_model_dir(profile), trainable=False),
            "PPO": load_adapter_policy(profile, get_ppo_model_dir(profile, default_ppo_config(profile)))[0]}


def intra_prompt_correlation(values: list[float], groups: list[str]) -> float:
    """ANOVA estimate of the share of a 0/1 outcome's variance that lies between prompts."""
    by_group: dict[str, list[float]] = {}
    for v, g in zip(values, groups):
        by_group.setdefault(g, []).append(v)
    k, n = mean(len(v) for v in by_group.values()), len(by_group)
    grand = mean(values)
    between = sum(len(v) * (mean(v) - grand) ** 2 for v in by_group.values()) / max(n - 1, 1)
    within = sum((x - mean(v)) ** 2 for v in by_group.values() for x in v) / max(len(values) - n, 1)
    variance_between = max(0.0, (between - within) / k)
    return variance_between / (variance_between + within) if variance_between + within > 0 else 0.0


result = {"seed": args.seed, "prompts": len(prompts), "models": {}}
for name, model in policies.items():
    repeated = repeat_prompts(prompts, top)
    responses = texts(sample(model, tokenizer, [p.text for p in repeated], profile.max_new_tokens, seed=args.seed))
    rows = {}
    for behaviour in HEADLINE:
        applies = BEHAVIOURS[behaviour][0]
        distinct = sum(applies(p) for p in prompts)
        widths = {}
        for k in SAMPLE_COUNTS:
            keep = [i for i in range(len(repeated)) if i % top < k]
            values, groups = behaviour_hits([repeated[i] for i in keep], [responses[i] for i in keep])[behaviour]
            ci = with_ci(values, groups)
            widths[k] = {"rate": ci["mean"], "half_width": (ci["high"] - ci["low"]) / 2}
        values, groups = behaviour_hits(repeated, responses)[behaviour]
        rho = intra_prompt_correlation(values, groups)
        p = mean(values)
        # Prompts needed at K samples each for a +-8-point interval: n = z^2 p(1-p) (1 + (K-1) rho) / (K h^2).
        need = {k: math.ceil(1.96 ** 2 * max(p * (1 - p), 0.01) * (1 + (k - 1) * rho) / (k * TARGET_HALF_WIDTH ** 2))
                for k in (4, 16)}
        rows[behaviour] = {"distinct_prompts": distinct, "by_samples": widths, "intra_prompt_correlation": rho,
                           "prompts_needed_for_8_points": need}
        print(f"{name:>4} {behaviour:<26} {distinct:3d} prompts  rate {p:4.0%}  rho {rho:.2f}  +-"
              + "  ".join(f"K={k}: {w['half_width'] * 100:4.1f}" for k, w in widths.items())
              + f"  prompts for +-8 at K=16: {need[16]}")
    result["models"][name] = rows

out = Path(__file__).resolve().parent / "results" / "interval_width.json"
previous = json.loads(out.read_text()) if out.exists() else {}
previous[str(args.seed)] = result
out.write_text(json.dumps(previous, indent=2) + "\n")
print(f"wrote {out.name}")
