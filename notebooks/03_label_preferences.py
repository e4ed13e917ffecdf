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
# preferred. In this notebook you label pairs of the lab world in a widget, then the hidden human
# is revealed and you see how often you agreed with it. Then you train a reward model on **your
# labels alone**, next to one trained on the same pairs labelled by a simulated annotator, and see
# where your taste took it.
#
# **Run All is safe here.** Run > Run All Cells shows the widget and runs the light cells below it
# in a few seconds. Nothing trains until you have labelled at least 10 pairs and run the last
# section's cell yourself. If a cell is running while you label, the widget says the kernel is
# busy and lists your waiting actions: each is saved, in order, as soon as the kernel is free.

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
# ## Label the pairs
#
# Read the guidelines in the widget, then for each pair press **A is better**, **B is better**,
# **Tie** or **Skip**. The keys work as soon as the widget is shown, or after a click anywhere in
# it: `a` / `b` / `t` / `s` choose, `u` undoes, `1`-`4` toggle a tag that says *why* (optional),
# `r` reveals the hidden human (after 10 labels). Each key is shown on its button. The next pair
# appears at once; "✓ all saved" means every decision is in `labels/my_labels.jsonl` (next to
# this notebook), fsynced. Run the cell again and you resume where you stopped.
# The sides are shuffled per pair.
#
# Twenty pairs take about five minutes. **Label more if you can** (set `N_PAIRS = 60` or `100`
# and run the cell again: your first labels are kept, the new pairs come after them): the last
# section shows what more labels do to *your* reward model.

# %%
N_PAIRS = 20
app = LabelingApp.for_world(store_path="labels/my_labels.jsonl", n_pairs=N_PAIRS)
app

# %% [markdown]
# The next cell is for unattended runs (the course's tests set `RLHF_LAB_AUTOLABEL=1`): a
# **scripted learner**, a simulated annotator with 20% label noise who also likes responses that
# agree with the user, labels a *throwaway copy* of the app, in a temporary folder, with the same
# messages the browser sends. Your own labels file is never touched. When you run the notebook
# by hand it does nothing: label above instead.

# %%
if os.environ.get("RLHF_LAB_AUTOLABEL") == "1":
    from rlhf_lab.label.scripted import scripted_labelling
    from rlhf_lab.world import SimulatedAnnotator

    scratch = Path(tempfile.mkdtemp(prefix="rlhf_lab_scripted_")) / "labels.jsonl"
    app = LabelingApp.for_world(store_path=scratch, n_pairs=N_PAIRS)  # a copy, not your labels
    scripted_labelling(app, SimulatedAnnotator(noise=0.2, prefers_agreement=1.5, seed=1))
else:
    print("Label the pairs in the widget above; the cells below use what you have labelled when you run them.")

# %%
# NBVAL_CHECK_OUTPUT
print(f"{app.n_labelled} of {len(app.pairs)} pairs labelled")

# %% [markdown]
# ## The reveal: you vs the hidden human
#
# Raw agreement flatters (two people who both pick "A" 90% of the time agree 82% of the time by
# chance). **Cohen's kappa** corrects for chance: 1 is perfect, 0 is chance level. Real labellers
# agree with each other about 73% of the time (InstructGPT); expect something like that, not 100%.
# The widget's **Reveal** button (`r`) shows the same table.

# %%
if app.n_labelled < app.reveal_after:
    print(f"Label at least {app.reveal_after} pairs first ({app.n_labelled} so far), then run this cell again.")
else:
    app.reveal()  # the same as pressing "Reveal the hidden human" in the widget
    display(HTML(app.reveal_html))

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
# In the course's reward model (notebook 04) your labels join many more from other labellers;
# here the simulated annotator plays the other labellers:

# %%
from collections import Counter

from rlhf_lab.label import merge_with_simulated

merged = merge_with_simulated(app.store, app.world, n_simulated=200)
print(Counter(merged["source"]), "->", merged.column_names)
merged[0]

