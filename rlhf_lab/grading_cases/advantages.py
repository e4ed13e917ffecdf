"""Cases for gae_advantages(rewards, values, mask, gamma, lam) -> (advantages, returns)."""

from __future__ import annotations

import torch

from rlhf_lab.grading_cases import CaseFailed, Mistake, expect_close, golden_case, invariant, outputs

GAE = ("advantages", "returns")


def _recursion(rewards, values, mask, gamma, decay):
    """A_t = delta_t + decay * A_{t+1} on full (unpadded) rows: the base of the wrong variants."""
    advantages = torch.zeros_like(rewards)
    next_value, next_advantage = torch.zeros(rewards.shape[0]), torch.zeros(rewards.shape[0])
    for t in reversed(range(rewards.shape[1])):
        m = mask[:, t]
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        advantage = delta + decay * next_advantage
        advantages[:, t] = advantage * m
        next_value = torch.where(m > 0, values[:, t], next_value)
        next_advantage = torch.where(m > 0, advantage, next_advantage)
    return advantages


def _without_lambda(rewards, values, mask, gamma=1.0, lam=0.95):
    advantages = _recursion(rewards, values, mask, gamma, gamma)
    return advantages, (advantages + values) * mask


def _returns_as_reward_to_go(rewards, values, mask, gamma=1.0, lam=0.95):
    advantages = _recursion(rewards, values, mask, gamma, gamma * lam)
    return advantages, _recursion(rewards, torch.zeros_like(values), mask, gamma, gamma)


MISTAKES = [
    Mistake(_without_lambda, "the advantages ignore lambda: the recursion decays by gamma * lam per step."),
    Mistake(_returns_as_reward_to_go, "advantages are right; returns are the value targets: advantages + values."),
]

CASES = [
    golden_case("gae_advantages/gamma_1_lam_0.95", "advantages and returns on a stored batch (gamma=1, lam=0.95)",
                GAE, "Work right to left; the value after the last response token is 0; skip masked positions.",
                MISTAKES),
    golden_case("gae_advantages/gamma_0.9_lam_0.8", "the same batch with gamma=0.9, lam=0.8", GAE,
                "Use the gamma and lam arguments in both the TD error and the recursion.", MISTAKES),
]


def _batch():
    rewards = torch.tensor([[0.0, -0.1, 0.2, 1.0, 0.0], [0.0, 0.0, 0.3, -0.2, 0.5]])
    values = torch.tensor([[0.4, 0.1, 0.5, 0.8, 0.9], [0.7, 0.2, -0.3, 0.1, 0.6]])
    mask = torch.tensor([[1.0, 1, 1, 1, 0], [0, 0, 1, 1, 1]])  # right padding; left prompt
    return rewards, values, mask


@invariant("gamma = lam = 1: advantages = (sum of future rewards) - values")
def _monte_carlo(function):
    rewards, values, mask = _batch()
    advantages, returns = outputs(function(rewards, values, mask, gamma=1.0, lam=1.0), GAE)
    reward_to_go = (rewards * mask).flip(1).cumsum(1).flip(1) * mask
    expect_close(advantages, (reward_to_go - values) * mask, "the advantages with gamma = lam = 1",
                 "With no discount and lam = 1, GAE is the Monte-Carlo return minus the value baseline.")
    expect_close(returns, reward_to_go, "the returns with gamma = lam = 1")


@invariant("lam = 0: advantages are one-step TD errors r_t + gamma V_(t+1) - V_t")
def _td(function):
    rewards, values, _ = _batch()
    mask = torch.ones_like(rewards)
    advantages, _ = outputs(function(rewards, values, mask, gamma=0.9, lam=0.0), GAE)
    next_values = torch.cat([values[:, 1:], torch.zeros(2, 1)], dim=1)  # 0 after the last token
    expect_close(advantages, rewards + 0.9 * next_values - values, "the advantages with lam = 0",
                 "The episode ends after the last token: the value there is 0, not V of the last token.")


