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
# # 03 · Labelling preferences: you are the human in RLHF
#
# A reward model learns from **comparisons**: a prompt, two responses, and which one a person
# preferred. In this notebook you label 20 pairs of the lab world in a widget, then the hidden
# human is revealed and you see how often you agreed with it. Then you turn your labels into a
# training set, and measure how label quality and quantity shape a reward model.

# %%
import torch

from rlhf_lab import lesson
from rlhf_lab.config import get_profile
import os
import tempfile
from pathlib import Path

from IPython.display import HTML, display

from rlhf_lab.label import LabelingApp

torch.set_num_threads(2)  # the course's budget: 2 CPU cores
lesson.notebook_setup()  # small figures, the libraries' own chatter off
profile = get_profile()  # "tiny" unless the environment says RLHF_LAB_PROFILE=gpu
print(lesson.setup_line(profile))

# %% [markdown]
# ## Label 20 pairs
#
# Read the guidelines in the widget, then for each pair click **A is better**, **B is better**,
# **Tie** or **Skip** (or click into the keyboard box and press `a` / `b` / `t` / `s`; `u` undoes).
# Tags say *why* (optional). Every decision is saved to `labels/my_labels.jsonl` (next to this
# notebook) before the next pair appears: run the cell again and you resume where you stopped.
# The sides are shuffled per pair. After 10 labels the **Reveal** button unlocks.

# %%
app = LabelingApp.for_world(store_path="labels/my_labels.jsonl", n_pairs=20)
app

# %% [markdown]
# The next cell is for unattended runs (the course's tests set `RLHF_LAB_AUTOLABEL=1`): a
# **scripted learner**, a simulated annotator with 20% label noise, labels a *throwaway copy*
# of the app by clicking its real buttons, in a temporary folder, so your own labels file is
# never touched. When you run the notebook by hand it does nothing: label above instead.

# %%
if os.environ.get("RLHF_LAB_AUTOLABEL") == "1":
    from rlhf_lab.world import SimulatedAnnotator

    scratch = Path(tempfile.mkdtemp(prefix="rlhf_lab_scripted_")) / "labels.jsonl"
    app = LabelingApp.for_world(store_path=scratch, n_pairs=20)  # a copy, not your labels
    display(app)
    lesson.scripted_labelling(app, SimulatedAnnotator(noise=0.2, seed=1))
else:
    print("Label the pairs in the widget above, then run the next cells.")

# %%
# NBVAL_CHECK_OUTPUT
print(f"{app.n_labelled} of {len(app.pairs)} pairs labelled")

# %% [markdown]
# ## The reveal: you vs the hidden human
#
# Raw agreement flatters (two people who both pick "A" 90% of the time agree 82% of the time by
# chance). **Cohen's kappa** corrects for chance: 1 is perfect, 0 is chance level. Real labellers
# agree with each other about 73% of the time (InstructGPT); expect something like that, not 100%.

# %%
if app.button_reveal.disabled:
    print(f"Label at least {app.reveal_after} pairs first ({app.n_labelled} so far).")
else:
    app.button_reveal.click()  # the same as clicking "Reveal the hidden human" in the widget
    display(HTML(app.reveal_output.value))

# %% [markdown]
# **What to look for:** the families where you disagreed. Sycophancy traps are where people are
# most often "wrong" by the hidden human's taste (agreeing feels polite); on `benign` prompts a
# cautious labeller rewards refusals the hidden human punishes (over-refusal).
#
# ## From labels to a TRL preference dataset
#
# A decision "A is better" becomes a row `{prompt, chosen, rejected}`: TRL's preference format,
# read by its `RewardTrainer` and `DPOTrainer`. Ties and skips carry no preference and are left out.

# %%
# NBVAL_CHECK_OUTPUT
mine = app.dataset()
print(mine)

# %% [markdown]
# Twenty labels are far too few to train a reward model on. In practice your labels are mixed
# with many more from other labellers; here the simulated annotator plays the other labellers:

# %%
from collections import Counter

from rlhf_lab.label import merge_with_simulated

merged = merge_with_simulated(app.store, app.world, n_simulated=200)
print(Counter(merged["source"]), "->", merged.column_names)
merged[0]

# %% [markdown]
# ## How much do label noise and label count matter?
#
# A small sweep: six reward models, each trained for one short epoch on `N` pairs labelled by a
# simulated annotator with label noise `x` (the share of coin-flip labels), then scored on held-out
# pairs against the hidden human. Each starts from the SFT model (notebook 02), built first if missing.
# *Takes about 1 min (plus about 1 min if the SFT model is not built yet) on the tiny profile (2 CPU cores); gpu profile: not timed yet.*

# %%
from itertools import product

from tqdm.auto import tqdm

from rlhf_lab.stages.reward import RewardSettings, train_reward_model
from rlhf_lab.stages.sft import get_sft_model_dir

sft_dir = get_sft_model_dir(profile)  # built here, with its progress bar, if missing

# %%
grid = list(product((0.0, 0.4, 0.8), (100, 400)))  # (label noise, number of labels)
results = []
with lesson.stopwatch() as clock:
    for noise, n in tqdm(grid, desc="reward models"):
        settings = RewardSettings(epochs=1, pairs=n, annotator_noise=noise, batch_size=8)
        _, _, report = train_reward_model(profile, settings, progress=False)
        results.append({"noise": noise, "pairs": n, "accuracy": report["heldout_accuracy"]})
print(f"{len(grid)} reward models trained in {clock.seconds:.0f} s")
fig = lesson.label_sweep_figure(results)

# %% [markdown]
# **What to look for:** accuracy should fall as noise rises, and more labels should buy some of it
# back: random noise averages out over many pairs, because a coin flip favours neither side.
# Read the sizes, though: on ~400 held-out pairs one run's accuracy is uncertain by about
# ±2.5 points, and one short epoch leaves the reward model far from converged (notebook 04 trains
# longer), so differences of a few points are noise, not findings. Systematic errors are worse
# than random ones: a labeller who always agrees with the user does not average out, and more
# labels only teach the bias more firmly.
#
# ## How your labels reach the reward model
#
# Notebook 04 trains the course's reward model with
# `get_reward_model_dir(profile, label_file="labels/my_labels.jsonl")`: when the file exists, your
# decisions are added to the simulated pairs (`LabelStore(...).preference_rows()`) and the reward
# model is retrained (the cache key includes the file, so new labels mean a new model).
# Label more pairs (`LabelingApp.for_world(..., n_pairs=100)`) and your taste weighs more.
# **Next:** `04_reward_model.ipynb`.
