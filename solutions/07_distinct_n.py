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
# # Exercise 7: distinct-n: is the policy still diverse?
#
# **Difficulty:** ★☆☆ (warm-up) &nbsp;·&nbsp; **Time:** about 10 minutes
#
# RL fine-tuning tends to collapse a policy onto a few high-reward phrasings (mode
# collapse). distinct-n (Li et al. 2016) is the simplest gauge of it. You will write it
# and measure how sampling temperature changes the SFT model's diversity.
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
# Split every text into words (`text.split()`: whitespace, case and punctuation kept), list
# its n-grams (runs of n consecutive words), then
#
# $$\text{distinct-}n = \frac{\#\,\text{distinct n-grams over all texts}}{\#\,\text{n-grams over all texts}}.$$
#
# N-grams never span two texts; a text with fewer than n words has none. If there are no
# n-grams at all, return 0.0. The course's evaluation uses this function as
# `rlhf_lab.diversity.distinct_n`.

# %% tags=["solution"]
# EXERCISE: write the body of this function, then run the check below.
def distinct_n(texts, n):
    """Distinct n-grams / all n-grams over `texts` (word n-grams; 0.0 if there are none)."""
    ### BEGIN SOLUTION
    ngrams = []
    for text in texts:
        words = text.split()
        ngrams.extend(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
    if not ngrams:
        return 0.0
    return len(set(ngrams)) / len(ngrams)
    ### END SOLUTION


# %%
report = check(distinct_n)

# %% [markdown]
# ## See it work: diversity of the SFT model at three temperatures
#
# Same 16 held-out prompts, one response each, sampled at three temperatures.

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
report.require()
sft_model = models.load_model(sft_dir, trainable=False)
user_texts = [p.text for p in world.prompts("heldout")[:16]]
for temperature in (0.5, 1.0, 2.0):
    responses = models.generate(sft_model, tokenizer, user_texts, max_new_tokens=16, temperature=temperature, seed=0)
    print(f"temperature {temperature}: distinct-1 {distinct_n(responses, 1):.2f}, distinct-2 {distinct_n(responses, 2):.2f}"
          f"   e.g. {responses[0]!r}")

# %% [markdown]
# **What to look for.** Low temperature repeats the same phrasings (low distinct-n); high
# temperature adds variety and, eventually, nonsense. Distinct-n measures variety, not
# quality: read it next to the gold reward. Notebooks 05 and 06 report it next to the well-formed rate:
# broken text is "diverse" too. Notebook 07 (failure modes) shows what over-optimisation does to
# the picked answers: more polite openers on fewer well-formed sentences.
