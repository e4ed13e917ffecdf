"""A control with a known answer: PPO paid only for a polite opener. Behind the issue "RLHF that
works in the lab world".

The reward is 1 when a response opens politely ("Sure!", "Happy to help.", "Good question."),
else 0. The right answer is known: open politely, change nothing else. SFT opens politely on
about 30% of held-out samples. Each variant trains PPO from seed 0's SFT model for 30 steps, then
samples every held-out prompt x 4 and reports the polite rate, the well-formed rate (text that
parses as the world's sentences), how often an opener turns up *after* the start ("Sure! ToSure!",
the leak) and the KL to SFT.

Variants: the course's LoRA policy at two learning rates, full fine-tuning (a frozen copy as the
reference) at two, and LoRA with the advantage kept on the first response token only (perfect
credit assignment: only the token that chooses the opener is pushed; an override of
``gae_advantages``). If the leak were advantage noise on the later tokens, the last variant would
not leak.

    RLHF_LAB_CACHE=<a warm cache> python experiments/opener_control.py

About 4 minutes on 2 CPU cores with SFT cached. Writes experiments/results/opener_control.json.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from _common import machine, save  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from rlhf_lab import cache, losses, models  # noqa: E402
from rlhf_lab import evaluate as E  # noqa: E402
from rlhf_lab.config import get_profile  # noqa: E402
from rlhf_lab.ppo import PPOTrainer  # noqa: E402
from rlhf_lab.stages.ppo import default_ppo_config  # noqa: E402
from rlhf_lab.stages.pretrain import get_tokenizer  # noqa: E402
from rlhf_lab.stages.sft import get_sft_model_dir  # noqa: E402
from rlhf_lab.evaluate import opener_after_start, opens_politely  # noqa: E402
from rlhf_lab.world.parse import parse_response  # noqa: E402

STEPS = 30
VARIANTS = {
    "lora lr 1e-4 (the course's default)": {"learning_rate": 1e-4},
    "lora lr 3e-4": {"learning_rate": 3e-4},
    "full fine-tuning lr 3e-5": {"learning_rate": 3e-5, "full": True},
    "full fine-tuning lr 1e-4": {"learning_rate": 1e-4, "full": True},
    "lora lr 3e-4, advantage on the first token only": {"learning_rate": 3e-4, "first_token_only": True,
                                                        "whiten_advantages": False},
}


def measure(policy, tokenizer, world, prompts, reference) -> dict:
    metrics, responses = E.evaluate_policy(policy, tokenizer, world, prompts, 4, seed=1, reference=reference)
    return {"polite": sum(map(opens_politely, responses)) / len(responses),
            "well_formed": metrics["well_formed_rate"],
            "opener_leak": sum(map(opener_after_start, responses)) / len(responses),
            "kl_to_sft": metrics["kl_to_ref"], "gold": metrics["gold_ci"]["mean"],
            "examples_not_well_formed": [r for r in responses if not parse_response(r).well_formed][:5]}


def run_variant(profile, tokenizer, world, sft_dir, prompts, changes: dict) -> dict:
    changes = dict(changes)
    full, first_only = changes.pop("full", False), changes.pop("first_token_only", False)
    torch.manual_seed(0)
    policy = models.load_model(sft_dir, quantize_4bit=False, device="cpu",
                               lora=None if full else models.LoraSettings.from_profile(profile))
    reference = models.load_model(sft_dir, quantize_4bit=False, device="cpu", trainable=False) if full else None
    trainer = PPOTrainer(policy, tokenizer, lambda p, r: torch.tensor([float(opens_politely(x)) for x in r]),
                         default_ppo_config(profile, steps=STEPS, **changes), ref_model=reference,
                         overrides={"gae_advantages": losses.first_token_advantages} if first_only else None)
    start = time.perf_counter()
    trainer.train([p.text for p in world.prompts("train")], progress=False)
    seconds = time.perf_counter() - start
    return {**measure(policy, tokenizer, world, prompts, reference if full else "adapter-off"),
            "train_seconds": round(seconds, 1)}


def main():
    profile = get_profile("tiny", seed=0)
    tokenizer, world = get_tokenizer(profile), cache.world_for(0)
    prompts = E.heldout_prompts(world)
    sft_dir = get_sft_model_dir(profile, progress=False)
    sft = models.load_model(sft_dir, quantize_4bit=False, device="cpu")
    results = {"sft": measure(sft, tokenizer, world, prompts, None)}
    print("sft", {k: v for k, v in results["sft"].items() if k != "examples_not_well_formed"}, flush=True)
    for name, changes in VARIANTS.items():
        results[name] = run_variant(profile, tokenizer, world, sft_dir, prompts, changes)
        print(name, {k: (round(v, 3) if isinstance(v, float) else v) for k, v in results[name].items()
                     if k != "examples_not_well_formed"}, flush=True)
    save("opener_control", {"machine": machine(), "steps": STEPS, "variants": VARIANTS, "results": results})


if __name__ == "__main__":
    main()
