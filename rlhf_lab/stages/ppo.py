"""Stage 3: RL fine-tuning of the SFT policy against the reward model, with our PPO.

The policy is the SFT model with a fresh LoRA adapter; the reference (for the KL
penalty) is the same model with the adapter off. The reward model scores each sampled
response; the gold reward is logged alongside, but the policy never sees it: that is how
the notebooks can show when the reward model's score and the truth part ways.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from .. import cache, models
from ..config import Profile
from ..ppo import PPOConfig, PPOTrainer
from .common import built_from, record_lineage
from .reward import RewardSettings, get_reward_model_dir, load_reward_model, score_responses


def default_ppo_config(profile: Profile, **changes) -> PPOConfig:
    """PPO settings for the profile (the gpu profile's real model needs a far smaller rate)."""
    base = {"max_new_tokens": profile.max_new_tokens, "seed": profile.seed}
    if profile.name == "gpu":
        base.update(learning_rate=2e-5, batch_size=32, mini_batch_size=8)
    else:
        base.update(steps=40, batch_size=32, mini_batch_size=16, learning_rate=3e-4, kl_coef=0.2)
    base.update(changes)
    return PPOConfig(**base)


def gold_metrics_fn(world):
    """Log the gold reward of each rollout next to the reward model's score."""
    from statistics import mean

    by_text = {p.text: p for split in ("train", "heldout") for p in world.prompts(split)}

    def metrics(prompts, responses):
        return {"gold_reward": mean(world.gold_reward(by_text[p], r).total for p, r in zip(prompts, responses))}

    return metrics


def train_ppo(profile: Profile, config: PPOConfig | None = None, out_dir: Path | None = None,
              reward_dir: Path | None = None, progress: bool = True, overrides=None):
    """Train the PPO policy. Returns (trainer, report); saves the adapter to out_dir/adapter."""
    from ..world import World

    config = config or default_ppo_config(profile)
    reward_dir = reward_dir or get_reward_model_dir(profile, progress=progress)
    sft_dir = built_from(reward_dir)  # the policy starts from the reward model's own SFT model
    reward_model, tokenizer = load_reward_model(profile, reward_dir)
    policy = models.load_model(sft_dir, quantize_4bit=profile.quantize_4bit, device=profile.device,
                               lora=models.LoraSettings.from_profile(profile))
    world = World(profile.seed)

    def reward_fn(prompts, responses):
        return score_responses(reward_model, tokenizer, prompts, responses).to(models.model_device(policy))

    trainer = PPOTrainer(policy, tokenizer, reward_fn, config, metrics_fn=gold_metrics_fn(world), overrides=overrides)
    start = time.perf_counter()
    history = trainer.train([p.text for p in world.prompts("train")], progress=progress)
    report = {"seconds": time.perf_counter() - start, "history": history, "config": dataclasses.asdict(config)}
    if out_dir is not None:
        trainer.save(Path(out_dir) / "adapter")
        (Path(out_dir) / "ppo.json").write_text(json.dumps(report))
        record_lineage(out_dir, sft_dir)
    return trainer, report


def get_ppo_model_dir(profile: Profile, config: PPOConfig | None = None,
                      reward_settings: RewardSettings | None = None, progress: bool = True) -> Path:
    config = config or default_ppo_config(profile)
    reward_dir = get_reward_model_dir(profile, reward_settings, progress=progress)
    settings = {"stage": "ppo", **cache.lineage(reward=reward_dir, sft=built_from(reward_dir)),
                **dataclasses.asdict(config)}
    return cache.build_cached("ppo", settings,
                              lambda out: train_ppo(profile, config, out, reward_dir, progress=progress))
