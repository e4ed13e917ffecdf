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
# # Exercise 4: KL estimators and the KL-penalised reward
#
# **Difficulty:** ★★☆ (core) &nbsp;·&nbsp; **Time:** about 25 minutes
#
# PPO for language models maximises the reward model's score *minus* a penalty for drifting
# from the reference model. You will write three estimators of that drift (Schulman's k1,
# k2, k3) and the per-token reward PPO actually maximises, then run PPO with it.
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
# ## The idea, part 1: estimating KL from samples
#
# $\mathrm{KL}(\pi \,\|\, \pi_\text{ref}) = \mathbb{E}_{y \sim \pi}\big[\log \pi(y) - \log \pi_\text{ref}(y)\big]$.
# We only see the tokens we sampled, so we estimate it per token. With
# `log_ratio` $= \log \pi(y_t) - \log \pi_\text{ref}(y_t)$ and $r = \pi_\text{ref}(y_t) / \pi(y_t)$:
#
# | kind | formula | unbiased? | always $\ge 0$? |
# |---|---|---|---|
# | `k1` | `log_ratio` | yes | no |
# | `k2` | $\tfrac12$ `log_ratio`$^2$ | no | yes |
# | `k3` | $(r - 1) - \log r$ | yes | yes |
#
# Any other `kind` is a mistake: raise a `ValueError` that says which kinds exist.

# %% tags=["solution"]
# EXERCISE: write the body of this function, then run the check below.
import torch


def kl_estimate(logprobs, ref_logprobs, kind="k1"):
    """Per-token estimate of KL(policy || reference) from sampled tokens: 'k1', 'k2' or 'k3'."""
    # Start from log_ratio = logprobs - ref_logprobs; express r through it (r = exp(-log_ratio)).
    ### BEGIN SOLUTION
    log_ratio = logprobs - ref_logprobs
    if kind == "k1":
        return log_ratio
    if kind == "k2":
        return 0.5 * log_ratio**2
    if kind == "k3":
        return torch.expm1(-log_ratio) + log_ratio
    raise ValueError(f"Unknown KL estimator {kind!r}: choose 'k1', 'k2' or 'k3'.")
    ### END SOLUTION


# %%
report_kl = check(kl_estimate)


# %% [markdown]
# ## The idea, part 2: the reward PPO maximises
#
# The reward model scores a whole response once. PPO spreads the KL penalty over tokens
# (Ziegler et al. 2019; InstructGPT): every response token $t$ gets
# $-\beta\, \mathrm{KL}_t$, and the last response token also gets the score:
#
# $$r_t = -\beta\,\mathrm{KL}_t + [t = \text{last response token}]\cdot \text{score}.$$
#
# `scores` is (B,); the other tensors are (B, T) with `mask` 1 on response tokens. Rows may
# be padded on either side, so "last response token" is the last position where mask is 1.
# Return `(rewards, kl)`, both 0 outside the mask. Use your `kl_estimate` with `kind`, and
# build new tensors rather than changing the inputs.

# %% tags=["solution"]
# EXERCISE: write the body of this function, then run the check below.
def kl_penalized_rewards(scores, logprobs, ref_logprobs, mask, kl_coef, kind="k1"):
    """Per-token rewards: -kl_coef * KL_t on response tokens, plus the score on the last one."""
    # 1. kl = your kl_estimate(...), zero outside the mask.
    # 2. The index of the last response token of each row (where is the last 1 in mask?).
    # 3. rewards = -kl_coef * kl, plus each row's score at that index.
    ### BEGIN SOLUTION
    kl = kl_estimate(logprobs, ref_logprobs, kind) * mask
    positions = torch.arange(mask.shape[1]).expand_as(mask)
    last = (positions * (mask > 0)).max(dim=1).values
    rewards = -kl_coef * kl
    rewards[torch.arange(len(scores)), last] += scores
    return rewards * mask, kl
    ### END SOLUTION


# %%
report = check(kl_penalized_rewards)

# %% [markdown]
# ## See it work: how far is the SFT model from the base model?
#
# We sample responses from the SFT model and score their tokens under both models (a
# PPOTrainer's rollout does exactly that, with the base model as reference). Compare the
# three estimators on the same tokens.

# %%
from rlhf_lab import models
from rlhf_lab.config import get_profile
from rlhf_lab.stages.pretrain import get_base_model_dir, get_tokenizer
from rlhf_lab.stages.sft import get_sft_model_dir
from rlhf_lab.world import World

profile = get_profile()  # 'tiny' unless RLHF_LAB_PROFILE says otherwise
world = World(profile.seed)
tokenizer = get_tokenizer(profile)
sft_dir = get_sft_model_dir(profile)  # built and cached on first use (a few minutes, once)

# %%
from rlhf_lab.ppo import PPOSettings, PPOTrainer

report_kl.require(); report.require()
sft_policy = models.load_model(sft_dir, lora=models.LoraSettings.from_profile(profile))
base_model = models.load_model(get_base_model_dir(profile), trainable=False)
probe = PPOTrainer(sft_policy, tokenizer, lambda u, r: torch.zeros(len(u)), PPOSettings(max_new_tokens=12),
                   ref_model=base_model)
rollout = probe.rollout([p.text for p in world.prompts("heldout")[:16]])
mask = rollout.response_mask
for kind in ("k1", "k2", "k3"):
    kl = kl_estimate(rollout.old_logprobs, rollout.ref_logprobs, kind)[mask > 0]
    print(f"{kind}: mean {kl.mean():.3f} nats/token, std {kl.std():.3f}, negative on {(kl < 0).float().mean():.0%} of tokens")

# %% [markdown]
# **What to look for.** k1 and k3 estimate the same number (both are unbiased), so their
# means differ only by sampling noise on these few tokens; but k1 is negative on many
# single tokens and spreads much wider, a poor *per-token* penalty. k2 is biased. k3 is
# never negative and has the smallest spread.
#
# ## See it work: PPO with your reward
#
# Now PPO with the usual reference (the SFT model: the LoRA adapter switched off) calls
# *your* `kl_penalized_rewards` at every step. Four short steps (8 prompts each), a few seconds.

# %%
from rlhf_lab.ppo import PPOSettings, PPOTrainer

train_prompts = {p.text: p for p in world.prompts("train")}

def gold_reward(user_texts, responses):
    """The hidden human's score of each response (PPO only ever sees this number)."""
    return torch.tensor([world.gold_reward(train_prompts[u], r).total for u, r in zip(user_texts, responses)])

policy = models.load_model(sft_dir, lora=models.LoraSettings.from_profile(profile))  # reference = adapter off
config = PPOSettings(steps=4, batch_size=8, mini_batch_size=4, ppo_epochs=2, max_new_tokens=16, seed=0)
trainer = PPOTrainer(policy, tokenizer, gold_reward, config, overrides={"kl_penalized_rewards": kl_penalized_rewards})
stats = trainer.train(list(train_prompts))

# %%
for row in stats:
    print("  ".join(f"{name} {row[name]:+.3f}" for name in ("reward", "kl", "kl_coef")))

# %% [markdown]
# **What to look for.** The KL starts at 0 (the policy is the reference) and grows as PPO
# moves the policy; `kl_coef` times that KL is what each response pays for moving.
