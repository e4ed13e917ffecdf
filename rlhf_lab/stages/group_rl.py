"""RLOO and GRPO: RL without a critic, with TRL's own trainers, beside the course's PPO.

PPO learns a value head to say how good a state is, and uses it as the baseline of every
token's advantage. RLOO (Ahmadian et al. 2024) and GRPO (Shao et al. 2024) drop the value
head: they sample several responses per prompt and baseline each one against its siblings
(RLOO: the mean of the others; GRPO: the group's mean, divided by its standard deviation;
the formulas are :func:`rlhf_lab.losses.leave_one_out_advantages` and
:func:`rlhf_lab.losses.group_relative_advantages`).

Here they run as ``trl.RLOOTrainer`` and ``trl.GRPOTrainer`` on the SFT model with a fresh
LoRA adapter (the reference is the adapter switched off), on the same training prompts, the
same episode budget and generation settings as :class:`rlhf_lab.ppo.PPOSettings`
(:meth:`GroupRLSettings.like_ppo`). The KL to SFT is set explicitly (``kl_coef``): GRPO's
default ``beta`` is 0, no KL at all. RLOO puts it in the reward (as our PPO does), GRPO in
the loss.

Rewards: ``"reward_model"`` (RLHF), ``"gold"`` (the hidden human, a control) or
``"verifiable"``: the gold reward's helpful component alone, a checkable right answer as in
RL from verifiable rewards (it says nothing about harm, so nothing teaches refusal).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch

from .. import cache, models
from ..config import Profile
from ..ppo import PPOSettings
from ..scoring import scorer
from .builder import Builder
from ..cache import built_from, record_lineage
from .common import run_trainer, scratch_dir, trainer_arguments
from .ppo import default_ppo_config
from .pretrain import get_tokenizer
from .reward import RewardSettings, get_reward_model_dir, load_reward_model

METHODS = ("rloo", "grpo")
PPO_NAMES = {"epochs": "ppo_epochs"}  # GroupRLSettings' fields that PPOSettings names differently
REWARDS = ("reward_model", "gold", "verifiable")


@dataclasses.dataclass(frozen=True)
class GroupRLSettings:
    """One RLOO or GRPO run. Build it with :meth:`like_ppo` to give it PPO's budget.

    A rollout samples ``batch_size`` responses, ``samples_per_prompt`` per prompt; it is used
    for ``epochs`` passes of minibatches of ``mini_batch_size`` (PPO's ``ppo_epochs``; TRL's
    ``num_iterations``), with the ratio clipped to ``1 +- clip_range``. ``steps`` rollouts in all.
    """

    method: str = "grpo"
    reward: str = "reward_model"
    # The budget defaults to PPO's (each written once, in PPOSettings):
    steps: int = PPOSettings.steps
    batch_size: int = PPOSettings.batch_size
    samples_per_prompt: int = PPOSettings.samples_per_prompt
    mini_batch_size: int = PPOSettings.mini_batch_size
    epochs: int = PPOSettings.ppo_epochs
    learning_rate: float = PPOSettings.learning_rate
    kl_coef: float = PPOSettings.kl_coef  # TRL's beta, set on purpose (GRPO's default is 0: no KL to SFT)
    clip_range: float = PPOSettings.clip_range
    max_grad_norm: float = PPOSettings.max_grad_norm
    max_new_tokens: int = PPOSettings.max_new_tokens
    temperature: float = PPOSettings.temperature
    seed: int = PPOSettings.seed

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"method={self.method!r}: use one of {', '.join(METHODS)}.")
        if self.reward not in REWARDS:
            raise ValueError(f"reward={self.reward!r}: use one of {', '.join(REWARDS)}.")
        if self.batch_size % self.mini_batch_size or self.mini_batch_size % self.samples_per_prompt:
            raise ValueError(f"batch_size ({self.batch_size}) must be a multiple of mini_batch_size "
                             f"({self.mini_batch_size}), itself a multiple of samples_per_prompt "
                             f"({self.samples_per_prompt}): TRL keeps each prompt's samples together.")

    @classmethod
    def like_ppo(cls, config: PPOSettings, method: str, reward: str = "reward_model", **changes) -> "GroupRLSettings":
        """The same budget and sampling as a PPO run: rollouts, samples per prompt, updates per
        rollout, learning rate, KL weight, clip, generation length, seed."""
        same = {field.name: getattr(config, PPO_NAMES.get(field.name, field.name))
                for field in dataclasses.fields(cls) if field.name not in ("method", "reward")}
        return cls(method=method, reward=reward, **{**same, **changes})

    @property
    def episodes(self) -> int:
        """Responses sampled and scored in the whole run."""
        return self.steps * self.batch_size


def trl_config(profile: Profile, settings: GroupRLSettings, output_dir: Path, progress: bool):
    """TRL's RLOOConfig / GRPOConfig for these settings. One optimizer step per minibatch:
    a rollout feeds ``batch_size / mini_batch_size`` steps per epoch, as in our PPO."""
    from trl import GRPOConfig, RLOOConfig

    steps_per_rollout = settings.batch_size // settings.mini_batch_size
    config_class = GRPOConfig if settings.method == "grpo" else RLOOConfig
    return config_class(
        **trainer_arguments(profile, output_dir, disable_tqdm=not progress, seed=settings.seed, data_seed=settings.seed,
                            logging_first_step=False,
                            logging_steps=steps_per_rollout * settings.epochs),  # one log row per rollout
        per_device_train_batch_size=settings.mini_batch_size,
        steps_per_generation=steps_per_rollout,
        num_iterations=settings.epochs,
        max_steps=settings.steps * steps_per_rollout * settings.epochs,
        num_generations=settings.samples_per_prompt,
        max_completion_length=settings.max_new_tokens,
        temperature=settings.temperature, top_p=1.0, top_k=0,
        learning_rate=settings.learning_rate, lr_scheduler_type="constant", warmup_steps=0,
        max_grad_norm=settings.max_grad_norm,
        beta=settings.kl_coef,
        epsilon=settings.clip_range,
    )


def reward_function(profile: Profile, settings: GroupRLSettings, reward_dir: Path, world, tokenizer):
    """The reward as TRL calls it: ``f(prompts, completions, **kwargs) -> list of floats``.
    It also logs the gold reward of every batch (``gold_reward`` in the trainer's logs),
    which the policy never sees unless it is the reward."""
    if settings.reward == "reward_model":
        score = scorer(load_reward_model(profile, reward_dir)[0], tokenizer)
    elif settings.reward == "gold":
        def score(user_texts, responses):
            return torch.tensor(world.gold_scores(user_texts, responses))
    else:
        def score(user_texts, responses):
            return torch.tensor([world.gold_reward(world.prompt_by_text(u), r).components["helpful"]
                                 for u, r in zip(user_texts, responses)])

    def reward(prompts, completions, log_metric=None, **_):
        user_texts = [messages[-1]["content"] for messages in prompts]
        responses = [messages[-1]["content"].strip() for messages in completions]
        if log_metric is not None:
            gold = world.gold_scores(user_texts, responses)
            log_metric("gold_reward", sum(gold) / len(gold))
        return score(user_texts, responses).tolist()

    reward.__name__ = settings.reward  # the name TRL logs the reward under
    return reward


def train_against_reward(stage: str, trainer_class, trl_config, history, profile: Profile, settings,
                         out_dir: Path | None, reward_dir: Path | None, progress: bool):
    """What RLOO, GRPO and online DPO share: TRL's ``trainer_class`` on the SFT model with a fresh
    LoRA adapter, the world's training prompts and :func:`reward_function`, with the arguments
    ``trl_config(profile, settings, output_dir, progress)``. Returns (trainer, report), the
    report's ``history`` being ``history(log_history)``; saves the adapter to out_dir/adapter
    and the report to out_dir/<stage>.json. The report has the wall time of training alone."""
    from datasets import Dataset

    reward_dir = reward_dir or get_reward_model_dir(profile, progress=progress)
    sft_dir = built_from(reward_dir)  # the same SFT model PPO starts from
    torch.manual_seed(settings.seed)
    tokenizer = get_tokenizer(profile)
    world = cache.world_for(profile.seed)
    policy = models.load_model(sft_dir, quantize_4bit=profile.quantize_4bit, device=profile.device,
                               lora=models.LoraSettings.from_profile(profile))
    prompts = Dataset.from_dict({"prompt": [[{"role": "user", "content": p.text}] for p in world.prompts("train")]})
    scratch = scratch_dir(out_dir, stage)
    trainer = trainer_class(model=policy, reward_funcs=reward_function(profile, settings, reward_dir, world, tokenizer),
                            args=trl_config(profile, settings, scratch / "_trainer", progress),
                            train_dataset=prompts, processing_class=tokenizer)
    seconds = run_trainer(trainer, progress)
    report = {"seconds": seconds, "episodes": settings.episodes,
              "seconds_per_1000_episodes": 1000 * seconds / settings.episodes,
              "history": history(trainer.state.log_history), "settings": dataclasses.asdict(settings)}
    if out_dir is not None:
        trainer.model.save_pretrained(Path(out_dir) / "adapter")
        (Path(out_dir) / f"{stage}.json").write_text(json.dumps(report))
        record_lineage(out_dir, sft_dir)
    return trainer, report


def train_group_rl(profile: Profile, settings: GroupRLSettings, out_dir: Path | None = None,
                   reward_dir: Path | None = None, progress: bool = True):
    """Train an RLOO or GRPO policy with TRL. Returns (trainer, report); saves the adapter to
    out_dir/adapter. The report has the wall time of training alone (no model loading)."""
    from trl import GRPOTrainer, RLOOTrainer

    trainer_class = GRPOTrainer if settings.method == "grpo" else RLOOTrainer
    trainer, report = train_against_reward("group_rl", trainer_class, trl_config, rollout_history, profile, settings,
                                           out_dir, reward_dir, progress)
    if progress:
        print(f"{settings.method.upper()}: {settings.episodes} episodes in {report['seconds']:.0f} s "
              f"({report['seconds_per_1000_episodes']:.1f} s per 1,000).")
    return trainer, report


# TRL's log names -> the names our PPO's history uses, so one plot reads both.
HISTORY_NAMES = {"reward": "reward", "gold_reward": "gold_reward", "kl": "kl", "entropy": "entropy",
                 "completions/mean_length": "response_length"}


def rollout_history(log_history: list[dict]) -> list[dict]:
    """One row per logged rollout, in our PPO's names (TRL logs its kl per token; ours is per response:
    ``kl`` here is TRL's per-token mean times the mean response length)."""
    rows = []
    for logged in log_history:
        if "reward" not in logged:
            continue
        row = {ours: logged[theirs] for theirs, ours in HISTORY_NAMES.items() if theirs in logged}
        if "kl" in row and "response_length" in row:
            row["kl"] = row["kl"] * row["response_length"]
        rows.append(row)
    return rows


def cache_settings(stage: str, profile: Profile, settings, reward_dir: Path) -> dict:
    """The cache key's settings of a run against a reward (RLOO, GRPO, online DPO): the reward
    model is upstream only when it is the reward."""
    upstream = {"sft": built_from(reward_dir)}
    if settings.reward == "reward_model":
        upstream["reward"] = reward_dir
    return {"stage": stage, **cache.lineage(**upstream), "world": cache.world_fingerprint(profile.seed),
            **dataclasses.asdict(settings)}


def get_group_rl_dir(profile: Profile, settings: GroupRLSettings | None = None,
                     reward_settings: RewardSettings | None = None, progress: bool = True,
                     builder: Builder | None = None) -> Path:
    """The trained RLOO / GRPO policy's directory (its adapter), trained if missing.
    Default: GRPO against the reward model with the default PPO run's budget."""
    settings = settings or GroupRLSettings.like_ppo(default_ppo_config(profile), "grpo")
    builder = builder or Builder(progress)
    reward_dir = get_reward_model_dir(profile, reward_settings, builder=builder)
    return builder.build("group_rl", cache_settings("group_rl", profile, settings, reward_dir),
                         lambda out: train_group_rl(profile, settings, out, reward_dir, progress=builder.progress))
