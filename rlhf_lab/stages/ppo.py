"""Stage 3: RL fine-tuning of the SFT policy against the reward model, with our PPO.

The policy is the SFT model with a fresh LoRA adapter; the reference (for the KL
penalty) is the same model with the adapter off. The reward model scores each sampled
response; the gold reward is logged alongside, but the policy never sees it: that is how
the notebooks can show when the reward model's score and the truth part ways.

``reward="gold"`` runs the **control**: PPO against the hidden human's gold reward itself,
no reward model at all. It shows the optimiser works before the proxy is blamed (or
trusted): the same trainer, the same settings, a reward with a known answer.

With a 4-bit base (gpu profiles) every role shares ONE base in memory
(:mod:`rlhf_lab.shared_base`): the policy's adapter, the reference (adapters off), the
reward model's adapter and score head, and the value head. The tiny CPU profile loads the
reward model separately, as before.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import torch

from .. import cache, models
from ..config import Profile
from ..evaluate import behaviour_hits, closer_rate
from ..ppo import PPOSettings, PPOTrainer
from ..scoring import scorer
from ..shared_base import load_shared_base
from .builder import Builder
from ..cache import built_from, record_lineage
from .pretrain import get_tokenizer, world_texts
from .reward import RewardSettings, get_reward_model_dir, load_reward_model


REWARDS = ("reward_model", "gold")


def default_ppo_config(profile: Profile, **changes) -> PPOSettings:
    """PPO settings for the profile: PPOSettings's defaults are the tiny profile's; a real
    pretrained model (gpu profiles) needs a far smaller learning rate. Chosen by the model,
    not the device: a gpu profile run on a CPU (as the tests do) trains with the same settings."""
    base = {"max_new_tokens": profile.max_new_tokens, "seed": profile.seed}
    if profile.real_model:
        base.update(learning_rate=2e-5, value_learning_rate=1e-4, mini_batch_size=8)
    return PPOSettings(**{**base, **changes})


LOGGED_BEHAVIOURS = ("over_refusal_rate", "harmful_compliance_rate", "sycophancy_rate", "contrarian_rate",
                     "well_formed_rate")  # per rollout, to watch a hack grow step by step (notebook 07)


def gold_metrics_fn(world):
    """Log, next to the reward model's score, what the policy never sees: the gold reward of
    each rollout, how often it ends with the world's spurious closer, and the rates of the
    behaviours a reward model can be hacked into (:data:`LOGGED_BEHAVIOURS`)."""
    def metrics(prompts, responses):
        hits = behaviour_hits([world.prompt_by_text(p) for p in prompts], responses)
        rates = {name: sum(hits[name][0]) / len(hits[name][0]) for name in LOGGED_BEHAVIOURS if hits[name][0]}
        gold = world.gold_scores(prompts, responses)
        return {"gold_reward": sum(gold) / len(gold),
                "closer_rate": closer_rate(responses), **rates}
    return metrics


def train_ppo(profile: Profile, config: PPOSettings | None = None, out_dir: Path | None = None,
              reward_dir: Path | None = None, progress: bool = True, overrides=None, reward: str = "reward_model",
              accelerator=None):
    """Train the PPO policy. Returns (trainer, report); saves the adapter to out_dir/adapter.

    ``reward``: "reward_model" (RLHF) or "gold" (the control run: the hidden human itself).
    ``accelerator``: data parallel over the processes of ``accelerate launch`` (see
    :class:`rlhf_lab.ppo.PPOTrainer`); ``config.batch_size`` is then per process.
    """
    if reward not in REWARDS:
        raise ValueError(f"reward={reward!r}: use one of {', '.join(REWARDS)}.")
    config = config or default_ppo_config(profile)
    reward_dir = reward_dir or get_reward_model_dir(profile, progress=progress)
    sft_dir = built_from(reward_dir)  # the policy starts from the reward model's own SFT model
    torch.manual_seed(config.seed)  # the LoRA and value-head init, whatever ran before in this process
    tokenizer = get_tokenizer(profile)
    world = cache.world_for(profile.seed)
    if reward == "reward_model" and profile.quantize_4bit:
        # One 4-bit base for policy, reference, reward model and value head (not two copies).
        shared = load_shared_base(profile, reward_dir, sft_dir=sft_dir, tokenizer=tokenizer)
        policy, reward_fn = shared.policy, shared.reward_fn
    else:
        policy = models.load_model(sft_dir, quantize_4bit=profile.quantize_4bit, device=profile.device,
                                   lora=models.LoraSettings.from_profile(profile))
        # The trainer moves the scores to the policy's device.
        reward_fn = world.gold_scores if reward == "gold" else scorer(load_reward_model(profile, reward_dir)[0], tokenizer)

    trainer = PPOTrainer(policy, tokenizer, reward_fn, config, metrics_fn=gold_metrics_fn(world), overrides=overrides,
                         accelerator=accelerator, pretraining_texts=ptx_texts(profile, config, world))
    start = time.perf_counter()
    history = trainer.train([p.text for p in world.prompts("train")], progress=progress)
    report = {"seconds": time.perf_counter() - start, "history": history, "config": dataclasses.asdict(config),
              "reward": reward}
    if out_dir is not None:
        trainer.save(Path(out_dir) / "adapter")
        (Path(out_dir) / "ppo.json").write_text(json.dumps(report))
        record_lineage(out_dir, sft_dir)
    return trainer, report


PTX_DOCUMENTS = 2000  # pretraining documents PPO-ptx cycles through (the first ones pretraining saw)


def ptx_texts(profile: Profile, config: PPOSettings, world) -> list[str] | None:
    """The pretraining text PPO-ptx keeps the policy on: the tiny base model's own corpus."""
    if config.ptx_coef == 0:
        return None
    if profile.real_model:
        raise ValueError("ptx_coef > 0 needs the base model's pretraining text, which the course has only for the "
                         "tiny profile: use PPOTrainer(..., pretraining_texts=...) with text of your model's "
                         "pretraining distribution, or set ptx_coef=0.")
    return world_texts(world, PTX_DOCUMENTS)