@invariant("masked positions get 0; left padding does not change the real positions")
def _padding(function):
    rewards, values, _ = _batch()
    full = torch.ones(1, 5)
    adv_row, ret_row = outputs(function(rewards[:1], values[:1], full, gamma=0.95, lam=0.9), GAE)
    # The same row behind 2 padding positions filled with junk.
    padded = lambda x, junk: torch.cat([torch.full((1, 2), junk), x], dim=1)
    adv_pad, ret_pad = outputs(function(padded(rewards[:1], 9.0), padded(values[:1], -9.0),
                                        padded(full, 0.0), gamma=0.95, lam=0.9), GAE)
    if (adv_pad[:, :2] != 0).any() or (ret_pad[:, :2] != 0).any():
        raise CaseFailed("masked positions must get advantage 0 and return 0.")
    expect_close(adv_pad[:, 2:], adv_row, "the advantages behind left padding",
                 "Masked positions must neither receive nor pass on advantage (or value).")
    expect_close(ret_pad[:, 2:], ret_row, "the returns behind left padding")


@invariant("matches Schulman et al.'s closed form A_t = sum_l (gamma lam)^l delta_(t+l)", kind="formula")
def _closed_form(function):
    # TRL removed PPO (no GAE to call), so we compare with eq. 16 of the GAE paper, summed directly.
    rewards, values, _ = _batch()
    mask = torch.ones_like(rewards)
    gamma, lam = 0.9, 0.8
    advantages, _ = outputs(function(rewards, values, mask, gamma=gamma, lam=lam), GAE)
    next_values = torch.cat([values[:, 1:], torch.zeros(2, 1)], dim=1)
    deltas = rewards + gamma * next_values - values
    length = rewards.shape[1]
    weights = torch.tensor([[(gamma * lam) ** (l - t) if l >= t else 0.0 for l in range(length)]
                            for t in range(length)])
    expect_close(advantages, deltas @ weights.T, "your advantages vs the closed form")


CASES += [_monte_carlo, _td, _padding, _closed_form]


# ---------------------------------------------------------------------------
# Group baselines: leave_one_out_advantages (RLOO), group_relative_advantages (GRPO)
# ---------------------------------------------------------------------------


def _groups(rewards, group_size):
    return rewards.view(-1, group_size)


def _loo_with_self_in_baseline(rewards, group_size):
    grouped = _groups(rewards, group_size)
    return (grouped - grouped.mean(dim=1, keepdim=True)).reshape(-1)


def _loo_over_the_batch(rewards, group_size):
    return rewards - (rewards.sum() - rewards) / (rewards.numel() - 1)


RLOO_MISTAKES = [
    Mistake(_loo_with_self_in_baseline, "that is the group mean with the sample itself in it (GRPO's centring): "
            "RLOO's baseline is the mean of the OTHER group_size - 1 samples of the same prompt."),
    Mistake(_loo_over_the_batch, "the baseline runs over the whole batch: average only the other samples of the "
            "same prompt (consecutive runs of group_size)."),
]


def _grpo_population_std(rewards, group_size, scale=True, eps=1e-4):
    grouped = _groups(rewards, group_size)
    centred = grouped - grouped.mean(dim=1, keepdim=True)
    return (centred / (grouped.std(dim=1, unbiased=False, keepdim=True) + eps) if scale else centred).reshape(-1)


def _grpo_batch_std(rewards, group_size, scale=True, eps=1e-4):
    grouped = _groups(rewards, group_size)
    centred = grouped - grouped.mean(dim=1, keepdim=True)
    return (centred / (rewards.std() + eps) if scale else centred).reshape(-1)


GRPO_MISTAKES = [
    Mistake(_grpo_population_std, "use the unbiased standard deviation (divide by group_size - 1), as GRPO and "
            "TRL do: torch's .std() default."),
    Mistake(_grpo_batch_std, "divide by each group's own standard deviation, not the whole batch's."),
]

