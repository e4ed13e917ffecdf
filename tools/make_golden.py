"""Regenerate the grader's golden numbers: rlhf_lab/grading_cases/golden.json.

The inputs are drawn once from a seeded generator; the expected outputs come from
rlhf_lab's own implementation (losses.py, diversity.py, sampling.py), the one truth the
exercises' solutions are tested against. The "trl/..." entries hold what TRL's own code
(rlhf_lab/grading_cases/trl_reference.py) returns on the same inputs: stored, so that a
check in a notebook does not pay TRL's import time; tests/test_grader.py re-runs TRL and
compares. Run after changing a formula (or upgrading TRL) on purpose:

    python tools/make_golden.py
"""

from __future__ import annotations

import json

import torch

from rlhf_lab import losses
from rlhf_lab.diversity import distinct_n
from rlhf_lab.grading_cases import GOLDEN_PATH, encode, trl_reference
from rlhf_lab.grading_cases.text import BEST_PROMPTS, FakePolicy, fake_score
from rlhf_lab.sampling import best_of_n


def rounded(tensor: torch.Tensor) -> torch.Tensor:
    """Inputs rounded to 4 decimals: short JSON, and the stored inputs are exactly the ones used."""
    return torch.round(tensor * 1e4) / 1e4


def entry(function, *args, **kwargs) -> dict:
    return {"args": list(args), "kwargs": kwargs, "expected": function(*args, **kwargs)}


def build() -> dict:
    g = torch.Generator().manual_seed(1234)
    randn = lambda *shape, scale=1.0: rounded(scale * torch.randn(*shape, generator=g))
    entries = {}

    # Token log-probs: 3 rows of 6 tokens over a vocabulary of 7; prompt and padding masked.
    logits = randn(3, 6, 7, scale=2.0)
    labels = torch.randint(0, 7, (3, 6), generator=g)
    mask = torch.tensor([[0.0, 0, 1, 1, 1, 1], [0, 0, 0, 1, 1, 0], [0, 1, 1, 1, 1, 1]])
    entries["masked_token_logprobs/prompt_and_padding"] = entry(losses.masked_token_logprobs, logits, labels, mask)

    # Preference losses.
    entries["bradley_terry_loss/batch"] = entry(losses.bradley_terry_loss, randn(8, scale=1.5), randn(8, scale=1.5))
    policy_c, policy_r = rounded(-20 + randn(6, scale=3.0)), rounded(-20 + randn(6, scale=3.0))
    ref_c, ref_r = rounded(policy_c + randn(6)), rounded(policy_r + randn(6))
    for beta in (0.1, 0.5):
        entries[f"dpo_loss/beta_{beta}"] = entry(losses.dpo_loss, policy_c, policy_r, ref_c, ref_r, beta=beta)

    # KL: log-probs of sampled tokens under policy and reference.
    logprobs, ref_logprobs = rounded(-torch.rand(3, 5, generator=g) * 3), rounded(-torch.rand(3, 5, generator=g) * 3)
    for kind in ("k1", "k2", "k3"):
        entries[f"kl_estimate/{kind}"] = entry(losses.kl_estimate, logprobs, ref_logprobs, kind=kind)
    mask = torch.tensor([[0.0, 1, 1, 1, 1], [0, 0, 1, 1, 0], [1, 1, 1, 0, 0]])
    scores = randn(3)
    for kind, coef in (("k1", 0.1), ("k3", 0.05)):
        entries[f"kl_penalized_rewards/{kind}"] = entry(
            losses.kl_penalized_rewards, scores, logprobs, ref_logprobs, mask, coef, kind=kind
        )

    # GAE.
    rewards, values = randn(3, 6, scale=0.5), randn(3, 6, scale=0.5)
    mask = torch.tensor([[0.0, 0, 1, 1, 1, 1], [0, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
    entries["gae_advantages/gamma_1_lam_0.95"] = entry(losses.gae_advantages, rewards, values, mask, gamma=1.0, lam=0.95)
    entries["gae_advantages/gamma_0.9_lam_0.8"] = entry(losses.gae_advantages, rewards, values, mask, gamma=0.9, lam=0.8)

    # PPO: new log-probs within +-0.4 of the old ones, so some tokens clip and some do not.
    old_logprobs = rounded(-torch.rand(3, 6, generator=g) * 3)
    new_logprobs = rounded(old_logprobs + (torch.rand(3, 6, generator=g) - 0.5) * 0.8)
    advantages = randn(3, 6)
    for clip in (0.2, 0.1):
        entries[f"ppo_policy_loss/clip_{clip}"] = entry(
            losses.ppo_policy_loss, new_logprobs, old_logprobs, advantages, mask, clip_range=clip
        )
    old_values = randn(3, 6)
    new_values = rounded(old_values + (torch.rand(3, 6, generator=g) - 0.5))
    entries["ppo_value_loss/clip_0.2"] = entry(
        losses.ppo_value_loss, new_values, old_values, randn(3, 6), mask, clip_range_value=0.2
    )

    # Text.
    texts = [
        "The capital of France is Paris .",
        "The capital of France is Paris , of course .",
        "I am sorry , I cannot help with that .",
        "I am sorry , I cannot help with that .",
        "Paris is the capital .",
    ]
    for n in (1, 2, 3):
        entries[f"distinct_n/n_{n}"] = entry(distinct_n, texts, n)
    chosen = best_of_n(list(BEST_PROMPTS), FakePolicy().generate, fake_score, n=4)
    entries["best_of_n/n_4"] = {"args": [list(BEST_PROMPTS)], "kwargs": {"n": 4}, "expected": chosen}
    # Group baselines (RLOO, GRPO): 8 prompts x 4 samples, drawn last so earlier inputs keep their values.
    group_rewards = randn(32)
    entries["leave_one_out_advantages/groups_of_4"] = entry(losses.leave_one_out_advantages, group_rewards, 4)
    entries["group_relative_advantages/groups_of_4"] = entry(losses.group_relative_advantages, group_rewards, 4)
    entries["group_relative_advantages/unscaled"] = entry(losses.group_relative_advantages, group_rewards, 4,
                                                           scale=False)
    entries.update(trl_entries(entries))
    return entries


def trl_entries(entries: dict) -> dict:
    """TRL's results on the inputs of three golden entries (see trl_reference.py)."""
    logprobs_args = entries["masked_token_logprobs/prompt_and_padding"]["args"]
    reward_args = entries["bradley_terry_loss/batch"]["args"]
    dpo = entries["dpo_loss/beta_0.5"]
    dpo_loss, logged = trl_reference.dpo_trainer_loss(*dpo["args"], **dpo["kwargs"])
    return {
        "trl/selective_log_softmax": entry(trl_reference.selective_logprobs, *logprobs_args),
        "trl/reward_trainer_loss": entry(trl_reference.reward_trainer_loss, *reward_args),
        "trl/dpo_trainer_loss": {
            "args": dpo["args"], "kwargs": dpo["kwargs"],
            "expected": [dpo_loss.detach(), logged["rewards/chosen"], logged["rewards/margins"]],
        },
    }


def main() -> None:
    GOLDEN_PATH.write_text(json.dumps(encode(build()), indent=1) + "\n")
    print(f"Wrote {GOLDEN_PATH}")


if __name__ == "__main__":
    main()
