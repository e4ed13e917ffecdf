"""Reward-model variants on one seed's SFT model: how accurate each is against the hidden human,
on pairs of SFT samples (8 per held-out prompt, what RL asks it about) and on templated held-out
pairs, overall and by family. Behind the issue "RLHF that works in the lab world" (target 85%).

    RLHF_LAB_CACHE=<a warm cache> python experiments/reward_variants.py '{}' '{"lora": null, "learning_rate": 3e-4}' \
        '{"lora": 64}' '{"epochs": 6.0}'

Each argument is a JSON dict of RewardSettings changes, plus ``lora``: null (full fine-tuning)
or a LoRA rank (alpha = 2 x rank); omitted: the profile's LoRA. One JSON line per variant on
stdout (record them in experiments/results/sweeps.json, reference_points). About 1-3 min each
on 2 CPU cores with SFT cached.
"""

import json
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from rlhf_lab import cache, models, reward_checks, scoring  # noqa: E402
from rlhf_lab.config import get_profile  # noqa: E402
from rlhf_lab.stages import reward  # noqa: E402
from rlhf_lab.stages.pretrain import get_tokenizer  # noqa: E402
from rlhf_lab.stages.sft import get_sft_model_dir  # noqa: E402

PROFILE_LORA = "profile"


def with_reward_lora(lora):
    """models.load_model, but a reward model gets ``lora`` (None: full fine-tuning, int: rank)."""
    load = models.load_model

    def load_model(path, *, kind="causal_lm", **kwargs):
        if kind == "reward" and lora != PROFILE_LORA:
            kwargs["lora"] = None if lora is None else models.LoraSettings(lora, 2 * lora, 0.0)
        return load(path, kind=kind, **kwargs)
    return load_model


def main(variants: list[dict]) -> None:
    profile = get_profile("tiny")
    tokenizer, world = get_tokenizer(profile), cache.world_for(profile.seed)
    sft = models.load_model(get_sft_model_dir(profile, progress=False), quantize_4bit=False, device="cpu",
                            trainable=False)
    sample_pairs = reward_checks.sample_pairs_of(sft, tokenizer, world.prompts("heldout"), 8, profile.max_new_tokens, seed=7)
    templated = world.comparison_pairs(400, "heldout", seed=7)
    original = reward.models.load_model
    for changes in variants:
        changes = dict(changes)
        lora = changes.pop("lora", PROFILE_LORA)
        reward.models.load_model = with_reward_lora(lora)
        try:
            start = time.perf_counter()
            settings = reward.RewardSettings(**changes)
            model, _, _ = reward.train_reward_model(profile, settings, progress=False, measure_quality=False,
                                                    sft_dir=get_sft_model_dir(profile, settings.sft, progress=False))
        finally:
            reward.models.load_model = original
        on_samples, on_templated = scoring.pair_accuracy(model, tokenizer, sample_pairs), \
            scoring.pair_accuracy(model, tokenizer, templated)
        print(json.dumps({"lora": lora, **changes, "sec": round(time.perf_counter() - start),
                          "sft_sample": round(on_samples["accuracy"], 3), "n": on_samples["pairs"],
                          "sft_by_family": {k: round(v, 2) for k, v in on_samples["by_family"].items()},
                          "templated": round(on_templated["accuracy"], 3),
                          "templ_by_family": {k: round(v, 2) for k, v in on_templated["by_family"].items()}}),
              flush=True)


if __name__ == "__main__":
    torch.set_num_threads(2)
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main([json.loads(a) for a in sys.argv[1:]])