RLOO_CASES = [
    golden_case("leave_one_out_advantages/groups_of_4", "8 prompts x 4 samples", ("advantages",),
                "Reshape to (prompts, group_size); the baseline of a sample is the mean of its siblings.",
                RLOO_MISTAKES),
]

GRPO_CASES = [
    golden_case("group_relative_advantages/groups_of_4", "8 prompts x 4 samples, scaled", ("advantages",),
                "Centre on the group's mean, then divide by the group's std + eps.", GRPO_MISTAKES),
    golden_case("group_relative_advantages/unscaled", "the same rewards with scale=False (Dr. GRPO)",
                ("advantages",), "With scale=False only centre on the group's mean.", GRPO_MISTAKES),
]


def _rewards():
    return torch.tensor([1.0, 0.0, 2.0, 5.0, -1.0, -1.0, 3.0, -1.0, 0.5, 0.25, 0.0, 0.25])


@invariant("each group's advantages sum to 0, and a constant shift of a group's rewards changes nothing")
def _loo_shift(function):
    rewards = _rewards()
    advantages, = outputs(function(rewards, 4), ("advantages",))
    expect_close(advantages.view(-1, 4).sum(dim=1), torch.zeros(3), "the sum of each group's advantages",
                 "Against the mean of the others, a group's advantages still add up to zero.")
    shifted, = outputs(function(rewards + torch.tensor([10.0, -3.0, 7.0]).repeat_interleave(4), 4), ("advantages",))
    expect_close(shifted, advantages, "the advantages after adding a constant per group",
                 "The baseline must come from the same prompt's samples only.")


@invariant("RLOO's advantage is group_size / (group_size - 1) times the distance to the group mean", kind="formula")
def _loo_scaling(function):
    rewards = _rewards()
    advantages, = outputs(function(rewards, 4), ("advantages",))
    centred = (rewards.view(-1, 4) - rewards.view(-1, 4).mean(dim=1, keepdim=True)).reshape(-1)
    expect_close(advantages, centred * 4 / 3, "your advantages vs k/(k-1) x (r - group mean)",
                 "r_i - mean of the others = k/(k-1) (r_i - mean of all k): check the divisor.")


@invariant("groups are consecutive runs of group_size: group_size 2 and 6 work too")
def _loo_sizes(function):
    rewards = _rewards()
    for size in (2, 6):
        grouped = rewards.view(-1, size)
        expected = (grouped - (grouped.sum(dim=1, keepdim=True) - grouped) / (size - 1)).reshape(-1)
        got, = outputs(function(rewards, size), ("advantages",))
        expect_close(got, expected, f"the advantages with group_size={size}", "Use the group_size argument.")


@invariant("scaled advantages have mean 0 and std 1 in every group; scaling the rewards changes nothing")
def _grpo_normalised(function):
    rewards = _rewards()
    advantages, = outputs(function(rewards, 4), ("advantages",))
    grouped = advantages.view(-1, 4)
    expect_close(grouped.mean(dim=1), torch.zeros(3), "each group's mean advantage")
    expect_close(grouped.std(dim=1), torch.ones(3), "each group's std of advantages", atol=1e-3)
    scaled, = outputs(function(rewards * 5.0, 4), ("advantages",))
    expect_close(scaled, advantages, "the advantages of rewards x 5", "Divide by the group's std.", atol=1e-3)


@invariant("a group whose samples all scored the same gets advantage 0 (and no nan)")
def _grpo_flat_group(function):
    rewards = torch.tensor([2.0, 2.0, 2.0, 2.0, 0.0, 1.0, 0.0, 1.0])
    advantages, = outputs(function(rewards, 4), ("advantages",))
    expect_close(advantages[:4], torch.zeros(4), "the advantages of a group with equal rewards",
                 "Add eps to the std before dividing, so 0 / (0 + eps) is 0.")


RLOO_CASES += [_loo_shift, _loo_scaling, _loo_sizes]
GRPO_CASES += [_grpo_normalised, _grpo_flat_group]
