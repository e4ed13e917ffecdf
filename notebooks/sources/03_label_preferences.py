# ---
# jupyter:
#   jupytext:
#     formats: ipynb,sources//py:percent
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
# in a few seconds. Nothing trains unless you ask: set `TRAIN_YOUR_MODEL = True` in the section
# "Your labels, your model" once you have labelled at least 10 pairs, and run that cell. If a cell is running while you label, the widget says the kernel is
# busy and lists your waiting actions: each is saved, in order, as soon as the kernel is free.

# %%
from collections import Counter
import os
import tempfile
from pathlib import Path

from IPython.display import HTML, display
from rlhf_lab import lesson
from rlhf_lab.config import get_profile
from rlhf_lab import your_model, your_model_report
from rlhf_lab.label import LabelingApp, merge_with_simulated
from rlhf_lab.label.scripted import scripted_labelling
from rlhf_lab.world import SimulatedAnnotator

lesson.notebook_setup()  # 2 CPU threads (RLHF_LAB_THREADS), small figures, the libraries' chatter off
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
    scratch = Path(tempfile.mkdtemp(prefix="rlhf_lab_scripted_")) / "labels.jsonl"
    app = LabelingApp.for_world(store_path=scratch, n_pairs=N_PAIRS)  # a copy, not your labels
    scripted_labelling(app, SimulatedAnnotator(noise=0.2, prefers_agreement=1.5, seed=1))
    print("Unattended run: the scripted learner labelled a throwaway copy. Every number below is its labels', "
          "not yours; run the notebook yourself to see your own.")
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
# **What to look for:** the families where you disagreed, and why. Two kinds of pair catch people
# out against the hidden human's taste: sycophancy traps (agreeing feels polite, and you must know
# the fact to see the user is wrong), and `benign` look-alikes, where a cautious labeller rewards
# the refusals the hidden human punishes (over-refusal). (Run unattended, the table above is the
# scripted learner's: a simulated annotator with 20% noise and a mild liking for agreement. With
# 20 pairs each family holds a handful, so its counts move a lot from one run to the next, and a
# taste need not show at all: the scripted learner can match the hidden human on every sycophancy
# pair of one run.)
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
merged = merge_with_simulated(app.store, app.world, n_simulated=200)
print(Counter(merged["source"]), "->", merged.column_names)
merged[0]

# %% [markdown]
# ## Your labels, your model
#
# Mixed into the reward model's ~5,000 simulated pairs (notebook 04), twenty labels are 0.4% of the
# data: nothing you could see.
# So here small reward models are trained from the same SFT model, on the same pairs, with the
# same settings: one on **your labels alone**, and three on the labels of three **simulated
# labellers** who label those same pairs (the course's annotator: it follows the hidden human,
# with 10% coin flips, each with its own random draws). The only difference is who chose.
#
# Why three? Two honest labellers never pick exactly alike, so their models differ by chance.
# The spread of the three simulated models is that chance level: your model differs from theirs
# *because of your taste* only when it lies clearly outside it. All models are scored on about 300
# held-out pairs (ties left out) against the hidden human, by prompt family, with a 90% **bootstrap interval**
# (resampling the held-out pairs, and for the gap also which simulated labeller you are compared
# with). A gap whose interval excludes zero is marked *yours lower* or *yours higher*; otherwise
# *within chance*.
#
# **Run All never trains here.** When you have labelled (10 A/B labels at least, ties and skips
# do not count), set `TRAIN_YOUR_MODEL = True` in the next cell and run it. *Four short
# trainings: about 15 s on the tiny profile (2 CPU cores), plus about 1 min if the SFT model
# (notebook 02) is not built yet; gpu profile: not timed yet.* In the course's tests the
# scripted learner's labels are used instead of your_model.

# %%
TRAIN_YOUR_MODEL = False  # set to True, then run this cell
UNATTENDED = os.environ.get("RLHF_LAB_AUTOLABEL") == "1"  # the course's tests: the scripted learner's labels

result = None
not_yet = your_model.not_enough_labels(app)
if not_yet:
    print(not_yet)
elif not (TRAIN_YOUR_MODEL or UNATTENDED):
    print(f"{len(your_model.preference_pairs_of(app))} A/B labels ready. Set TRAIN_YOUR_MODEL = True in this cell "
          "and run it to train the reward models.")
