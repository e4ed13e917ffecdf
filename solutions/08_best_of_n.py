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
# # Exercise 8: best-of-n sampling with a reward signal
#
# **Difficulty:** ★★☆ (core) &nbsp;·&nbsp; **Time:** about 15 minutes
#
# The simplest use of a reward model needs no training: sample n responses, keep the one the
# reward model likes best. It is the baseline PPO and DPO are measured against. You will write
# it and see how the hidden human's score grows with n.
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
# - `generate(prompts) -> responses` samples one response per entry of a list (a list may
#   repeat a prompt; each entry is a fresh sample).
# - `score(prompts, responses) -> scores` rates each (prompt, response) pair: a list of
#   floats or a tensor, higher is better.
#
# For each prompt draw exactly `n` samples (one batched `generate` call is fastest), score
# them, and return the best sample per prompt, in the order of `prompts`. On a tie keep the
# earliest sample, so the result never depends on chance tie-breaking. The course's own
# version is `rlhf_lab.sampling.best_of_n`; notebook 06 runs best-of-n with the reward model as
# the judge (`rlhf_lab.evaluate.best_of_n_curve`).

# %% tags=["solution"]
# EXERCISE: write the body of this function, then run the check below.
import torch


def best_of_n(prompts, generate, score, n):
    """For every prompt, sample n responses and return the one `score` rates highest."""
    # 1. One list with every prompt repeated n times (samples of one prompt side by side).
    # 2. responses = generate(that list); scores = score(that list, responses).
    # 3. Per prompt, the index of the best of its n scores (the first one on ties).
    ### BEGIN SOLUTION
    repeated = [prompt for prompt in prompts for _ in range(n)]
    responses = generate(repeated)
    scores = torch.as_tensor(score(repeated, responses), dtype=torch.float64).reshape(len(prompts), n)
    best = scores.argmax(dim=1)  # argmax returns the first maximum on ties
    return [responses[i * n + int(j)] for i, j in enumerate(best)]
    ### END SOLUTION


# %%
report = check(best_of_n)

# %% [markdown]
# ## See it work: best-of-n with the hidden human as the judge
#
# The SFT model samples; the lab world's gold reward (the hidden human) scores. We measure the
# mean gold reward of the kept responses on 24 held-out prompts (every family) as n grows.

# %%
from rlhf_lab import lesson, models
from rlhf_lab.config import get_profile
from rlhf_lab.evaluate import heldout_prompts
from rlhf_lab.stages.pretrain import get_tokenizer
from rlhf_lab.stages.sft import get_sft_model_dir
from rlhf_lab.world import World

profile = get_profile()  # 'tiny' unless RLHF_LAB_PROFILE says otherwise
world = World(profile.seed)
tokenizer = get_tokenizer(profile)
sft_dir = get_sft_model_dir(profile)  # built and cached on first use (a few minutes, once)

# %%
report.require()
sft_model = models.load_model(sft_dir, trainable=False)
heldout = {p.text: p for p in heldout_prompts(world, 24)}  # families interleaved

def sample(user_texts):
    return models.generate(sft_model, tokenizer, user_texts, max_new_tokens=16, seed=len(user_texts))

def gold_score(user_texts, responses):
    return [world.gold_reward(heldout[u], r).total for u, r in zip(user_texts, responses)]

kept_gold = {}
for n in (1, 2, 4, 8):
    kept = best_of_n(list(heldout), sample, gold_score, n)
    kept_gold[n] = sum(gold_score(list(heldout), kept)) / len(kept)
    print(f"n={n}: mean gold reward of the kept responses {kept_gold[n]:+.3f}")
lesson.check_claim("with the hidden human as the judge, best-of-8 keeps better answers than one sample",
                   kept_gold[8] > kept_gold[1], n1=kept_gold[1], n8=kept_gold[8])

# %% [markdown]
# **What to look for.** The kept answers get better with n (the check above says by how much):
# here the judge is the gold reward itself. With a *learned* reward model as the judge, large n
# starts to exploit the reward model's mistakes, the over-optimisation Gao et al. (2022)
# measured. Notebook 06 shows it up to n = 16, and notebook 07b (over-optimisation) up to n = 256 on
# Gao et al.'s axes, with their fitted curve: the reward model's score of the pick keeps rising
# with n while the gold reward peaks and falls.
