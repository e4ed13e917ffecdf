"""Online DPO (Guo et al. 2024): DPO's loss on pairs the policy samples while it trains.

Offline DPO (:mod:`rlhf_lab.stages.dpo`) learns from a fixed set of comparisons, written or
sampled before training. Online DPO samples two answers to each prompt of a batch from the
*current* policy, lets a judge pick the better one, and takes one DPO step on those fresh pairs,
against the SFT model. The judge here is PPO's reward: the reward model (AI feedback, RLAIF) or
the hidden human (``reward="gold"``, a control). It is DPO's loss with PPO's data.

It runs as TRL's ``OnlineDPOTrainer`` (``trl.experimental.online_dpo``) on the SFT model with a
fresh LoRA adapter, with the same reward function as RLOO and GRPO
(:func:`rlhf_lab.stages.group_rl.reward_function`) and PPO's episode budget: ``episodes``
sampled answers in all, two per prompt. Tiny profile only so far: TRL keeps a copy of the
policy as its reference when the policy already carries an adapter.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..config import Profile
from ..ppo import PPOSettings
from .builder import Builder
from .common import trainer_arguments
from .group_rl import REWARDS, cache_settings, train_against_reward
from .reward import RewardSettings, get_reward_model_dir


@dataclasses.dataclass(frozen=True)
class OnlineDPOSettings:
    """One online DPO run. ``episodes`` (answers sampled, two per prompt) defaults to PPO's budget;
    ``prompts_per_step`` prompts make one batch of pairs and one optimizer step."""

    reward: str = "reward_model"
    episodes: int = PPOSettings.steps * PPOSettings.batch_size
    prompts_per_step: int = 16
    beta: float = 0.1  # TRL's and Guo et al.'s default
    learning_rate: float = 5e-4  # the course's offline DPO's (stages/dpo.py)
    max_new_tokens: int = PPOSettings.max_new_tokens
    temperature: float = PPOSettings.temperature
    seed: int = PPOSettings.seed

    def __post_init__(self):
        if self.reward not in REWARDS:
            raise ValueError(f"reward={self.reward!r}: use one of {', '.join(REWARDS)}.")
        if self.episodes % (2 * self.prompts_per_step):
            raise ValueError(f"episodes ({self.episodes}) must be a multiple of 2 x prompts_per_step "
                             f"({2 * self.prompts_per_step}): each step samples two answers per prompt.")

    @property
    def steps(self) -> int:
        """Optimizer steps: one per batch of ``prompts_per_step`` pairs."""
        return self.episodes // (2 * self.prompts_per_step)


def trl_config(profile: Profile, settings: OnlineDPOSettings, output_dir: Path, progress: bool):
    from trl.experimental.online_dpo import OnlineDPOConfig

    return OnlineDPOConfig(
        **trainer_arguments(profile, output_dir, disable_tqdm=not progress, seed=settings.seed,
                            data_seed=settings.seed, logging_first_step=False, logging_steps=4),
        per_device_train_batch_size=settings.prompts_per_step,
        max_steps=settings.steps,
        max_new_tokens=settings.max_new_tokens,
        temperature=settings.temperature, top_p=1.0, top_k=0,
        beta=[settings.beta],
        learning_rate=settings.learning_rate, lr_scheduler_type="constant", warmup_steps=0,
    )


# TRL's log names -> the names our PPO's history uses (TRL's objective/kl is already per response).
HISTORY_NAMES = {"objective/scores": "reward", "objective/kl": "kl", "objective/entropy": "entropy",
                 "rewards/margins": "margin", "rewards/accuracies": "pair_accuracy", "loss": "loss"}


def step_history(log_history: list[dict]) -> list[dict]:
    """One row per logged step, in our PPO's names."""
    return [{ours: logged[theirs] for theirs, ours in HISTORY_NAMES.items() if theirs in logged}
            for logged in log_history if "objective/scores" in logged]


def train_online_dpo(profile: Profile, settings: OnlineDPOSettings, out_dir: Path | None = None,
                     reward_dir: Path | None = None, progress: bool = True):
    """Train an online DPO policy with TRL. Returns (trainer, report); saves the adapter to
    out_dir/adapter. The report has the wall time of training alone (no model loading)."""
    from trl.experimental.online_dpo import OnlineDPOTrainer

    trainer, report = train_against_reward("online_dpo", OnlineDPOTrainer, trl_config, step_history, profile, settings,
                                           out_dir, reward_dir, progress)
    if progress:
        print(f"Online DPO: {settings.episodes} episodes ({settings.steps} steps of {settings.prompts_per_step} pairs) "
              f"in {report['seconds']:.0f} s.")
    return trainer, report


def get_online_dpo_dir(profile: Profile, settings: OnlineDPOSettings | None = None,
                       reward_settings: RewardSettings | None = None, progress: bool = True,
                       builder: Builder | None = None) -> Path:
    """The trained online DPO policy's directory (its adapter), trained if missing."""
    settings = settings or OnlineDPOSettings(seed=profile.seed)
    builder = builder or Builder(progress)
    reward_dir = get_reward_model_dir(profile, reward_settings, builder=builder)
    return builder.build("online_dpo", cache_settings("online_dpo", profile, settings, reward_dir),
                         lambda out: train_online_dpo(profile, settings, out, reward_dir, progress=builder.progress))
