"""PPO, RLOO and GRPO side by side: the same SFT model, reward model, training prompts and
episode budget; then the same held-out evaluation (notebook 05b, benchmarks/bench_group_rl.py).

A run is (label, method, reward): our PPO (:mod:`rlhf_lab.ppo`) or TRL's RLOO / GRPO
(:mod:`rlhf_lab.stages.group_rl`), against the reward model or, for GRPO, a verifiable reward
(the gold reward's helpful component: is the answer right?).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import cache, models
from .config import Profile
from .evaluate import evaluate_policy, gold_gain_ci, heldout_prompts, repeat_prompts
from .ppo import PPOSettings
from .stages.common import load_adapter_policy
from .stages.group_rl import GroupRLSettings, get_group_rl_dir, train_group_rl
from .stages.ppo import get_ppo_model_dir, train_ppo
from .stages.pretrain import get_tokenizer
from .stages.reward import get_reward_model_dir


@dataclass(frozen=True)
class Run:
    label: str
    method: str  # "ppo", "rloo" or "grpo"
    reward: str = "reward_model"  # or "verifiable" / "gold"


RUNS = (Run("PPO (ours)", "ppo"), Run("RLOO (TRL)", "rloo"), Run("GRPO (TRL)", "grpo"),
        Run("GRPO, verifiable reward", "grpo", "verifiable"))


def trained_report(run: Run, directory: Path, config: PPOSettings) -> dict:
    """What every run reports, whichever trainer made it: wall time, episodes, time per 1,000
    episodes, and the per-rollout history (reward, gold_reward, kl, ...)."""
    if run.method == "ppo":
        report = json.loads((directory / "ppo.json").read_text())
        episodes = config.steps * config.batch_size
        return {"seconds": report["seconds"], "episodes": episodes,
                "seconds_per_1000_episodes": 1000 * report["seconds"] / episodes, "history": report["history"]}
    report = json.loads((directory / "group_rl.json").read_text())
    return {key: report[key] for key in ("seconds", "episodes", "seconds_per_1000_episodes", "history")}


def train_side_by_side(profile: Profile, config: PPOSettings, runs=RUNS, cached: bool = True,
                       progress: bool = True) -> dict[str, tuple[Path, dict]]:
    """Train every run from the same SFT model and reward model with ``config``'s budget.

    ``cached``: take each policy from the cache (trained there if missing; its time is the one
    measured when it was trained). ``cached=False``: train all of them now, in this process,
    into a fresh folder: the side-by-side timing the benchmark reports.
    Returns {label: (policy directory, report)}.
    """
    reward_dir = get_reward_model_dir(profile, progress=progress)
    scratch = None if cached else Path(tempfile.mkdtemp(prefix="rlhf_lab_methods_"))
    trained = {}
    for run in runs:
        if run.method == "ppo":
            if cached:
                directory = get_ppo_model_dir(profile, config, progress=progress, reward=run.reward)
            else:
                directory = scratch / f"ppo_{run.reward}"
                train_ppo(profile, config, directory, reward_dir, progress=progress, reward=run.reward)
        else:
            settings = GroupRLSettings.like_ppo(config, run.method, run.reward)
            if cached:
                directory = get_group_rl_dir(profile, settings, progress=progress)
            else:
                directory = scratch / f"{run.method}_{run.reward}"
                train_group_rl(profile, settings, directory, reward_dir, progress=progress)
        trained[run.label] = (directory, trained_report(run, directory, config))
    return trained


def evaluate_side_by_side(profile: Profile, trained: dict[str, tuple[Path, dict]],
                          samples_per_prompt: int | None = None, seed: int | None = None) -> tuple[dict[str, dict], dict[str, list[str]]]:
    """SFT and every trained policy on the held-out prompts, ``samples_per_prompt`` each, with the
    same sampling seed (common random numbers): metrics with 95% intervals, the paired gold gain
    over SFT, and each run's time per 1,000 episodes. Returns (metrics, responses) by label."""
    seed = profile.seed * 100 + 50 if seed is None else seed
    samples_per_prompt = samples_per_prompt or profile.eval_samples
    world = cache.world_for(profile.seed)
    tokenizer = get_tokenizer(profile)
    prompts = heldout_prompts(world, profile.eval_prompts)
    repeated = repeat_prompts(prompts, samples_per_prompt)
    sft_dir = cache.built_from(next(iter(trained.values()))[0])
    sft = models.load_model(sft_dir, quantize_4bit=profile.quantize_4bit, device=profile.device, trainable=False)
    metrics, responses = {}, {}
    metrics["SFT"], responses["SFT"] = evaluate_policy(sft, tokenizer, world, prompts, samples_per_prompt,
                                                       profile.max_new_tokens, seed, reference=None)
    for label, (directory, report) in trained.items():
        policy, _ = load_adapter_policy(profile, directory)
        metrics[label], responses[label] = evaluate_policy(policy, tokenizer, world, prompts, samples_per_prompt,
                                                           profile.max_new_tokens, seed)
        # the gold gain alone (notebook 05b's table shows no win rate: gains_over_sft would bootstrap it for nothing)
        metrics[label]["gold_gain_vs_sft"] = gold_gain_ci(repeated, responses[label], responses["SFT"])
        metrics[label]["seconds_per_1000_episodes"] = report["seconds_per_1000_episodes"]
        metrics[label]["episodes"] = report["episodes"]
    return metrics, responses