def ppo_cache_settings(profile: Profile, config: PPOSettings, reward_dir: Path, reward: str = "reward_model") -> dict:
    upstream = {"sft": built_from(reward_dir)} if reward == "gold" else {"reward": reward_dir,
                                                                         "sft": built_from(reward_dir)}
    settings = dataclasses.asdict(config)
    if not config.ptx_coef:  # plain PPO keeps the cache key it had before PPO-ptx existed
        settings.pop("ptx_coef"), settings.pop("ptx_batch_size")
    return {"stage": "ppo", "reward_source": reward, **cache.lineage(**upstream),
            "world": cache.world_fingerprint(profile.seed), **settings}


def get_ppo_model_dir(profile: Profile, config: PPOSettings | None = None,
                      reward_settings: RewardSettings | None = None, progress: bool = True,
                      reward: str = "reward_model", reward_dir: Path | None = None,
                      builder: Builder | None = None) -> Path:
    """The trained PPO policy's directory (its adapter), trained if missing. ``reward="gold"``:
    the control run against the gold reward (it starts from the same SFT model).
    ``reward_dir``: another trained reward model (e.g. iterated RLHF's second one) instead of
    the one ``reward_settings`` describe."""
    config = config or default_ppo_config(profile)
    builder = builder or Builder(progress)
    reward_dir = reward_dir or get_reward_model_dir(profile, reward_settings, builder=builder)
    local = builder.per_process(config, ("batch_size", "mini_batch_size"))
    return builder.build("ppo", ppo_cache_settings(profile, config, reward_dir, reward),
                         lambda out: train_ppo(profile, local, out, reward_dir, progress=builder.progress,
                                               reward=reward, accelerator=builder.accelerator))
