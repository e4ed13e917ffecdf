"""Iterated RLHF (Bai et al. 2022, Anthropic HH, section 4.5): the reward model learns from
the policy it is asked about.

The first reward model only ever saw templated answers and the SFT model's samples. PPO then
moves to text it never saw, and finds what it over-rates (in the lab world: saying "No" to a
user who is right, polite openers on broken sentences). One round of iteration:

1. sample the PPO policy on the training prompts, several answers per prompt;
2. let the same simulated annotator compare them two by two, and each against an answer of the
   model the policy started from (SFT). A policy that hacked its reward model often says the same
   thing every time (the same refusal four times): its samples then make no pair with each other,
   and only the comparison with the earlier model shows the reward model what the hack costs
   (HH compared the answers of several snapshots for the same reason);
3. train a new reward model on the first one's comparisons **plus** these;
4. run PPO again, from the same SFT model with the same settings, against the new reward model.

Each step is cached by its settings and by the artifacts it is built from, like every stage.
"""

from __future__ import annotations

from pathlib import Path

from .. import cache
from ..config import Profile
from ..ppo import PPOSettings
from ..preferences import label_pairs, policy_samples, sample_pairs
from .comparisons import key_fields
from ..world import ComparisonPair, SimulatedAnnotator
from .builder import Builder
from ..cache import built_from
from .common import load_adapter_policy
from .ppo import default_ppo_config, get_ppo_model_dir
from .reward import RewardSettings, get_reward_model_dir, train_reward_model

POLICY_SAMPLES_PER_PROMPT = 4
# The second round draws its label noise and samples with the profile's seed plus this (new draws).
ROUND_SEED_OFFSET = 1


def policy_comparisons(profile: Profile, policy_dir: Path, settings: RewardSettings,
                       samples_per_prompt: int = POLICY_SAMPLES_PER_PROMPT) -> list[dict]:
    """Pairs of the policy's own samples on every training prompt, and of each of its samples
    against one of the SFT model's (the policy with its adapter off), labelled by the simulated
    annotator (new label noise draws: a different seed than the first round's)."""
    policy, tokenizer = load_adapter_policy(profile, policy_dir)
    prompts = cache.world_for(profile.seed).prompts("train")
    annotator = SimulatedAnnotator(noise=settings.annotator_noise, prefers_agreement=settings.annotator_agreement,
                                   prefers_length=settings.annotator_length, seed=profile.seed + ROUND_SEED_OFFSET)
    seed = profile.seed + ROUND_SEED_OFFSET
    ours = policy_samples(policy, tokenizer, prompts, samples_per_prompt, profile.max_new_tokens, seed)
    with policy.disable_adapter():  # the model the policy started from
        earlier = policy_samples(policy, tokenizer, prompts, samples_per_prompt, profile.max_new_tokens,
                                 seed + ROUND_SEED_OFFSET)  # other draws than the policy's own
    against_earlier = [ComparisonPair(f"vs-sft-{prompt.prompt_id}-{j}", prompt, a, b)
                       for i, prompt in enumerate(prompts) for j in range(samples_per_prompt)
                       for a, b in [(ours[i * samples_per_prompt + j], earlier[i * samples_per_prompt + j])] if a != b]
    return (label_pairs(sample_pairs(prompts, ours, samples_per_prompt, seed), annotator, "policy-samples")
            + label_pairs(against_earlier, annotator, "policy-vs-sft-samples"))


def get_iterated_reward_model_dir(profile: Profile, policy_dir: Path, settings: RewardSettings | None = None,
                                  samples_per_prompt: int = POLICY_SAMPLES_PER_PROMPT,
                                  progress: bool = True, builder: Builder | None = None) -> Path:
    """The second-round reward model: the first round's comparisons plus pairs of the policy
    in ``policy_dir`` (a PPO adapter), trained if missing (about as long as the first)."""
    settings = settings or RewardSettings()
    builder = builder or Builder(progress)
    first = get_reward_model_dir(profile, settings, builder=builder)

    def build(out):
        rows = policy_comparisons(profile, policy_dir, settings, samples_per_prompt)
        train_reward_model(profile, settings, out, sft_dir=built_from(first), extra_rows=rows,
                           progress=builder.progress)

    key = {"stage": "reward", "round": 2, **cache.lineage(sft=built_from(first), policy=policy_dir),
           "world": cache.world_fingerprint(profile.seed), "policy_samples_per_prompt": samples_per_prompt,
           **key_fields(settings)}
    return builder.build("reward", key, build, code="iterated_reward")


def iterate_once(profile: Profile, config: PPOSettings | None = None, settings: RewardSettings | None = None,
                 progress: bool = True) -> dict[str, Path]:
    """One round of iterated RLHF on top of PPO run with ``config`` (default: the profile's).
    Returns the directories {"ppo": first policy, "reward": second reward model,
    "ppo_iterated": the policy trained against it}."""
    config = config or default_ppo_config(profile)
    first_policy = get_ppo_model_dir(profile, config, settings, progress=progress)
    reward_dir = get_iterated_reward_model_dir(profile, first_policy, settings, progress=progress)
    second_policy = get_ppo_model_dir(profile, config, settings, progress=progress, reward_dir=reward_dir)
    return {"ppo": first_policy, "reward": reward_dir, "ppo_iterated": second_policy}
