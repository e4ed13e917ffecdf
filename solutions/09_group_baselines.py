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
# # Exercise 9: baselines without a critic (RLOO and GRPO)
#
# **Difficulty:** ★★☆ (core) &nbsp;·&nbsp; **Time:** about 20 minutes
#
# PPO trains a value head to say how much reward to expect, and credits each response with
# how much better it did. RLOO and GRPO need no value head: they sample several responses
# per prompt and compare each one with its siblings. You will write both baselines, then
# run the course's PPO with each of them in place of its own.
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
# A rollout samples $k$ responses to each prompt. `rewards` is a 1-D tensor laid out prompt
# by prompt: the $k$ samples of the first prompt, then the $k$ of the second, and so on
# (`group_size` $= k$).
#
# **RLOO** (Ahmadian et al. 2024) baselines each sample with the mean of the *other*
# $k - 1$ samples of its prompt:
#
# $$A_i = r_i - \frac{1}{k-1} \sum_{j \ne i} r_j .$$
#
# Leaving the sample out keeps the baseline independent of it, so the gradient stays unbiased.
#
# **GRPO** (Shao et al. 2024, DeepSeekMath) centres on the group's mean and divides by the
# group's (unbiased) standard deviation:
#
# $$A_i = \frac{r_i - \operatorname{mean}(r_{1..k})}{\operatorname{std}(r_{1..k}) + \epsilon}.$$
#
# With `scale=False` it only centres (Dr. GRPO's choice: dividing by the std makes a prompt
# whose samples barely differ push as hard as one where they differ a lot).

# %% tags=["solution"]
# EXERCISE: write the body of this function, then run the check below.
import torch


def leave_one_out_advantages(rewards, group_size):
    """RLOO: each reward minus the mean reward of the other samples of its prompt. (N,) -> (N,)."""
    # Reshape to (prompts, group_size). The sum of the others is the group's sum minus the sample.
    ### BEGIN SOLUTION
    grouped = rewards.view(-1, group_size)
    others_mean = (grouped.sum(dim=1, keepdim=True) - grouped) / (group_size - 1)
    return (grouped - others_mean).reshape(-1)
    ### END SOLUTION


# %%
rloo_report = check(leave_one_out_advantages)

# %% tags=["solution"]
# EXERCISE: write the body of this function, then run the check below.
def group_relative_advantages(rewards, group_size, scale=True, eps=1e-4):
    """GRPO: (reward - group mean) / (group std + eps); only centred when scale is False. (N,) -> (N,)."""
    # Reshape to (prompts, group_size); mean and std along dim 1 (keepdim=True broadcasts back).
    ### BEGIN SOLUTION
    grouped = rewards.view(-1, group_size)
    advantages = grouped - grouped.mean(dim=1, keepdim=True)
    if scale:
        advantages = advantages / (grouped.std(dim=1, keepdim=True) + eps)
    return advantages.reshape(-1)
    ### END SOLUTION


# %%
grpo_report = check(group_relative_advantages)

# %% [markdown]
# ## Feel it: two prompts, four samples each
#
# The first prompt's samples differ a lot (one right answer among wrong ones); the second's
# barely differ. Compare what each baseline makes of them.

# %%
rloo_report.require()
grpo_report.require()
rewards = torch.tensor([1.0, -1.0, -1.0, -1.0,   0.30, 0.31, 0.29, 0.30])
for name, advantages in (("RLOO", leave_one_out_advantages(rewards, 4)),
                         ("GRPO", group_relative_advantages(rewards, 4)),
                         ("Dr. GRPO", group_relative_advantages(rewards, 4, scale=False))):
    print(f"{name:>8}: " + "  ".join(f"{a:+.2f}" for a in advantages.tolist()))

# %% [markdown]
# **What to look for.** RLOO and Dr. GRPO give the second prompt's samples advantages near
# 0.01: nothing much to learn there. GRPO scales them up to the same size as the first
# prompt's (about ±1): a difference of 0.01 in reward pushes as hard as a right answer
# among wrong ones. That is the "question-level difficulty bias" Dr. GRPO points out.
#
# ## See it work: PPO with your baseline
#
# The course's PPO samples 4 responses per prompt and centres each score with
# `leave_one_out_advantages` before its value head and GAE take over. It calls *your*
# function there; then, for contrast, your GRPO baseline in the same place. Four short
# steps each against the hidden human's gold reward (a few seconds).

# %%
from rlhf_lab import models
from rlhf_lab.config import get_profile
from rlhf_lab.ppo import PPOSettings, PPOTrainer
from rlhf_lab.stages.pretrain import get_tokenizer
from rlhf_lab.stages.sft import get_sft_model_dir
from rlhf_lab.world import World

profile = get_profile()  # 'tiny' unless RLHF_LAB_PROFILE says otherwise
world = World(profile.seed)
tokenizer = get_tokenizer(profile)
sft_dir = get_sft_model_dir(profile)  # built and cached on first use (a few minutes, once)
train_prompts = {p.text: p for p in world.prompts("train")}

def gold_reward(user_texts, responses):
    """The hidden human's score of each response (PPO only ever sees this number)."""
    return torch.tensor([world.gold_reward(train_prompts[u], r).total for u, r in zip(user_texts, responses)])

# %%
config = PPOSettings(steps=4, batch_size=16, samples_per_prompt=4, mini_batch_size=8, ppo_epochs=2,
                   max_new_tokens=16, seed=0)
for baseline in (leave_one_out_advantages, group_relative_advantages):
    torch.manual_seed(0)
    policy = models.load_model(sft_dir, lora=models.LoraSettings.from_profile(profile))
    trainer = PPOTrainer(policy, tokenizer, gold_reward, config,
                         overrides={"leave_one_out_advantages": baseline})
    stats = trainer.train(list(train_prompts), progress=False)
    print(f"{baseline.__name__:>26}: gold reward per step " + " ".join(f"{s['reward']:+.2f}" for s in stats))

# %% [markdown]
# **What to look for.** Both runs learn from the same samples (same seed, same first
# rollout); only the baseline differs, so the first step's reward is the same and the
# later ones drift apart. Four steps are too few to call a winner: notebook 05b runs TRL's
# `RLOOTrainer` and `GRPOTrainer`, which compute exactly these advantages (the course's
# tests check it against TRL's own code), for a full budget beside PPO.
