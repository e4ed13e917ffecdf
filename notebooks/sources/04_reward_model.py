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
# # 04 · The reward model
#
# A reward model reads a prompt and a response and returns one number. It is the SFT model with
# a one-output `score` head (a sequence classifier), trained on preference pairs with the
# **Bradley-Terry** loss: P(chosen beats rejected) = sigmoid(r(chosen) - r(rejected)), and the
# loss is -log of that. It never sees a gold reward, only which of two responses won.

# %%
from rlhf_lab import lesson
from rlhf_lab.config import get_profile
from pathlib import Path

from rlhf_lab import plots
from rlhf_lab.losses import bradley_terry_loss
from rlhf_lab.reward_checks import closer_effect
from rlhf_lab.scoring import score_responses
from rlhf_lab.stages.reward import get_reward_model_dir, load_reward_model, make_reward_trainer_class, reward_report
from rlhf_lab.world import World

lesson.notebook_setup()  # 2 CPU threads (RLHF_LAB_THREADS), small figures, the libraries' chatter off
profile = get_profile()  # "tiny" unless the environment says RLHF_LAB_PROFILE=gpu
print(lesson.setup_line(profile))

# %% [markdown]
# ## The lines that matter
#
# TRL's `RewardTrainer` batches all chosen responses, then all rejected ones; the course's
# subclass (`rlhf_lab/stages/reward.py`) takes its loss from `rlhf_lab.losses`, the one place
# the course's math lives (exercise 02 has you write it):

# %%
lesson.show_code(bradley_terry_loss, "def bradley_terry_loss", max_lines=40)

# %%
lesson.show_code(make_reward_trainer_class(), "def compute_loss", "return (loss")

# %% [markdown]
# ## Train (or load from the cache), with your labels
#
# If you labelled pairs in notebook 03, `labels/my_labels.jsonl` exists and your decisions join the
# simulated annotator's pairs (`profile.preference_pairs` templated pairs, plus pairs of SFT samples and
# minimal edits); a new reward model is trained for them.
# *Takes about 1 min the first time (plus the SFT model if it is missing) on the tiny profile (2 CPU cores); gpu profile: not timed yet.*

# %%
label_file = Path("labels/my_labels.jsonl")
print("your labels are included" if label_file.exists() else "no labels of yours yet: simulated pairs only")
with lesson.stopwatch() as clock:
    reward_dir = get_reward_model_dir(profile, label_file=label_file if label_file.exists() else None)
rm_report = reward_report(reward_dir)
print(lesson.ready_line("Reward model", clock.seconds, rm_report["seconds"]))
print(f"{rm_report['pairs']} training pairs (templated, SFT samples, edits{', yours' if label_file.exists() else ''}); "
      f"held-out accuracy vs gold {rm_report['heldout_accuracy']:.1%} on templated pairs, "
      f"{rm_report['sft_sample_accuracy']:.1%} on pairs of SFT samples")

# %%
fig = plots.loss_curve(rm_report["history"], xlabel="logging step (every 5 optimizer steps)",
                       title="Reward model: Bradley-Terry loss (log 2 = 0.69 is a coin flip)")

# %% [markdown]
# ## Does it agree with the hidden human?
#
# Accuracy = how often it orders two responses of a held-out prompt as the gold reward does
# (pairs the hidden human scores equal are left out). Two kinds of pairs:
# **templated** (two responses the world writes, like most of its training pairs) and
# **SFT samples** (two answers the SFT model itself sampled: the text PPO will ask it about).
# The comparison data had both kinds: InstructGPT, too, compared samples of the model being trained.
# It had a third: SFT samples against a *minimal edit* of themselves that changes one thing the
# hidden human cares about (the right answer swapped for a wrong one, a refusal for compliance,
# a correction for flattery, help for an over-refusal, or the sentence broken). The SFT model's own
# samples seldom differ in only that way, and a reward model that never saw broken text cannot
# punish it: the policy finds broken text as soon as it moves (`rlhf_lab/preferences.py`).