else:
    result = your_model.your_labels_your_model(app, profile)
    print(your_model_report.summary_line(result))
    your_model_report.your_model_figure(result)

# %% [markdown]
# The same numbers by family, with the gap and its interval:

# %%
if result:
    display(your_model_report.family_table(result))

# %% [markdown]
# **What to look for:** a family marked *yours lower* (there may be none: then every gap is
# within chance, or your labels taught more). That is where your model learned
# something the hidden human does not want: say you let a polite agreement with a wrong claim pass
# (`sycophancy`), or rewarded a cautious refusal of a harmless request (`benign`). *Yours higher*:
# your labels there taught more than the simulated labellers' did. With 20 labels a family has
# only a handful of training pairs, so one label can move its bar: the three simulated models,
# which all follow the same hidden human, already differ by several points in some family (the
# black dots; the next cell checks it). One set of labels cannot tell your taste from the luck of
# which pairs you saw: a gap that comes from your taste stays as you label more (last section).

# %%
if result:
    runs = result["models"]["simulated"]["runs"]
    spread = {f: max(r["by_family"][f] for r in runs) - min(r["by_family"][f] for r in runs) for f in result["intervals"]
              if f != "all"}
    widest = max(spread, key=spread.get)
    lesson.check_claim("models of simulated labellers who follow the same hidden human differ by chance, "
                       "by several points in some family", spread[widest] >= 0.05,
                       family=widest, spread_points=spread[widest], labels=result["n"])

# %% [markdown]
# What each model prefers, on held-out pairs whose two responses differ on that point (the
# hidden human always picks the higher total gold reward, so its column is the target; the
# simulated column gives the mean of the three and, in brackets, the lowest and the highest):

# %%
if result:
    display(your_model_report.preference_table(result))

# %% [markdown]
# A few held-out pairs where your model and the simulated labellers' models (two of three agree)
# pick differently, and whom the hidden human sides with:

# %%
if result:
    display(your_model_report.disagreement_table(result))

# %% [markdown]
# ## More labels, a clearer picture
#
# With 20 labels each model has seen a handful of pairs per family, so chance decides much of
# what it learned. **Label more** (set `N_PAIRS = 60` or `100` in the widget cell, run it, label
# on: your first labels are kept), then run this section again. The next cell trains your model
# on the first quarter, half and all of your labels (10 at least), next to the simulated
# labellers' on the same pairs: the left panel shows how close each gets to the hidden human,
# the right one the gap by family. *Four more trainings per extra point: about 15 s on the tiny
# profile.*

# %%
curve = None
if result:
    curve = your_model.accuracy_by_label_count(app, profile, result=result)  # reuses the models above for "all"
    your_model_report.label_count_figure(curve)
    if len(curve) == 1:
        print(f"With {result['n']} A/B labels there is one point only: label 20 or more for a curve.")

# %% [markdown]
# **What to look for:** a gap that keeps its sign from point to point is your taste; one that
# flips is luck. And how far every model stays from 100%: a few dozen labels teach a reward model
# only part of the hidden human's taste. With the 20 or so labels here none of these models reaches
# 80% on held-out pairs (the check below; `benchmarks/bench_label_yours.py` measures up to 50); that is why the course's reward model (notebook 04) learns from thousands of
# pairs, yours among them.

# %%
if curve and curve[-1]["labels"] <= 100:
    best = max(max(r["yours"], *r["simulated_runs"]) for r in curve)
    lesson.check_claim(f"with {curve[-1]['labels']} labels no reward model here reaches 80% on held-out pairs",
                       best < 0.8, best_accuracy=best, most_labels=curve[-1]["labels"])

# %% [markdown]
# ## How your labels reach the course's reward model
#
# Notebook 04 trains the course's reward model with
# `get_reward_model_dir(profile, label_file="labels/my_labels.jsonl")`: when the file exists, your
# decisions are added to the simulated pairs and the reward model is retrained (the cache key
# includes the file, so new labels mean a new model), next to templated pairs and pairs of the
# SFT model's own samples, all labelled by the simulated annotator.
# **Next:** `04_reward_model.ipynb`.
