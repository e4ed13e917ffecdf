"""Where the PPO control stalls: PPO against the gold reward itself from seed 0's SFT model, with
the training rollouts' gold reward per prompt family and the polite-opener rate logged every step,
printed as means over blocks of 10 steps. Behind the issue "RLHF that works in the lab world".

    RLHF_LAB_CACHE=<a warm cache> python experiments/ppo_families.py '{"steps": 120}'

The argument is a JSON dict of PPOSettings changes (default: none). About 1 s per step on 2 CPU
cores with SFT cached. Prints only (the numbers go into the closing note and the README).
"""

import json
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from rlhf_lab import cache, models  # noqa: E402
from rlhf_lab.config import get_profile  # noqa: E402
from rlhf_lab.ppo import PPOTrainer  # noqa: E402
from rlhf_lab.stages.ppo import default_ppo_config  # noqa: E402
from rlhf_lab.stages.pretrain import get_tokenizer  # noqa: E402
from rlhf_lab.stages.sft import get_sft_model_dir  # noqa: E402
from rlhf_lab.world import FAMILIES  # noqa: E402
from rlhf_lab.world.parse import parse_response  # noqa: E402

BLOCK = 10


def family_metrics(world):
    """metrics_fn for PPOTrainer: mean gold per family in the rollout, and the polite rate."""
    def metrics(prompts, responses):
        asked = [world.prompt_by_text(text) for text in prompts]
        out = {}
        for family in FAMILIES:
            members = [i for i, prompt in enumerate(asked) if prompt.family == family]
            if members:  # (a family missing from a rollout is left out of its block's mean)
                out[f"gold_{family}"] = sum(world.gold_reward(asked[i], responses[i]).total
                                            for i in members) / len(members)
        out["polite"] = sum(parse_response(r).opener == "polite" for r in responses) / len(responses)
        return out
    return metrics


def main(changes: dict) -> None:
    profile = get_profile("tiny")
    tokenizer, world = get_tokenizer(profile), cache.world_for(profile.seed)
    torch.manual_seed(0)
    policy = models.load_model(get_sft_model_dir(profile, progress=False), quantize_4bit=False, device="cpu",
                               lora=models.LoraSettings.from_profile(profile))
    trainer = PPOTrainer(policy, tokenizer, world.gold_scores,
                         default_ppo_config(profile, **changes), metrics_fn=family_metrics(world))
    start = time.perf_counter()
    trainer.train([p.text for p in world.prompts("train")], progress=False)
    keys = ["reward", "kl", "entropy", "polite", *(f"gold_{f}" for f in FAMILIES)]
    for first in range(0, len(trainer.log), BLOCK):
        rows = trainer.log[first:first + BLOCK]
        means = {k: sum(r[k] for r in rows if k in r) / max(1, sum(k in r for r in rows)) for k in keys}
        print(f"steps {first + 1}-{first + len(rows)}: " + " ".join(f"{k} {v:+.2f}" for k, v in means.items()),
              flush=True)
    print(f"{len(trainer.log)} steps in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    torch.set_num_threads(2)
    main(json.loads(sys.argv[1]) if len(sys.argv) > 1 else {})