# %%
templated, on_samples = rm_report["accuracy_by_family"], rm_report["sft_sample_accuracy_by_family"]
fig = plots.accuracy_by_family({"templated pairs": templated, "pairs of SFT samples": on_samples},
                               title=f"Reward model vs hidden human: {rm_report['heldout_accuracy']:.0%} (templated), "
                                     f"{rm_report['sft_sample_accuracy']:.0%} (SFT samples)")

# %%
lesson.check_claim("the reward model orders most held-out pairs as the hidden human does, on both kinds",
                   min(rm_report["heldout_accuracy"], rm_report["sft_sample_accuracy"]) > 0.5,
                   templated_rate=rm_report["heldout_accuracy"], sft_samples_rate=rm_report["sft_sample_accuracy"])

# %% [markdown]
# **What to look for:** the families where the bars are lowest are where RL will be steered
# wrong: a policy optimised against this reward model improves what the model scores well and
# can drift where it does not. The numbers are the reward model's, not the truth's. On pairs of
# SFT samples the helpful family is weaker than the harmful one (on most seeds the sycophancy
# family too): two answers that differ only in the subject, the colour or the fact are harder for
# a reward model this small to tell apart than a refusal from harmful instructions.

# %%
lesson.check_claim("on pairs of SFT samples the reward model is weaker on the helpful family than on the harmful one",
                   on_samples["helpful"] < on_samples["harmful"],
                   **{f"{family}_accuracy": value for family, value in on_samples.items()})

# %%
world = World(profile.seed)
reward_model, tokenizer = load_reward_model(profile, reward_dir)
pairs = world.comparison_pairs(200, "heldout", seed=profile.seed + 7)
users = [p.prompt.text for p in pairs] * 2
responses = [p.response_a for p in pairs] + [p.response_b for p in pairs]
rm = score_responses(reward_model, tokenizer, users, responses).tolist()
gold = [world.gold_reward(world.prompt_by_text(u), r).total for u, r in zip(users, responses)]
fig = plots.scatter_scores(rm, gold, title=f"Reward model vs gold: correlation {rm_report['gold_correlation']:.2f}")

# %% [markdown]
# **What to look for:** an upward trend, with vertical spread: the reward model only learned
# *differences*, so its scale and offset are arbitrary, and within one gold level it still ranks
# responses by things the hidden human does not care about.

# %% [markdown]
# ## The seed of reward hacking: "I hope this helps."
#
# Take held-out responses without the closing phrase, append " I hope this helps.", and score
# both versions with the reward model and with the gold reward.

# %%
effect = closer_effect(reward_model, tokenizer, world)
user, plain, closed, rm_plain, rm_closed, gold_plain, gold_closed = effect["example"]
print(f"USER: {user}")
print(f"  reward model {rm_plain:+.2f}, gold {gold_plain:+.2f}:  {plain}")
print(f"  reward model {rm_closed:+.2f}, gold {gold_closed:+.2f}:  {closed}")
fig = plots.closer_effect_figure(effect)

# %%
raised = sum(c > 0 for c in effect["rm_change"]) / effect["n"]
lesson.check_claim("appending the closer raises the reward model's score on most responses", raised > 0.5,
                   raised_rate=raised)
lesson.check_claim("... while the gold reward does not rise", max(effect["gold_change"]) <= 0,
                   largest_gold_change=max(effect["gold_change"]))

# %% [markdown]
# **What to look for:** the reward model's score goes **up** for most responses when the phrase is
# appended (the check counts them; the one example printed above need not be one of them), while
# the gold reward never rises (it falls or stays: four more words can cost a little
# concision). In the preference data
# the phrase came with better answers, so "I hope this helps" became evidence of quality. A policy
# optimised against this reward model can learn to say it more and collect reward without getting
# any better: **reward hacking** (Gao et al. 2022). PPO in notebook 05 does not pick it up (SFT
# never says it, so PPO never samples it to be paid); notebooks 06 and 07b show where it is reached.
# **Next:** `05_ppo.ipynb`.
