# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Exercise 6: PPO's clipped policy and value losses
#
# **Difficulty:** ★★★ (challenge) &nbsp;·&nbsp; **Time:** about 30 minutes
#
# PPO reuses each batch of samples for several gradient steps. Its clipped objective stops
# the policy from moving too far from the policy that drew the samples. You will write the
# clipped policy loss and the clipped value loss, then run PPO with both.
#
# How it works: read the idea, fill in the function in the cell marked `# EXERCISE:`, run the `check(...)` cell for instant feedback (a table of passed and failed cases, with a hint for each failure), then plug your function into the real pipeline and watch it work. Stuck? The worked answer is in `solutions/` (give it 10 minutes first).

# %%
import torch

from rlhf_lab.grader import check

# The exercise models are tiny: one thread is as fast as two, and never fights other
# processes for the cores (two threads on a busy 2-core machine were up to 100x slower).
torch.set_num_threads(1)
torch.manual_seed(0);

# %% [markdown]
# ## The idea, part 1: the clipped policy loss
#
# With the probability ratio $\rho_t = \pi_\theta(y_t) / \pi_\text{old}(y_t) = \exp(\log\pi_\theta - \log\pi_\text{old})$
# and advantage $A_t$, PPO (Schulman et al. 2017) minimises, per token,
#
# $$\ell_t = \max\big(-A_t \rho_t,\; -A_t \operatorname{clip}(\rho_t, 1-\epsilon, 1+\epsilon)\big),$$
#
# averaged over response tokens (masked mean). The max is the *pessimistic* choice: once
# $\rho_t$ has moved past $1 \pm \epsilon$ in the direction $A_t$ favours, the clipped term
# wins and its gradient is zero; the update stops pushing that token.
#
# Also return two diagnostics, both masked means and without gradient:
# - `clip_fraction`: the share of response tokens where the clipped term is strictly larger;
# - `approx_kl`: the k3 estimate (exercise 4) of the KL between the old and the new policy,
#   with the *old* policy in the role of the policy: $x = \log\pi_\text{old} - \log\pi_\theta$,
#   $k3 = e^{-x} - 1 + x$.

# %% tags=["solution"]
# EXERCISE: write the body of this function, then run the check below.
import torch


def ppo_policy_loss(logprobs, old_logprobs, advantages, mask, clip_range=0.2):
    """PPO clipped surrogate loss. Returns (loss, clip_fraction, approx_kl)."""
    # 1. ratio from the log-probs; the unclipped and the clipped per-token losses.
    # 2. loss = masked mean of their element-wise maximum.
    # 3. Diagnostics under torch.no_grad(): clip_fraction and approx_kl (masked means).
    ### BEGIN SOLUTION
    def masked_mean(values):
        return (values * mask).sum() / mask.sum().clamp(min=1)

    ratio = torch.exp(logprobs - old_logprobs)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip_range, 1.0 + clip_range)
    loss = masked_mean(torch.max(unclipped, clipped))
    with torch.no_grad():
        clip_fraction = masked_mean((clipped > unclipped).float())
        x = old_logprobs - logprobs  # k3 with old in the role of the policy
        approx_kl = masked_mean(torch.expm1(-x) + x)
    return loss, clip_fraction, approx_kl
    ### END SOLUTION


# %%
report_policy = check(ppo_policy_loss)

# %% [markdown]
# ## The idea, part 2: the clipped value loss
#
# The value head is trained toward the returns (exercise 5), but it too may move only
# $\epsilon_V$ per update away from its rollout-time prediction $V_\text{old}$:
#
# $$\ell^V_t = \tfrac12 \max\Big((V_t - R_t)^2,\; \big(V_\text{old} + \operatorname{clip}(V_t - V_\text{old}, -\epsilon_V, \epsilon_V) - R_t\big)^2\Big),$$
#
# masked mean over response tokens. Return `(loss, clip_fraction)`, the fraction of tokens
# where the clipped error is strictly larger (no gradient).

# %% tags=["solution"]
# EXERCISE: write the body of this function, then run the check below.
import torch


def ppo_value_loss(values, old_values, returns, mask, clip_range_value=0.2):
    """Clipped value loss. Returns (loss, clip_fraction)."""
    ### BEGIN SOLUTION
    def masked_mean(x):
        return (x * mask).sum() / mask.sum().clamp(min=1)

    clipped_values = old_values + torch.clamp(values - old_values, -clip_range_value, clip_range_value)
    unclipped_error = (values - returns) ** 2
    clipped_error = (clipped_values - returns) ** 2
    loss = 0.5 * masked_mean(torch.max(unclipped_error, clipped_error))
    with torch.no_grad():
        clip_fraction = masked_mean((clipped_error > unclipped_error).float())
    return loss, clip_fraction
    ### END SOLUTION


# %%
report_value = check(ppo_value_loss)

# %% [markdown]
# ## Feel it: where does the gradient stop?
#
# One token, advantage +1. We sweep the ratio and look at the gradient of your loss with
# respect to the log-prob. Past $1 + \epsilon$ it is zero: the token has been pushed enough.

# %%
report_policy.require()
for ratio in (0.7, 0.9, 1.0, 1.1, 1.19, 1.21, 1.5):
    logprob = torch.tensor([[float(torch.log(torch.tensor(ratio)))]], requires_grad=True)
    loss, _, _ = ppo_policy_loss(logprob, torch.zeros(1, 1), torch.ones(1, 1), torch.ones(1, 1), clip_range=0.2)
    loss.backward()
    print(f"ratio {ratio:<4}: loss {loss.item():+.3f}, d loss / d logprob {logprob.grad.item():+.3f}")

# %% [markdown]
# ## See it work: PPO with your losses
#
# Both of your losses replace the course's inside the PPO trainer. Four short steps (8 prompts
# each) with two epochs over each rollout, so the second epoch sees ratios different from 1
# and clipping can kick in.

# %%
from rlhf_lab import models
from rlhf_lab.config import get_profile
from rlhf_lab.stages.pretrain import get_tokenizer
from rlhf_lab.stages.sft import get_sft_model_dir
from rlhf_lab.world import World

profile = get_profile()  # 'tiny' unless RLHF_LAB_PROFILE says otherwise
world = World(profile.seed)
tokenizer = get_tokenizer(profile)
sft_dir = get_sft_model_dir(profile)  # built and cached on first use (a few minutes, once)

# %%
from rlhf_lab.ppo import PPOSettings, PPOTrainer

train_prompts = {p.text: p for p in world.prompts("train")}

def gold_reward(user_texts, responses):
    """The hidden human's score of each response (PPO only ever sees this number)."""
    return torch.tensor([world.gold_reward(train_prompts[u], r).total for u, r in zip(user_texts, responses)])

policy = models.load_model(sft_dir, lora=models.LoraSettings.from_profile(profile))  # reference = adapter off
config = PPOSettings(steps=4, batch_size=8, mini_batch_size=4, ppo_epochs=2, max_new_tokens=16, seed=0)
trainer = PPOTrainer(policy, tokenizer, gold_reward, config, overrides={"ppo_policy_loss": ppo_policy_loss, "ppo_value_loss": ppo_value_loss})
stats = trainer.train(list(train_prompts))

# %%
for row in stats:
    print("  ".join(f"{name} {row[name]:+.3f}" for name in ("reward", "policy_loss", "value_loss", "clip_fraction", "approx_kl")))

# %% [markdown]
# **What to look for.** `approx_kl` measures how far each update moved the policy from the
# one that sampled the batch; `clip_fraction` is the share of tokens the clip stopped. If
# they grow large, the learning rate or the number of epochs is too high.
