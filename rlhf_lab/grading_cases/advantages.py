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
