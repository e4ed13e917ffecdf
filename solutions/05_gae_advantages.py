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
# # Exercise 5: advantages with GAE
#
# **Difficulty:** ★★★ (challenge) &nbsp;·&nbsp; **Time:** about 30 minutes
#
# PPO needs to know, for every token, whether it turned out better or worse than expected.
# Generalised Advantage Estimation (Schulman et al. 2016) answers that from the per-token
# rewards and a value head's predictions. You will write it, then run PPO with it.
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
# ## The idea
#
# The value head predicts $V_t$, the reward still to come after token $t$. The TD error
# compares one step of reality with that prediction:
#
# $$\delta_t = r_t + \gamma V_{t+1} - V_t, \qquad V_{\text{after the last response token}} = 0.$$
#
# GAE mixes TD errors over the future, decaying by $\gamma\lambda$ per step, computed right
# to left:
#
# $$A_t = \delta_t + \gamma\lambda\, A_{t+1}, \qquad \text{returns}_t = A_t + V_t.$$
#
# $\lambda = 0$ trusts the value head (one-step TD); $\lambda = 1$ uses the observed rewards
# (Monte-Carlo). The returns are the value head's training targets.
#
# **Masks.** `mask` is 1 on response tokens. Masked positions get 0 and must *neither
# receive nor pass on* advantage: when the right-to-left sweep crosses a masked position,
# what lies after it carries through unchanged. (With left padding and right padding only,
# this means: the response's last token sees $V = 0$ and $A = 0$ after it.)
#
# Shapes: `rewards`, `values`, `mask` are (B, T). Return `(advantages, returns)`, (B, T).

# %% tags=["solution"]
# EXERCISE: write the body of this function, then run the check below.
import torch


def gae_advantages(rewards, values, mask, gamma=1.0, lam=0.95):
    """GAE, right to left. Returns (advantages, returns); both (B, T), zero outside mask."""
    # Keep, per row, the "next" value and the "next" advantage (both start at 0).
    # Loop t from T-1 down to 0: compute delta and the advantage at t; store it where mask is 1;
    # update the "next" values only where mask is 1 (torch.where), so masked positions pass through.
    ### BEGIN SOLUTION
    advantages = torch.zeros_like(rewards)
    next_value = torch.zeros_like(rewards[:, 0])
    next_advantage = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        m = mask[:, t]
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        advantage = delta + gamma * lam * next_advantage
        advantages[:, t] = advantage * m
        next_value = torch.where(m > 0, values[:, t], next_value)
        next_advantage = torch.where(m > 0, advantage, next_advantage)
    returns = (advantages + values) * mask
    return advantages, returns
    ### END SOLUTION


# %%
report = check(gae_advantages)

# %% [markdown]
# ## Feel it: one response, by hand
#
# A 4-token response, score 1.0 on the last token, and a value head that is still clueless
# (all zeros). With $\gamma = 1$ the advantage at each token is the discounted reward still
# to come; try $\lambda = 0$ and $\lambda = 1$ and explain the difference.

# %%
report.require()
rewards = torch.tensor([[0.0, 0.0, 0.0, 1.0]])
for lam in (0.0, 0.5, 0.95, 1.0):
    advantages, _ = gae_advantages(rewards, torch.zeros(1, 4), torch.ones(1, 4), gamma=1.0, lam=lam)
    print(f"lam={lam:<4}: advantages {advantages[0].tolist()}")

# %% [markdown]
# ## See it work: PPO with your advantages
#
# The course's PPO trainer calls *your* `gae_advantages` at every step (with the gamma and
# lambda of its config). Four short steps (8 prompts each), a few seconds.

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
trainer = PPOTrainer(policy, tokenizer, gold_reward, config, overrides={"gae_advantages": gae_advantages})
stats = trainer.train(list(train_prompts))

# %%
for row in stats:
    print("  ".join(f"{name} {row[name]:+.3f}" for name in ("reward", "value_loss", "policy_loss")))

# %% [markdown]
# **What to look for.** The value loss is how far the value head is from *your* returns.
# With a clueless value head (and $\lambda = 1$) the first-token advantages are just the
# score; as the value head learns, advantages become "better or worse than usual", which
# is what makes PPO's updates less noisy.
