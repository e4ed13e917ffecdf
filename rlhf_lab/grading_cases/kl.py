"""Cases for kl_estimate(logprobs, ref_logprobs, kind) and kl_penalized_rewards(...)."""

from __future__ import annotations

import torch

from rlhf_lab.grading_cases import CaseFailed, Mistake, expect_close, golden, golden_case, invariant, outputs

KL = ("kl",)


def _k3_inverted(logprobs, ref_logprobs, kind="k1"):
    log_ratio = logprobs - ref_logprobs
    return torch.expm1(log_ratio) - log_ratio


KL_ESTIMATE_CASES = [
    golden_case("kl_estimate/k1", "k1 on stored log-probs", KL,
                "k1 is the plain log-ratio log pi - log pi_ref of the sampled token.",
                [Mistake(lambda a, b, kind="k1": b - a, "k1 has the wrong sign: it is log pi - log pi_ref.")]),
    golden_case("kl_estimate/k2", "k2 on stored log-probs", KL,
                "k2 is half the squared log-ratio.",
                [Mistake(lambda a, b, kind="k2": (a - b) ** 2, "k2 has a factor 1/2 in front.")]),
    golden_case("kl_estimate/k3", "k3 on stored log-probs", KL,
                "k3 = (r - 1) - log r with r = pi_ref / pi.",
                [Mistake(_k3_inverted, "in k3, r is pi_ref / pi (reference over policy), not the other way round.")]),
]


@invariant("every estimator is 0 when policy == reference")
def _kl_zero(function):
    logprobs = torch.tensor([[-1.0, -2.5, -0.3]])
    for kind in ("k1", "k2", "k3"):
        (kl,) = outputs(function(logprobs, logprobs.clone(), kind=kind), KL)
        expect_close(kl, torch.zeros_like(logprobs), f"{kind} for identical log-probs", "No drift, no KL.")


@invariant("k2 and k3 are never negative")
def _kl_positive(function):
    generator = torch.Generator().manual_seed(5)
    logprobs, ref_logprobs = -3 * torch.rand(4, 6, generator=generator), -3 * torch.rand(4, 6, generator=generator)
    for kind in ("k2", "k3"):
        (kl,) = outputs(function(logprobs, ref_logprobs, kind=kind), KL)
        if (kl < -1e-6).any():
            raise CaseFailed(f"{kind} gave a negative value: it is >= 0 for every token by construction.")


@invariant("an unknown kind ('k4') raises ValueError")
def _kl_unknown(function):
    try:
        function(torch.zeros(1, 2), torch.zeros(1, 2), kind="k4")
    except ValueError:
        return
    raise CaseFailed("kind='k4' should raise a ValueError that names the valid kinds; a typo must not "
                     "silently pick an estimator.")


@invariant("E[k1] and E[k3] under the policy equal the exact KL(policy || reference)", kind="formula")
def _kl_unbiased(function):
    # Two categorical distributions over 6 tokens; weight every token's estimate by its policy
    # probability. The exact KL is sum_y p(y) (log p(y) - log q(y)) (Schulman, "Approximating KL").
    policy = torch.tensor([[0.4, 0.25, 0.15, 0.1, 0.06, 0.04]])
    reference = torch.tensor([[0.1, 0.2, 0.3, 0.2, 0.1, 0.1]])
    exact = (policy * (policy.log() - reference.log())).sum()
    for kind in ("k1", "k3"):
        (kl,) = outputs(function(policy.log(), reference.log(), kind=kind), KL)
        expect_close((policy * kl).sum(), exact, f"the expectation of {kind}",
                     f"{kind} is an unbiased estimator: averaged over tokens drawn from the policy it must "
                     "give the exact KL.")


@invariant("k3 matches the formula GRPO uses: exp(ref - logp) - (ref - logp) - 1", kind="formula")
def _kl_grpo_formula(function):
    # TRL's GRPOTrainer computes this inline in _compute_loss (not callable on its own); we compare
    # with the same documented formula (Shao et al. 2024, eq. 4).
    entry = golden("kl_estimate/k3")
    logprobs, ref_logprobs = entry["args"]
    (kl,) = outputs(function(logprobs, ref_logprobs, kind="k3"), KL)
    diff = ref_logprobs - logprobs
    expect_close(kl, torch.exp(diff) - diff - 1, "your k3 vs GRPO's formula")


