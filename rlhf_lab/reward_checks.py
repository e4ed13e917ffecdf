"""Checks of a trained reward model against the hidden human: accuracy on held-out pairs
(templated ones, and pairs of the SFT model's own samples, which is what RL asks it about)
and the spurious-closer test of notebook 04."""

from __future__ import annotations

from pathlib import Path

from . import cache, models
from .config import Profile
from .preferences import policy_samples, sample_pairs
from .scoring import pair_accuracy, score_responses
from .world import SPURIOUS_CLOSER
from .world.gold import gold_reward

# The checks draw their pairs and samples with the profile's seed plus this: other draws than training's.
CHECK_SEED_OFFSET = 7


def sample_pairs_of(model, tokenizer, prompts, samples_per_prompt: int, max_new_tokens: int, seed: int):
    """Unlabelled pairs of ``model``'s own samples on ``prompts`` (to test a reward model on them)."""
    responses = policy_samples(model, tokenizer, prompts, samples_per_prompt, max_new_tokens, seed)
    return sample_pairs(prompts, responses, samples_per_prompt, seed)


def reward_model_quality(reward_model, tokenizer, profile: Profile, sft_dir: Path, n_pairs: int = 400) -> dict:
    """Held-out accuracy against the gold preference on (a) templated pairs and (b) pairs of
    the SFT model's own samples (what RL will ask the reward model about), by family."""
    world = cache.world_for(profile.seed)
    templated = pair_accuracy(reward_model, tokenizer,
                              world.comparison_pairs(n_pairs, "heldout", seed=profile.seed + CHECK_SEED_OFFSET))
    sft_model = models.load_model(sft_dir, quantize_4bit=profile.quantize_4bit, device=profile.device,
                                  trainable=False)
    on_samples = pair_accuracy(reward_model, tokenizer, sample_pairs_of(
        sft_model, tokenizer, world.prompts("heldout"), 4, profile.max_new_tokens, seed=profile.seed + CHECK_SEED_OFFSET))
    return {"heldout_accuracy": templated["accuracy"], "gold_correlation": templated["gold_correlation"],
            "heldout_pairs": templated["pairs"], "accuracy_by_family": templated["by_family"],
            "sft_sample_accuracy": on_samples["accuracy"], "sft_sample_pairs": on_samples["pairs"],
            "sft_sample_accuracy_by_family": on_samples["by_family"]}


def closer_effect(reward_model, tokenizer, world, n_responses: int = 200, seed: int = 11) -> dict:
    """Score held-out responses without the spurious closer, then with it appended.

    Returns per-response changes of the reward model's score and of the gold reward."""
    pairs = world.comparison_pairs(n_responses, "heldout", seed=seed)
    items = [(p.prompt, p.response_a) for p in pairs if SPURIOUS_CLOSER not in p.response_a]
    users = [p.text for p, _ in items]
    plain = [r for _, r in items]
    closed = [f"{r} {SPURIOUS_CLOSER}" for r in plain]
    rm_plain = score_responses(reward_model, tokenizer, users, plain)
    rm_closed = score_responses(reward_model, tokenizer, users, closed)
    gold_plain = [gold_reward(p, r).total for p, r in zip((p for p, _ in items), plain)]
    gold_closed = [gold_reward(p, r).total for p, r in zip((p for p, _ in items), closed)]
    return {
        "n": len(items),
        "rm_change": (rm_closed - rm_plain).tolist(),
        "gold_change": [c - p for p, c in zip(gold_plain, gold_closed)],
        "example": (items[0][0].text, plain[0], closed[0], rm_plain[0].item(), rm_closed[0].item(),
                    gold_plain[0], gold_closed[0]),
    }