# %% [markdown]
# ## Your labels, your model
#
# Mixed into 3,000 simulated pairs, twenty labels are 0.7% of the data: nothing you could see.
# So here two small reward models are trained from the same SFT model, on the same pairs, with
# the same settings: one on **your labels alone**, one on the **simulated annotator's** labels of
# those pairs. The only difference is who chose. Both are then scored on held-out pairs against
# the hidden human, by prompt family, and on what they prefer.
#
# This cell trains only when you have at least 10 A/B labels (under Run All, before you label, it
# just says so). *Two models: about 30 s on the tiny profile (2 CPU cores), plus about 1 min if
# the SFT model (notebook 02) is not built yet; gpu profile: not timed yet.*

# %%
from rlhf_lab.label.yours import (MIN_LABELS, disagreement_table, preference_pairs_of, preference_table,
                                  summary_line, your_labels_your_model, your_model_figure)

result = None
if len(preference_pairs_of(app)) < MIN_LABELS:
    print(f"{len(preference_pairs_of(app))} A/B labels so far: label at least {MIN_LABELS} pairs in the widget "
          "(ties and skips do not count), then run this cell again.")
elif os.environ.get("RLHF_LAB_AUTOLABEL") == "1" and os.environ.get("RLHF_LAB_TRAIN_YOUR_MODEL") != "1":
    print("Unattended run (tests): the two reward models are not trained here; "
          "set RLHF_LAB_TRAIN_YOUR_MODEL=1 to train them.")
else:
    result = your_labels_your_model(app, profile)
    print(summary_line(result))
    your_model_figure(result)

# %% [markdown]
# **What to look for:** the family where your model's bar is lowest against the simulated one.
# That is where your labels taught it something the hidden human does not want (or where you
# saw something the simulated labeller missed, if yours is higher). With 20 labels the bars are
# noisy (a family may have only a few training pairs): a gap of 10 points can be luck.
#
# What each model prefers, on held-out pairs whose two responses differ on that point (the
# hidden human always picks the higher total gold reward, so its column is the target):

# %%
if result:
    display(preference_table(result))

# %% [markdown]
# A few held-out pairs where the two models pick differently, and whom the hidden human sides with:

# %%
if result:
    display(disagreement_table(result))

# %% [markdown]
# **Label more, and run the section again.** With 20 labels each model has seen a handful of
# pairs per family, so chance decides much of what it learned. With 60-100 labels your model's
# accuracy and its preferences stop jumping around, and where you *systematically* differ from
# the hidden human (say you always let a polite agreement pass) it shows up as a clear gap in
# that family: your taste, learned by a model. Set `N_PAIRS = 60` (or 100) in the widget cell,
# run it, label on, then run this section's cells again.
#
# Once you have 40 labels or more, the next cell shows the effect directly: your model trained on
# the first quarter, half and all of your labels, next to the simulated labeller's on the same
# pairs. *Six short trainings: about 1-2 min on the tiny profile.*

# %%
from rlhf_lab.label.yours import accuracy_by_label_count, label_count_figure

if len(preference_pairs_of(app)) >= 40:
    curve = accuracy_by_label_count(app, profile)
    label_count_figure(curve)
else:
    print(f"{len(preference_pairs_of(app))} A/B labels: with 40 or more, this cell shows how your model "
          "changes as your labels add up.")

# %% [markdown]
# ## How your labels reach the course's reward model
#
# Notebook 04 trains the course's reward model with
# `get_reward_model_dir(profile, label_file="labels/my_labels.jsonl")`: when the file exists, your
# decisions are added to the simulated pairs and the reward model is retrained (the cache key
# includes the file, so new labels mean a new model), next to templated pairs and pairs of the
# SFT model's own samples, all labelled by the simulated annotator.
# **Next:** `04_reward_model.ipynb`.