KL_ESTIMATE_CASES += [_kl_zero, _kl_positive, _kl_unknown, _kl_unbiased, _kl_grpo_formula]

# ---------------------------------------------------------------------------
# kl_penalized_rewards
# ---------------------------------------------------------------------------

REWARDS = ("rewards", "kl")


def _score_on_every_token(scores, logprobs, ref_logprobs, mask, kl_coef, kind="k1"):
    kl = (logprobs - ref_logprobs) * mask
    return (scores[:, None] - kl_coef * kl) * mask, kl


def _score_on_last_column(scores, logprobs, ref_logprobs, mask, kl_coef, kind="k1"):
    kl = (logprobs - ref_logprobs) * mask
    rewards = -kl_coef * kl
    rewards[:, -1] += scores
    return rewards * mask, kl


def _kl_bonus(scores, logprobs, ref_logprobs, mask, kl_coef, kind="k1"):
    kl = (logprobs - ref_logprobs) * mask
    rewards = kl_coef * kl
    last = (torch.arange(mask.shape[1]) * (mask > 0)).max(dim=1).values
    rewards[torch.arange(len(scores)), last] += scores
    return rewards * mask, kl


KL_REWARD_MISTAKES = [
    Mistake(_score_on_every_token, "the reward model scores the whole response once: add the score on the "
            "last response token only."),
    Mistake(_score_on_last_column, "the score went to the last column, but in a right-padded row that is "
            "padding: find the last position where mask is 1."),
    Mistake(_kl_bonus, "drifting from the reference should cost reward: check the sign of the KL term."),
]

KL_REWARD_CASES = [
    golden_case("kl_penalized_rewards/k1", "rewards and KL on a stored batch (k1, kl_coef=0.1)", REWARDS,
                "Each response token pays kl_coef * KL_t; the score is added on the last response token.",
                KL_REWARD_MISTAKES),
    golden_case("kl_penalized_rewards/k3", "the same with k3 and kl_coef=0.05", REWARDS,
                "Pass `kind` on to your KL estimator.", KL_REWARD_MISTAKES),
]


def _reward_batch():
    scores = torch.tensor([1.5, -0.5])
    logprobs = torch.tensor([[-1.0, -2.0, -0.5, -1.5, -9.0], [-7.0, -0.7, -1.2, -0.9, -2.0]])
    ref_logprobs = torch.tensor([[-1.2, -1.5, -0.9, -1.0, -3.0], [-1.0, -0.8, -1.0, -1.1, -2.5]])
    mask = torch.tensor([[1.0, 1, 1, 0, 0], [0, 1, 1, 1, 1]])  # right padding; prompt token first
    return scores, logprobs, ref_logprobs, mask


@invariant("with kl_coef=0 the score sits on the last response token, zeros elsewhere")
def _no_penalty(function):
    scores, logprobs, ref_logprobs, mask = _reward_batch()
    rewards, _ = outputs(function(scores, logprobs, ref_logprobs, mask, 0.0), REWARDS)
    expected = torch.tensor([[0.0, 0, 1.5, 0, 0], [0, 0, 0, 0, -0.5]])
    expect_close(rewards, expected, "the rewards with kl_coef=0",
                 "The last response token is the last position where mask is 1 (rows may be padded).")


@invariant("rewards sum to score - kl_coef * total KL; 0 outside the mask")
def _reward_total(function):
    scores, logprobs, ref_logprobs, mask = _reward_batch()
    rewards, kl = outputs(function(scores, logprobs, ref_logprobs, mask, 0.2, kind="k3"), REWARDS)
    if (rewards[mask == 0] != 0).any() or (kl[mask == 0] != 0).any():
        raise CaseFailed("prompt and padding positions (mask 0) must get 0 reward and 0 KL.")
    expect_close(rewards.sum(dim=1), scores - 0.2 * kl.sum(dim=1), "the total reward per response",
                 "Each response collects its score once and pays kl_coef for every token's KL.")


@invariant("does not modify its input tensors")
def _no_mutation(function):
    batch = _reward_batch()
    copies = [x.clone() for x in batch]
    outputs(function(*batch, 0.1), REWARDS)
    if any(not torch.equal(a, b) for a, b in zip(batch, copies)):
        raise CaseFailed("your function changed one of its inputs in place (e.g. `scores` or `logprobs`): "
                         "build the rewards in a new tensor.")


KL_REWARD_CASES += [_no_penalty, _reward_total, _no_mutation]
