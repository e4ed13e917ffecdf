"""The core math of RLHF, in one place.

Every stage of the course (reward model, PPO, DPO), the exercises' solutions and the
tests use these functions, so there is exactly one truth for each formula.

Conventions
-----------
- Tensors are batch-first: shape (B, T) for per-token quantities.
- ``mask`` is 1.0 on the tokens that count (the response tokens) and 0.0 elsewhere
  (prompt and padding). Every reduction over tokens is a masked one.
- ``logits[:, t]`` is the model's prediction for ``labels[:, t]``: callers shift by one
  before calling (see :func:`shift_for_next_token`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# ---------------------------------------------------------------------------
# Masked reductions
# ---------------------------------------------------------------------------


def masked_sum(values: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Sum of ``values`` where ``mask`` is 1."""
    return (values * mask).sum() if dim is None else (values * mask).sum(dim=dim)


def masked_mean(values: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean of ``values`` over the positions where ``mask`` is 1 (0 if none)."""
    count = mask.sum() if dim is None else mask.sum(dim=dim)
    return masked_sum(values, mask, dim) / count.clamp(min=1)


def masked_whiten(values: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True) -> torch.Tensor:
    """Normalise ``values`` to unit variance (and zero mean) over the masked positions.

    PPO whitens advantages so the step size does not depend on the reward scale.
    """
    mean = masked_mean(values, mask)
    var = masked_mean((values - mean) ** 2, mask)
    whitened = (values - mean) * torch.rsqrt(var + 1e-8)
    if not shift_mean:
        whitened = whitened + mean
    return whitened * mask


# ---------------------------------------------------------------------------
# Log-probabilities and entropy
# ---------------------------------------------------------------------------


def shift_for_next_token(logits: torch.Tensor, input_ids: torch.Tensor, mask: torch.Tensor):
    """Align a causal LM's outputs with the tokens they predict.

    ``logits[:, t]`` predicts ``input_ids[:, t + 1]``; this drops the last logit and the
    first token so that position t of every returned tensor talks about the same token.
    """
    return logits[:, :-1], input_ids[:, 1:], mask[:, 1:]


def token_logprobs(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """log p(labels[b, t]) under ``logits[b, t]``: shape (B, T)."""
    logp = F.log_softmax(logits.float(), dim=-1)
    return torch.gather(logp, dim=-1, index=labels.unsqueeze(-1)).squeeze(-1)


def masked_token_logprobs(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-token log-probabilities of ``labels``, zero outside ``mask``: shape (B, T)."""
    return token_logprobs(logits, labels) * mask


def sequence_logprob(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """log p(response | prompt): the sum of the masked per-token log-probs, shape (B,)."""
    return masked_token_logprobs(logits, labels, mask).sum(dim=-1)


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of the next-token distribution at every position: shape (B, T)."""
    logp = F.log_softmax(logits.float(), dim=-1)
    return -(logp.exp() * logp).sum(dim=-1)


# ---------------------------------------------------------------------------
# Reward model and DPO
# ---------------------------------------------------------------------------


def bradley_terry_loss(chosen_rewards: torch.Tensor, rejected_rewards: torch.Tensor) -> torch.Tensor:
    """Reward-model loss: -log sigmoid(r_chosen - r_rejected), averaged over pairs.

    Under the Bradley-Terry model P(chosen beats rejected) = sigmoid(r_c - r_r); this is
    the negative log-likelihood of the human's choices. It is log 2 when r_c == r_r.
    """
    return -F.logsigmoid(chosen_rewards - rejected_rewards).mean()


def dpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    beta: float = 0.1,
):
    """Direct Preference Optimization (Rafailov et al. 2023), sigmoid loss.

    Arguments are sequence log-probs (B,) of the chosen and rejected responses under the
    policy and the frozen reference. The implicit reward of a response is
    ``beta * (log pi(y|x) - log pi_ref(y|x))``; DPO is Bradley-Terry on those rewards.

    Returns ``(loss, chosen_rewards, rejected_rewards)``; the rewards are detached.
    """
    chosen_rewards = beta * (policy_chosen_logps - ref_chosen_logps)
    rejected_rewards = beta * (policy_rejected_logps - ref_rejected_logps)
    loss = bradley_terry_loss(chosen_rewards, rejected_rewards)
    return loss, chosen_rewards.detach(), rejected_rewards.detach()


# ---------------------------------------------------------------------------
# KL to the reference model
# ---------------------------------------------------------------------------


def kl_estimate(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, kind: str = "k1") -> torch.Tensor:
    """Per-token estimate of KL(policy || reference) from sampled tokens (Schulman 2020).

    With ``log_ratio = log pi(y_t) - log pi_ref(y_t)`` for tokens sampled from the policy:

    - ``k1 = log_ratio``: unbiased, but single samples can be negative.
    - ``k2 = 0.5 * log_ratio**2``: biased, always >= 0, low variance.
    - ``k3 = (r - 1) - log r`` with ``r = pi_ref / pi``: unbiased and always >= 0.
    """
    log_ratio = logprobs - ref_logprobs
    if kind == "k1":
        return log_ratio
    if kind == "k2":
        return 0.5 * log_ratio**2
    if kind == "k3":
        return torch.expm1(-log_ratio) + log_ratio
    raise ValueError(f"Unknown KL estimator {kind!r}: choose 'k1', 'k2' or 'k3'.")


def kl_penalized_rewards(
    scores: torch.Tensor,
    logprobs: torch.Tensor,
    ref_logprobs: torch.Tensor,
    mask: torch.Tensor,
    kl_coef: float,
    kind: str = "k1",
):
    """The per-token reward PPO maximises (Ziegler et al. 2019; InstructGPT).

    Every response token pays ``-kl_coef * KL_t`` for drifting from the reference; the
    reward model's score (B,) is added on the last response token only.

    Returns ``(rewards, kl)``: both (B, T) and zero outside ``mask``.
    """
    kl = kl_estimate(logprobs, ref_logprobs, kind) * mask
    rewards = -kl_coef * kl
    last = last_token_index(mask)
    rewards[torch.arange(rewards.size(0)), last] += scores
    return rewards * mask, kl


def last_token_index(mask: torch.Tensor) -> torch.Tensor:
    """Index of the last position where ``mask`` is 1, per row (B,)."""
    positions = torch.arange(mask.size(1), device=mask.device).expand_as(mask)
    return (positions * (mask > 0)).max(dim=1).values


# ---------------------------------------------------------------------------
# Advantages: Generalised Advantage Estimation
# ---------------------------------------------------------------------------


def gae_advantages(
    rewards: torch.Tensor,
    values: torch.Tensor,
    mask: torch.Tensor,
    gamma: float = 1.0,
    lam: float = 0.95,
):
    """Generalised Advantage Estimation (Schulman et al. 2016), right to left.

    ``delta_t = r_t + gamma * V_{t+1} - V_t`` and ``A_t = delta_t + gamma * lam * A_{t+1}``,
    where the value after the last response token is 0 (the episode ends there).
    Masked-out positions neither receive nor pass on advantage.

    Returns ``(advantages, returns)`` with ``returns = advantages + values``; both (B, T).
    With ``gamma = lam = 1`` the advantages are (sum of future rewards) - values.
    """
    advantages = torch.zeros_like(rewards)
    next_value = torch.zeros_like(rewards[:, 0])
    next_advantage = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.size(1))):
        m = mask[:, t]
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        advantage = delta + gamma * lam * next_advantage
        advantages[:, t] = advantage * m
        # A masked position is skipped: what lies after it is carried through unchanged.
        next_value = torch.where(m > 0, values[:, t], next_value)
        next_advantage = torch.where(m > 0, advantage, next_advantage)
    returns = (advantages + values) * mask
    return advantages, returns


def first_token_advantages(rewards, values, mask, gamma: float = 1.0, lam: float = 0.95):
    """An experiment, not PPO: GAE, then every advantage but the first response token's set to 0.

    Perfect credit assignment for a reward that depends only on the first token (a polite
    opener): only the token that made the choice is pushed. Plug it in with
    ``PPOTrainer(..., overrides={"gae_advantages": first_token_advantages})`` (notebook 05).
    """
    advantages, returns = gae_advantages(rewards, values, mask, gamma=gamma, lam=lam)
    advantages = advantages.clone()
    advantages[:, 1:] = 0.0
    return advantages, returns


# ---------------------------------------------------------------------------
# Advantages without a critic: a baseline from the other samples of the same prompt
# ---------------------------------------------------------------------------


def _groups(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """(N,) rewards as (N / group_size, group_size): each row the samples of one prompt."""
    if group_size < 2 or rewards.dim() != 1 or rewards.numel() % group_size:
        raise ValueError(f"need a 1-D tensor of rewards whose length ({rewards.numel()}) is a multiple of "
                         f"group_size >= 2 (got group_size={group_size}): a group baseline needs siblings.")
    return rewards.view(-1, group_size)


def leave_one_out_advantages(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """RLOO (Ahmadian et al. 2024): each sample's reward minus the mean reward of the *other*
    ``group_size - 1`` samples of its prompt. The baseline does not contain the sample itself,
    so it stays an unbiased estimate of the prompt's value; no value head is trained.

    ``rewards``: (N,), grouped contiguously (the samples of prompt 0 first). Returns (N,).
    """
    grouped = _groups(rewards, group_size)
    others_mean = (grouped.sum(dim=1, keepdim=True) - grouped) / (group_size - 1)
    return (grouped - others_mean).reshape(-1)


def group_relative_advantages(rewards: torch.Tensor, group_size: int, scale: bool = True,
                              eps: float = 1e-4) -> torch.Tensor:
    """GRPO (Shao et al. 2024): each reward minus its group's mean, divided by the group's
    standard deviation (unbiased, plus ``eps``) when ``scale``. Scaling makes every prompt
    push equally hard, however close its samples' rewards were (Dr. GRPO drops it: scale=False).

    ``rewards``: (N,), grouped contiguously. Returns (N,).
    """
    grouped = _groups(rewards, group_size)
    advantages = grouped - grouped.mean(dim=1, keepdim=True)
    if scale:
        advantages = advantages / (grouped.std(dim=1, keepdim=True) + eps)
    return advantages.reshape(-1)


# ---------------------------------------------------------------------------
# PPO clipped objectives
# ---------------------------------------------------------------------------


def ppo_policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip_range: float = 0.2,
):
    """PPO's clipped surrogate loss (Schulman et al. 2017), per token.

    ``ratio = pi / pi_old``; the loss is ``max(-A * ratio, -A * clip(ratio, 1-eps, 1+eps))``.
    Once the ratio has moved past the clip range in the direction the advantage favours,
    the clipped term wins and the gradient is zero: the update stops pushing.

    Returns ``(loss, clip_fraction, approx_kl)``: clip_fraction is the share of tokens
    where clipping was active; approx_kl is k3 between old and new policy (diagnostic).
    """
    log_ratio = logprobs - old_logprobs
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip_range, 1.0 + clip_range)
    loss = masked_mean(torch.max(unclipped, clipped), mask)
    with torch.no_grad():
        clip_fraction = masked_mean((clipped > unclipped).float(), mask)
        approx_kl = masked_mean(kl_estimate(old_logprobs, logprobs, "k3"), mask)
    return loss, clip_fraction, approx_kl


def ppo_value_loss(
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor,
    clip_range_value: float = 0.2,
):
    """Clipped value loss: the value head may move at most ``clip_range_value`` per update.

    ``0.5 * max((V - R)^2, (clip(V, V_old - eps, V_old + eps) - R)^2)``, masked mean.
    Returns ``(loss, clip_fraction)``.
    """
    clipped_values = old_values + torch.clamp(values - old_values, -clip_range_value, clip_range_value)
    unclipped_error = (values - returns) ** 2
    clipped_error = (clipped_values - returns) ** 2
    loss = 0.5 * masked_mean(torch.max(unclipped_error, clipped_error), mask)
    with torch.no_grad():
        clip_fraction = masked_mean((clipped_error > unclipped_error).float(), mask)
    return loss, clip_fraction


# ---------------------------------------------------------------------------
# PPO-ptx: keep the pretraining skill (InstructGPT, Ouyang et al. 2022, eq. 2)
# ---------------------------------------------------------------------------


def pretraining_loss(logits: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Next-token negative log-likelihood of pretraining text, mean over its real tokens.

    InstructGPT's PPO-ptx objective adds ``gamma * E_pretrain[log pi(x)]`` to the RL
    objective; as a loss to minimise that is ``ptx_coef * pretraining_loss``. ``logits`` are
    the policy's outputs on ``input_ids`` (unshifted; padding is 0 in ``attention_mask``).
    """
    logits, labels, mask = shift_for_next_token(logits, input_ids, attention_mask.float())
    return -masked_mean(token_logprobs(logits, labels), mask)
